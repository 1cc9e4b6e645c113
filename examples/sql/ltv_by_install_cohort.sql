-- LTV7 by install cohort
--
-- Answers: per app and install day (the cohort), how many installs, how much revenue they brought
-- on their first day (D0) and in their first 7 days (LTV7), and LTV7 per install.
-- Definitions: days_x = floor((created_at - installed_at) / 86400), strict 24-hour days as Adjust
--          counts them; D0 = days_x 0, LTV7 = days_x 0 to 6. Revenue = reporting_revenue (the app's
--          reporting currency) of in-app events and ad revenue; add 'subscription' to the list if
--          subscription revenue is not also tracked as revenue events. A revenue callback joins
--          its cohort through the installed_at it carries (Adjust sends it with events and ad
--          revenue). `matured` = 1 once the cohort is 7 days old (LTV7 final).
-- Reads:   adjust.installs (cohorts) and adjust.callbacks FINAL (revenue; each activity once).
--          Sandbox traffic is left out.
-- Run:     clickhouse-client --multiquery < examples/sql/ltv_by_install_cohort.sql
--          curl -sS 'http://127.0.0.1:8123/' --data-binary @examples/sql/ltv_by_install_cohort.sql
--          Another database: sed 's/adjust\./mydb./g' <file> | clickhouse-client --multiquery
--          Edit date_from / date_to (the cohort days) first. Runs on ClickHouse 18.16 and current
--          versions.
SELECT
    cohort_day,
    app_token,
    installs,
    round(revenue_d0, 4) AS revenue_d0,
    round(ltv7, 4) AS ltv7,
    round(ltv7 / installs, 4) AS ltv7_per_install,
    cohort_day <= today() - 7 AS matured
FROM
(
    WITH
        toDate('2024-01-01') AS date_from,
        today() AS date_to
    SELECT
        toDate(assumeNotNull(installed_at)) AS cohort_day,
        app_token,
        count() AS installs
    FROM adjust.installs
    WHERE installed_at IS NOT NULL
        AND cohort_day >= date_from AND cohort_day <= date_to
        AND environment != 'sandbox'
    GROUP BY cohort_day, app_token
) AS cohorts
ANY LEFT JOIN
(
    SELECT
        toDate(install_time) AS cohort_day,
        app_token,
        sumIf(ifNull(reporting_revenue, 0), days_x = 0) AS revenue_d0,
        sum(ifNull(reporting_revenue, 0)) AS ltv7
    FROM
    (
        SELECT
            assumeNotNull(installed_at) AS install_time,
            app_token,
            reporting_revenue,
            floor((toInt64(assumeNotNull(created_at)) - toInt64(install_time)) / 86400) AS days_x
        FROM adjust.callbacks FINAL
        WHERE activity_kind IN ('event', 'ad_revenue')
            AND environment != 'sandbox'
            AND installed_at IS NOT NULL AND created_at IS NOT NULL
    )
    WHERE days_x >= 0 AND days_x <= 6
    GROUP BY cohort_day, app_token
) AS revenue USING (cohort_day, app_token)
ORDER BY cohort_day, app_token;
