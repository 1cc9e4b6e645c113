-- Ad-revenue eCPM by mediation platform
--
-- Answers: per mediation platform, how many ad impressions, how much ad revenue, and at what eCPM?
-- impressions = ad_revenue callbacks (one per impression-level revenue
-- report), revenue = sum of reporting_revenue (the app's reporting currency; add app_name to the
-- GROUP BY when apps report in different currencies), eCPM = revenue / impressions × 1000.
-- Reads:   adjust.ad_revenue (activity_kind = 'ad_revenue', FINAL: each callback once).
--          `day` filters are on the UTC day of created_at. Sandbox traffic is left out.
-- Run:     clickhouse-client --multiquery < examples/sql/ad_revenue_ecpm_by_mediation.sql
--          curl -sS 'http://127.0.0.1:8123/' --data-binary @examples/sql/ad_revenue_ecpm_by_mediation.sql
--          Another database: sed 's/adjust\./mydb./g' <file> | clickhouse-client --multiquery
--          Edit date_from / date_to first. Runs on ClickHouse 18.16 and current versions.
WITH
    toDate('2024-01-01') AS date_from,
    today() AS date_to
SELECT
    ad_mediation_platform,
    count() AS impressions,
    round(sum(ifNull(reporting_revenue, 0)), 6) AS total_revenue,
    round(sum(ifNull(reporting_revenue, 0)) / count() * 1000, 4) AS ecpm
FROM adjust.ad_revenue
WHERE event_date >= date_from AND event_date <= date_to
    AND environment != 'sandbox'
GROUP BY ad_mediation_platform
ORDER BY total_revenue DESC, ad_mediation_platform;
