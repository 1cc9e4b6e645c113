-- Installs by day × network × campaign
--
-- Answers: how many installs did each network and campaign bring, per day and app? (The daily
-- channel input of a marketing-mix model)
-- Reads:   adjust.installs (activity_kind = 'install', with FINAL: an install Adjust sent twice, to
--          the global and to the install callback URL or again on a retry, counts once).
--          `day` is the UTC day of `created_at`. Organic installs have network_name 'Organic'.
--          Sandbox installs are left out. For the same answer cheaper over long ranges, read the
--          rollup instead: SELECT day, network_name, campaign_name, count() AS installs
--          FROM adjust.installs_daily_activities FINAL WHERE day >= … GROUP BY … (docs/views.md).
-- Run:     clickhouse-client --multiquery < examples/sql/installs_by_day_network_campaign.sql
--          curl -sS 'http://127.0.0.1:8123/' --data-binary @examples/sql/installs_by_day_network_campaign.sql
--          Another database: sed 's/adjust\./mydb./g' <file> | clickhouse-client --multiquery
--          Edit date_from / date_to first. Runs on ClickHouse 18.16 and current versions.
WITH
    toDate('2024-01-01') AS date_from,
    today() AS date_to
SELECT
    event_date AS day,
    app_name,
    network_name,
    campaign_name,
    count() AS installs
FROM adjust.installs
WHERE event_date >= date_from AND event_date <= date_to
    AND environment != 'sandbox'
GROUP BY day, app_name, network_name, campaign_name
ORDER BY day, app_name, installs DESC, network_name, campaign_name;
