-- Fraud rejections by reason and network
--
-- Answers: which networks send traffic that Adjust's Fraud Prevention rejects, and why?
-- Counts rejected installs and rejected reattributions per rejection_reason
-- (anonymous_traffic, distribution_outlier, too_many_engagements, engagement_injection,
-- incorrect_signature, …) and network.
-- Reads:   adjust.rejected (rejected_install, rejected_reattribution; FINAL: each callback once).
--          Sandbox traffic is left out.
-- Run:     clickhouse-client --multiquery < examples/sql/rejects_by_reason_network.sql
--          curl -sS 'http://127.0.0.1:8123/' --data-binary @examples/sql/rejects_by_reason_network.sql
--          Another database: sed 's/adjust\./mydb./g' <file> | clickhouse-client --multiquery
--          Edit date_from / date_to first. Runs on ClickHouse 18.16 and current versions.
WITH
    toDate('2024-01-01') AS date_from,
    today() AS date_to
SELECT
    activity_kind,
    rejection_reason,
    network_name,
    count() AS rejects
FROM adjust.rejected
WHERE event_date >= date_from AND event_date <= date_to
    AND environment != 'sandbox'
GROUP BY activity_kind, rejection_reason, network_name
ORDER BY activity_kind, rejects DESC, rejection_reason, network_name;
