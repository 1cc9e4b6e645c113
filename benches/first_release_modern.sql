-- The schema of the first release of adjust-sink (modern profile), where every placeholder had a
-- column of its own. Kept to measure the modern engine's insert cost of both layouts.

-- database adjust
CREATE DATABASE IF NOT EXISTS adjust;

-- table adjust.callbacks
CREATE TABLE IF NOT EXISTS adjust.callbacks
(
    received_at DateTime('UTC'),
    event_date Date,
    callback_id UInt64,
    callback_trigger LowCardinality(String),
    source_ip String,
    activity_kind LowCardinality(String),
    app_id LowCardinality(String),
    app_name LowCardinality(String),
    app_name_dashboard LowCardinality(String),
    app_token LowCardinality(String),
    app_version LowCardinality(String),
    app_version_raw LowCardinality(String),
    app_version_short LowCardinality(String),
    store LowCardinality(String),
    environment LowCardinality(String),
    sdk_version LowCardinality(String),
    created_at Nullable(DateTime('UTC')),
    created_at_hour Nullable(DateTime('UTC')),
    created_at_milli Nullable(DateTime64(3, 'UTC')),
    event LowCardinality(String),
    event_name LowCardinality(String),
    nonce String,
    random Nullable(Int64),
    random_user_id String,
    push_token String,
    tracker String,
    link_token String,
    tracker_name String,
    link_name String,
    network_name LowCardinality(String),
    campaign_name String,
    adgroup_name String,
    creative_name String,
    first_tracker String,
    first_tracker_name String,
    last_tracker String,
    last_tracker_name String,
    outdated_tracker String,
    outdated_link_token String,
    outdated_tracker_name String,
    attribution_updated_at Nullable(DateTime('UTC')),
    is_organic Nullable(UInt8),
    is_reattributed Nullable(UInt8),
    impression_based Nullable(UInt8),
    is_s2s Nullable(UInt8),
    is_s2s_engagement_based Nullable(UInt8),
    is_untrusted Nullable(UInt8),
    is_redownload Nullable(UInt8),
    match_type LowCardinality(String),
    reftag String,
    click_time Nullable(DateTime('UTC')),
    click_time_hour Nullable(DateTime('UTC')),
    impression_time Nullable(DateTime('UTC')),
    impression_time_hour Nullable(DateTime('UTC')),
    engagement_time Nullable(DateTime('UTC')),
    engagement_time_hour Nullable(DateTime('UTC')),
    installed_at Nullable(DateTime('UTC')),
    installed_at_hour Nullable(DateTime('UTC')),
    conversion_duration Nullable(Int64),
    reattributed_at Nullable(DateTime('UTC')),
    reattributed_at_hour Nullable(DateTime('UTC')),
    install_begin_time Nullable(DateTime('UTC')),
    install_finish_time Nullable(DateTime('UTC')),
    referral_time Nullable(DateTime('UTC')),
    referrer String,
    click_referer String,
    deeplink String,
    label String,
    gclid String,
    click_attribution_window Nullable(Int64),
    impression_attribution_window Nullable(Int64),
    fingerprint_attribution_window Nullable(Int64),
    reattribution_attribution_window Nullable(Int64),
    inactive_user_definition Nullable(Int64),
    attribution_ttl Nullable(Int64),
    attribution_expires_at Nullable(DateTime('UTC')),
    last_fallback_time Nullable(DateTime('UTC')),
    last_fallback_time_hour Nullable(DateTime('UTC')),
    callback_ttl Nullable(Int64),
    adid String,
    idfa String,
    idfa_upper String,
    idfa_md5 String,
    idfa_md5_hex String,
    idfv String,
    gps_adid String,
    gps_adid_md5 String,
    fire_adid String,
    oaid String,
    oaid_md5 String,
    android_id String,
    android_id_md5 String,
    win_adid String,
    win_udid String,
    win_hwid String,
    win_naid String,
    mac_md5 String,
    mac_sha1 String,
    web_uuid String,
    os_name LowCardinality(String),
    os_version LowCardinality(String),
    api_level Nullable(Int64),
    device_name String,
    device_model String,
    hardware_name String,
    cpu_type LowCardinality(String),
    device_manufacturer LowCardinality(String),
    device_type LowCardinality(String),
    ip_address String,
    proxy_ip_address String,
    isp LowCardinality(String),
    connection_type LowCardinality(String),
    network_type LowCardinality(String),
    mcc LowCardinality(String),
    mnc LowCardinality(String),
    country LowCardinality(String),
    country_subdivision LowCardinality(String),
    region LowCardinality(String),
    city String,
    postal_code String,
    language LowCardinality(String),
    timezone LowCardinality(String),
    user_agent String,
    att_status Nullable(Int64),
    tracking_enabled Nullable(UInt8),
    tracking_limited Nullable(UInt8),
    third_party_sharing_disabled Nullable(UInt8),
    session_count Nullable(Int64),
    lifetime_session_count Nullable(Int64),
    last_session_time Nullable(DateTime('UTC')),
    time_spent Nullable(Int64),
    last_time_spent Nullable(Int64),
    revenue Nullable(Int64),
    revenue_float Nullable(Float64),
    currency LowCardinality(String),
    revenue_usd Nullable(Float64),
    revenue_usd_cents Nullable(Int64),
    revenue_cny_cents Nullable(Int64),
    reporting_revenue Nullable(Float64),
    reporting_currency LowCardinality(String),
    partner_parameters String,
    partner_parameters_kv Nested(key String, value String),
    publisher_parameters String,
    publisher_parameters_kv Nested(key String, value String),
    callback_params String,
    callback_params_kv Nested(key String, value String),
    ad_impressions_count Nullable(Int64),
    ad_mediation_platform LowCardinality(String),
    ad_revenue_network LowCardinality(String),
    ad_revenue_unit LowCardinality(String),
    ad_revenue_placement LowCardinality(String),
    ad_revenue_payload String,
    cost_type LowCardinality(String),
    cost_amount Nullable(Float64),
    cost_currency LowCardinality(String),
    reporting_cost Nullable(Float64),
    cost_id_md5 String,
    event_cost_id String,
    subscription_event_type LowCardinality(String),
    subscription_event_subtype LowCardinality(String),
    subscription_product_id LowCardinality(String),
    subscription_sales_region LowCardinality(String),
    subscription_transaction_id String,
    subscription_original_transaction_id String,
    subscription_expired_transaction_id String,
    subscription_store LowCardinality(String),
    subscription_purchased_at Nullable(DateTime('UTC')),
    subscription_expiration_time Nullable(DateTime('UTC')),
    subscription_cancelled_at Nullable(DateTime('UTC')),
    subscription_environment LowCardinality(String),
    uninstalled_at Nullable(DateTime('UTC')),
    reinstalled_at Nullable(DateTime('UTC')),
    time_to_uninstall Nullable(Int64),
    time_to_reinstall Nullable(Int64),
    rejection_reason LowCardinality(String),
    sk_ts Nullable(DateTime('UTC')),
    sk_payload String,
    sk_version LowCardinality(String),
    sk_network_id LowCardinality(String),
    sk_campaign_id Nullable(Int64),
    sk_transaction_id String,
    sk_app_id String,
    sk_attribution_signature String,
    sk_invalid_signature Nullable(UInt8),
    sk_redownload Nullable(UInt8),
    sk_fidelity_type Nullable(UInt8),
    sk_did_win Nullable(UInt8),
    count_min Nullable(Int64),
    count_max Nullable(Int64),
    reporting_revenue_min Nullable(Float64),
    reporting_revenue_max Nullable(Float64),
    sk_conversion_value Nullable(Int64),
    google_ads_campaign_type LowCardinality(String),
    google_ads_campaign_name String,
    google_ads_campaign_id String,
    google_ads_adgroup_id String,
    google_ads_adgroup_name String,
    google_ads_creative_id String,
    google_ads_network_type LowCardinality(String),
    google_ads_network_subtype LowCardinality(String),
    google_ads_keyword String,
    google_ads_matchtype LowCardinality(String),
    google_ads_placement String,
    google_ads_video_id String,
    search_term String,
    fb_campaign_group_name String,
    fb_campaign_group_id String,
    fb_campaign_name String,
    fb_campaign_id String,
    fb_adgroup_name String,
    fb_adgroup_id String,
    fb_ad_objective_name LowCardinality(String),
    fb_account_id String,
    fb_platform_position LowCardinality(String),
    fb_install_referrer String,
    fb_install_referrer_account_id String,
    fb_install_referrer_publisher_platform LowCardinality(String),
    fb_install_referrer_campaign_group_id String,
    fb_install_referrer_campaign_group_name String,
    fb_install_referrer_campaign_id String,
    fb_install_referrer_campaign_name String,
    fb_install_referrer_adgroup_id String,
    fb_install_referrer_adgroup_name String,
    fb_install_referrer_ad_id String,
    fb_install_referrer_ad_objective_name LowCardinality(String),
    meta_install_referrer String,
    iad_ad_id Nullable(Int64),
    iad_conversion_type LowCardinality(String),
    iad_country_or_region LowCardinality(String),
    iad_keyword String,
    iad_keyword_id Nullable(Int64),
    iad_org_id Nullable(Int64),
    iad_keyword_matchtype LowCardinality(String),
    iad_creative_set_name String,
    iad_creative_set_id String,
    tweet_id String,
    twitter_line_item_id String,
    amazon_ads_site_name String,
    amazon_ads_source_name String,
    prediction_label LowCardinality(String),
    predicted_value Nullable(Float64),
    prediction_period_days Nullable(Int64),
    extra Nested(key String, value String),
    raw_query String CODEC(ZSTD(3)),
    partner_parameters_map Map(String, String) ALIAS mapFromArrays(partner_parameters_kv.key, partner_parameters_kv.value),
    publisher_parameters_map Map(String, String) ALIAS mapFromArrays(publisher_parameters_kv.key, publisher_parameters_kv.value),
    callback_params_map Map(String, String) ALIAS mapFromArrays(callback_params_kv.key, callback_params_kv.value),
    extra_map Map(String, String) ALIAS mapFromArrays(extra.key, extra.value),
    INDEX idx_adid adid TYPE bloom_filter GRANULARITY 4,
    INDEX idx_idfa idfa TYPE bloom_filter GRANULARITY 4,
    INDEX idx_gps_adid gps_adid TYPE bloom_filter GRANULARITY 4,
    INDEX idx_idfv idfv TYPE bloom_filter GRANULARITY 4,
    INDEX idx_nonce nonce TYPE bloom_filter GRANULARITY 4,
    INDEX idx_sk_transaction_id sk_transaction_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_date)
ORDER BY (activity_kind, event_date, callback_id)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

-- table adjust.callbacks_rejects
CREATE TABLE IF NOT EXISTS adjust.callbacks_rejects
(
    rejected_at DateTime('UTC'),
    callback_id UInt64,
    error String,
    row_json String,
    row String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(rejected_at)
ORDER BY (rejected_at, callback_id);

-- table adjust.installs_daily (installs per day, app, network, campaign and country)
CREATE TABLE IF NOT EXISTS adjust.installs_daily
(
    day Date,
    app_token LowCardinality(String),
    app_name LowCardinality(String),
    network_name LowCardinality(String),
    campaign_name String,
    country LowCardinality(String),
    installs UInt64
)
ENGINE = SummingMergeTree((installs))
PARTITION BY toYYYYMM(day)
ORDER BY (day, app_token, app_name, network_name, campaign_name, country)
SETTINGS non_replicated_deduplication_window = 1000;

-- table adjust.revenue_daily (callbacks and revenue per day, kind, app, event and currency)
CREATE TABLE IF NOT EXISTS adjust.revenue_daily
(
    day Date,
    activity_kind LowCardinality(String),
    app_token LowCardinality(String),
    event LowCardinality(String),
    event_name LowCardinality(String),
    currency LowCardinality(String),
    events UInt64,
    revenue Float64,
    reporting_revenue Float64
)
ENGINE = SummingMergeTree((events, revenue, reporting_revenue))
PARTITION BY toYYYYMM(day)
ORDER BY (day, activity_kind, app_token, event, event_name, currency)
SETTINGS non_replicated_deduplication_window = 1000;

-- table adjust.rejects_daily (fraud rejections per day, kind, app, reason and network)
CREATE TABLE IF NOT EXISTS adjust.rejects_daily
(
    day Date,
    activity_kind LowCardinality(String),
    app_token LowCardinality(String),
    rejection_reason LowCardinality(String),
    network_name LowCardinality(String),
    rejects UInt64
)
ENGINE = SummingMergeTree((rejects))
PARTITION BY toYYYYMM(day)
ORDER BY (day, activity_kind, app_token, rejection_reason, network_name)
SETTINGS non_replicated_deduplication_window = 1000;

-- materialized view adjust.installs_daily_mv -> adjust.installs_daily
-- Counts every inserted row: an activity Adjust delivered twice (global and single-activity
-- URL, Adjust's retries) is counted twice here (on 18.16 also a batch the sink re-sent after
-- an ambiguous failure), while FINAL and the per-activity views show it once.
CREATE MATERIALIZED VIEW IF NOT EXISTS adjust.installs_daily_mv TO adjust.installs_daily AS
SELECT
    event_date AS day,
    app_token,
    app_name,
    network_name,
    campaign_name,
    country,
    count() AS installs
FROM adjust.callbacks
WHERE activity_kind IN ('install') AND environment != 'sandbox'
GROUP BY day, app_token, app_name, network_name, campaign_name, country;

-- materialized view adjust.revenue_daily_mv -> adjust.revenue_daily
-- Counts every inserted row: an activity Adjust delivered twice (global and single-activity
-- URL, Adjust's retries) is counted twice here (on 18.16 also a batch the sink re-sent after
-- an ambiguous failure), while FINAL and the per-activity views show it once.
CREATE MATERIALIZED VIEW IF NOT EXISTS adjust.revenue_daily_mv TO adjust.revenue_daily AS
SELECT
    event_date AS day,
    activity_kind,
    app_token,
    event,
    event_name,
    currency,
    count() AS events,
    sum(ifNull(revenue_float, 0)) AS revenue,
    sum(ifNull(reporting_revenue, 0)) AS reporting_revenue
FROM adjust.callbacks
WHERE activity_kind IN ('event', 'ad_revenue', 'subscription') AND environment != 'sandbox'
GROUP BY day, activity_kind, app_token, event, event_name, currency;

-- materialized view adjust.rejects_daily_mv -> adjust.rejects_daily
-- Counts every inserted row: an activity Adjust delivered twice (global and single-activity
-- URL, Adjust's retries) is counted twice here (on 18.16 also a batch the sink re-sent after
-- an ambiguous failure), while FINAL and the per-activity views show it once.
CREATE MATERIALIZED VIEW IF NOT EXISTS adjust.rejects_daily_mv TO adjust.rejects_daily AS
SELECT
    event_date AS day,
    activity_kind,
    app_token,
    rejection_reason,
    network_name,
    count() AS rejects
FROM adjust.callbacks
WHERE activity_kind IN ('rejected_install', 'rejected_reattribution') AND environment != 'sandbox'
GROUP BY day, activity_kind, app_token, rejection_reason, network_name;

-- view adjust.installs (dropped, to be created with the current columns)
DROP VIEW IF EXISTS adjust.installs;

-- view adjust.installs (install)
CREATE VIEW IF NOT EXISTS adjust.installs AS
SELECT
    received_at, event_date, callback_id, callback_trigger, source_ip, activity_kind, app_id,
    app_name, app_name_dashboard, app_token, app_version, app_version_raw, app_version_short, store,
    environment, sdk_version, created_at, created_at_hour, created_at_milli, nonce, random,
    random_user_id, push_token, tracker, link_token, tracker_name, link_name, network_name,
    campaign_name, adgroup_name, creative_name, first_tracker, first_tracker_name, last_tracker,
    last_tracker_name, outdated_tracker, outdated_link_token, outdated_tracker_name,
    attribution_updated_at, is_organic, is_reattributed, impression_based, is_s2s,
    is_s2s_engagement_based, is_untrusted, is_redownload, match_type, reftag, click_time,
    click_time_hour, impression_time, impression_time_hour, engagement_time, engagement_time_hour,
    installed_at, installed_at_hour, conversion_duration, reattributed_at, reattributed_at_hour,
    install_begin_time, install_finish_time, referral_time, referrer, click_referer, deeplink,
    label, gclid, click_attribution_window, impression_attribution_window,
    fingerprint_attribution_window, reattribution_attribution_window, inactive_user_definition,
    attribution_ttl, attribution_expires_at, last_fallback_time, last_fallback_time_hour,
    callback_ttl, adid, idfa, idfa_upper, idfa_md5, idfa_md5_hex, idfv, gps_adid, gps_adid_md5,
    fire_adid, oaid, oaid_md5, android_id, android_id_md5, win_adid, win_udid, win_hwid, win_naid,
    mac_md5, mac_sha1, web_uuid, os_name, os_version, api_level, device_name, device_model,
    hardware_name, cpu_type, device_manufacturer, device_type, ip_address, proxy_ip_address, isp,
    connection_type, network_type, mcc, mnc, country, country_subdivision, region, city,
    postal_code, language, timezone, user_agent, att_status, tracking_enabled, tracking_limited,
    third_party_sharing_disabled, cost_type, cost_amount, cost_currency, reporting_cost,
    cost_id_md5, event_cost_id, google_ads_campaign_type, google_ads_campaign_name,
    google_ads_campaign_id, google_ads_adgroup_id, google_ads_adgroup_name, google_ads_creative_id,
    google_ads_network_type, google_ads_network_subtype, google_ads_keyword, google_ads_matchtype,
    google_ads_placement, google_ads_video_id, search_term, fb_campaign_group_name,
    fb_campaign_group_id, fb_campaign_name, fb_campaign_id, fb_adgroup_name, fb_adgroup_id,
    fb_ad_objective_name, fb_account_id, fb_platform_position, fb_install_referrer,
    fb_install_referrer_account_id, fb_install_referrer_publisher_platform,
    fb_install_referrer_campaign_group_id, fb_install_referrer_campaign_group_name,
    fb_install_referrer_campaign_id, fb_install_referrer_campaign_name,
    fb_install_referrer_adgroup_id, fb_install_referrer_adgroup_name, fb_install_referrer_ad_id,
    fb_install_referrer_ad_objective_name, meta_install_referrer, iad_ad_id, iad_conversion_type,
    iad_country_or_region, iad_keyword, iad_keyword_id, iad_org_id, iad_keyword_matchtype,
    iad_creative_set_name, iad_creative_set_id, tweet_id, twitter_line_item_id,
    amazon_ads_site_name, amazon_ads_source_name, prediction_label, predicted_value,
    prediction_period_days, extra.key, extra.value, extra_map
FROM adjust.callbacks FINAL
WHERE activity_kind IN ('install');

-- view adjust.events (dropped, to be created with the current columns)
DROP VIEW IF EXISTS adjust.events;

-- view adjust.events (event)
CREATE VIEW IF NOT EXISTS adjust.events AS
SELECT
    received_at, event_date, callback_id, callback_trigger, source_ip, activity_kind, app_id,
    app_name, app_name_dashboard, app_token, app_version, app_version_raw, app_version_short, store,
    environment, sdk_version, created_at, created_at_hour, created_at_milli, event, event_name,
    nonce, random, random_user_id, push_token, tracker, link_token, tracker_name, link_name,
    network_name, campaign_name, adgroup_name, creative_name, is_organic, installed_at, deeplink,
    label, adid, idfa, idfa_upper, idfa_md5, idfa_md5_hex, idfv, gps_adid, gps_adid_md5, fire_adid,
    oaid, oaid_md5, android_id, android_id_md5, win_adid, win_udid, win_hwid, win_naid, mac_md5,
    mac_sha1, web_uuid, os_name, os_version, api_level, device_name, device_model, hardware_name,
    cpu_type, device_manufacturer, device_type, ip_address, proxy_ip_address, isp, connection_type,
    network_type, mcc, mnc, country, country_subdivision, region, city, postal_code, language,
    timezone, user_agent, att_status, tracking_enabled, tracking_limited,
    third_party_sharing_disabled, revenue, revenue_float, currency, revenue_usd, revenue_usd_cents,
    revenue_cny_cents, reporting_revenue, reporting_currency, partner_parameters,
    partner_parameters_kv.key, partner_parameters_kv.value, partner_parameters_map,
    publisher_parameters, publisher_parameters_kv.key, publisher_parameters_kv.value,
    publisher_parameters_map, callback_params, callback_params_kv.key, callback_params_kv.value,
    callback_params_map, extra.key, extra.value, extra_map
FROM adjust.callbacks FINAL
WHERE activity_kind IN ('event');

-- view adjust.sessions (dropped, to be created with the current columns)
DROP VIEW IF EXISTS adjust.sessions;

-- view adjust.sessions (session)
CREATE VIEW IF NOT EXISTS adjust.sessions AS
SELECT
    received_at, event_date, callback_id, callback_trigger, source_ip, activity_kind, app_id,
    app_name, app_name_dashboard, app_token, app_version, app_version_raw, app_version_short, store,
    environment, sdk_version, created_at, created_at_hour, created_at_milli, nonce, random,
    random_user_id, push_token, tracker, link_token, tracker_name, link_name, network_name,
    campaign_name, adgroup_name, creative_name, is_organic, installed_at, deeplink, label, adid,
    idfa, idfa_upper, idfa_md5, idfa_md5_hex, idfv, gps_adid, gps_adid_md5, fire_adid, oaid,
    oaid_md5, android_id, android_id_md5, win_adid, win_udid, win_hwid, win_naid, mac_md5, mac_sha1,
    web_uuid, os_name, os_version, api_level, device_name, device_model, hardware_name, cpu_type,
    device_manufacturer, device_type, ip_address, proxy_ip_address, isp, connection_type,
    network_type, mcc, mnc, country, country_subdivision, region, city, postal_code, language,
    timezone, user_agent, att_status, tracking_enabled, tracking_limited,
    third_party_sharing_disabled, session_count, lifetime_session_count, last_session_time,
    time_spent, last_time_spent, extra.key, extra.value, extra_map
FROM adjust.callbacks FINAL
WHERE activity_kind IN ('session');

-- view adjust.clicks (dropped, to be created with the current columns)
DROP VIEW IF EXISTS adjust.clicks;

-- view adjust.clicks (click)
CREATE VIEW IF NOT EXISTS adjust.clicks AS
SELECT
    received_at, event_date, callback_id, callback_trigger, source_ip, activity_kind, app_id,
    app_name, app_name_dashboard, app_token, app_version, app_version_raw, app_version_short, store,
    environment, sdk_version, created_at, created_at_hour, created_at_milli, nonce, random,
    random_user_id, push_token, tracker, link_token, tracker_name, link_name, network_name,
    campaign_name, adgroup_name, creative_name, first_tracker, first_tracker_name, last_tracker,
    last_tracker_name, outdated_tracker, outdated_link_token, outdated_tracker_name,
    attribution_updated_at, is_organic, is_reattributed, impression_based, is_s2s,
    is_s2s_engagement_based, is_untrusted, match_type, reftag, click_time, click_time_hour,
    impression_time, impression_time_hour, engagement_time, engagement_time_hour, reattributed_at,
    reattributed_at_hour, click_referer, deeplink, label, gclid, click_attribution_window,
    impression_attribution_window, fingerprint_attribution_window, reattribution_attribution_window,
    inactive_user_definition, attribution_ttl, attribution_expires_at, last_fallback_time,
    last_fallback_time_hour, callback_ttl, adid, idfa, idfa_upper, idfa_md5, idfa_md5_hex, idfv,
    gps_adid, gps_adid_md5, fire_adid, oaid, oaid_md5, android_id, android_id_md5, win_adid,
    win_udid, win_hwid, win_naid, mac_md5, mac_sha1, web_uuid, os_name, os_version, api_level,
    device_name, device_model, hardware_name, cpu_type, device_manufacturer, device_type,
    ip_address, proxy_ip_address, isp, connection_type, network_type, mcc, mnc, country,
    country_subdivision, region, city, postal_code, language, timezone, user_agent, cost_type,
    cost_amount, cost_currency, reporting_cost, cost_id_md5, event_cost_id, extra.key, extra.value,
    extra_map
FROM adjust.callbacks FINAL
WHERE activity_kind IN ('click');

-- view adjust.impressions (dropped, to be created with the current columns)
DROP VIEW IF EXISTS adjust.impressions;

-- view adjust.impressions (impression)
CREATE VIEW IF NOT EXISTS adjust.impressions AS
SELECT
    received_at, event_date, callback_id, callback_trigger, source_ip, activity_kind, app_id,
    app_name, app_name_dashboard, app_token, app_version, app_version_raw, app_version_short, store,
    environment, sdk_version, created_at, created_at_hour, created_at_milli, nonce, random,
    random_user_id, push_token, tracker, link_token, tracker_name, link_name, network_name,
    campaign_name, adgroup_name, creative_name, first_tracker, first_tracker_name, last_tracker,
    last_tracker_name, outdated_tracker, outdated_link_token, outdated_tracker_name,
    attribution_updated_at, is_organic, is_reattributed, impression_based, is_s2s,
    is_s2s_engagement_based, is_untrusted, match_type, reftag, click_time, click_time_hour,
    impression_time, impression_time_hour, engagement_time, engagement_time_hour, reattributed_at,
    reattributed_at_hour, click_referer, deeplink, label, gclid, click_attribution_window,
    impression_attribution_window, fingerprint_attribution_window, reattribution_attribution_window,
    inactive_user_definition, attribution_ttl, attribution_expires_at, last_fallback_time,
    last_fallback_time_hour, callback_ttl, adid, idfa, idfa_upper, idfa_md5, idfa_md5_hex, idfv,
    gps_adid, gps_adid_md5, fire_adid, oaid, oaid_md5, android_id, android_id_md5, win_adid,
    win_udid, win_hwid, win_naid, mac_md5, mac_sha1, web_uuid, os_name, os_version, api_level,
    device_name, device_model, hardware_name, cpu_type, device_manufacturer, device_type,
    ip_address, proxy_ip_address, isp, connection_type, network_type, mcc, mnc, country,
    country_subdivision, region, city, postal_code, language, timezone, user_agent, cost_type,
    cost_amount, cost_currency, reporting_cost, cost_id_md5, event_cost_id, extra.key, extra.value,
    extra_map
FROM adjust.callbacks FINAL
WHERE activity_kind IN ('impression');

-- view adjust.reattributions (dropped, to be created with the current columns)
DROP VIEW IF EXISTS adjust.reattributions;

-- view adjust.reattributions (reattribution, reattribution_reinstall)
CREATE VIEW IF NOT EXISTS adjust.reattributions AS
SELECT
    received_at, event_date, callback_id, callback_trigger, source_ip, activity_kind, app_id,
    app_name, app_name_dashboard, app_token, app_version, app_version_raw, app_version_short, store,
    environment, sdk_version, created_at, created_at_hour, created_at_milli, nonce, random,
    random_user_id, push_token, tracker, link_token, tracker_name, link_name, network_name,
    campaign_name, adgroup_name, creative_name, first_tracker, first_tracker_name, last_tracker,
    last_tracker_name, outdated_tracker, outdated_link_token, outdated_tracker_name,
    attribution_updated_at, is_organic, is_reattributed, impression_based, is_s2s,
    is_s2s_engagement_based, is_untrusted, is_redownload, match_type, reftag, click_time,
    click_time_hour, impression_time, impression_time_hour, engagement_time, engagement_time_hour,
    installed_at, installed_at_hour, conversion_duration, reattributed_at, reattributed_at_hour,
    install_begin_time, install_finish_time, referral_time, referrer, click_referer, deeplink,
    label, gclid, click_attribution_window, impression_attribution_window,
    fingerprint_attribution_window, reattribution_attribution_window, inactive_user_definition,
    attribution_ttl, attribution_expires_at, last_fallback_time, last_fallback_time_hour,
    callback_ttl, adid, idfa, idfa_upper, idfa_md5, idfa_md5_hex, idfv, gps_adid, gps_adid_md5,
    fire_adid, oaid, oaid_md5, android_id, android_id_md5, win_adid, win_udid, win_hwid, win_naid,
    mac_md5, mac_sha1, web_uuid, os_name, os_version, api_level, device_name, device_model,
    hardware_name, cpu_type, device_manufacturer, device_type, ip_address, proxy_ip_address, isp,
    connection_type, network_type, mcc, mnc, country, country_subdivision, region, city,
    postal_code, language, timezone, user_agent, att_status, tracking_enabled, tracking_limited,
    third_party_sharing_disabled, uninstalled_at, reinstalled_at, time_to_uninstall,
    time_to_reinstall, google_ads_campaign_type, google_ads_campaign_name, google_ads_campaign_id,
    google_ads_adgroup_id, google_ads_adgroup_name, google_ads_creative_id, google_ads_network_type,
    google_ads_network_subtype, google_ads_keyword, google_ads_matchtype, google_ads_placement,
    google_ads_video_id, search_term, fb_campaign_group_name, fb_campaign_group_id,
    fb_campaign_name, fb_campaign_id, fb_adgroup_name, fb_adgroup_id, fb_ad_objective_name,
    fb_account_id, fb_platform_position, fb_install_referrer, fb_install_referrer_account_id,
    fb_install_referrer_publisher_platform, fb_install_referrer_campaign_group_id,
    fb_install_referrer_campaign_group_name, fb_install_referrer_campaign_id,
    fb_install_referrer_campaign_name, fb_install_referrer_adgroup_id,
    fb_install_referrer_adgroup_name, fb_install_referrer_ad_id,
    fb_install_referrer_ad_objective_name, meta_install_referrer, iad_ad_id, iad_conversion_type,
    iad_country_or_region, iad_keyword, iad_keyword_id, iad_org_id, iad_keyword_matchtype,
    iad_creative_set_name, iad_creative_set_id, tweet_id, twitter_line_item_id,
    amazon_ads_site_name, amazon_ads_source_name, prediction_label, predicted_value,
    prediction_period_days, extra.key, extra.value, extra_map
FROM adjust.callbacks FINAL
WHERE activity_kind IN ('reattribution', 'reattribution_reinstall');

-- view adjust.ad_revenue (dropped, to be created with the current columns)
DROP VIEW IF EXISTS adjust.ad_revenue;

-- view adjust.ad_revenue (ad_revenue)
CREATE VIEW IF NOT EXISTS adjust.ad_revenue AS
SELECT
    received_at, event_date, callback_id, callback_trigger, source_ip, activity_kind, app_id,
    app_name, app_name_dashboard, app_token, app_version, app_version_raw, app_version_short, store,
    environment, sdk_version, created_at, created_at_hour, created_at_milli, nonce, random,
    random_user_id, push_token, tracker, link_token, tracker_name, link_name, network_name,
    campaign_name, adgroup_name, creative_name, is_organic, installed_at, deeplink, label, adid,
    idfa, idfa_upper, idfa_md5, idfa_md5_hex, idfv, gps_adid, gps_adid_md5, fire_adid, oaid,
    oaid_md5, android_id, android_id_md5, win_adid, win_udid, win_hwid, win_naid, mac_md5, mac_sha1,
    web_uuid, os_name, os_version, api_level, device_name, device_model, hardware_name, cpu_type,
    device_manufacturer, device_type, ip_address, proxy_ip_address, isp, connection_type,
    network_type, mcc, mnc, country, country_subdivision, region, city, postal_code, language,
    timezone, user_agent, revenue, revenue_float, currency, revenue_usd, revenue_usd_cents,
    revenue_cny_cents, reporting_revenue, reporting_currency, ad_impressions_count,
    ad_mediation_platform, ad_revenue_network, ad_revenue_unit, ad_revenue_placement,
    ad_revenue_payload, extra.key, extra.value, extra_map
FROM adjust.callbacks FINAL
WHERE activity_kind IN ('ad_revenue');

-- view adjust.rejected (dropped, to be created with the current columns)
DROP VIEW IF EXISTS adjust.rejected;

-- view adjust.rejected (rejected_install, rejected_reattribution)
CREATE VIEW IF NOT EXISTS adjust.rejected AS
SELECT
    received_at, event_date, callback_id, callback_trigger, source_ip, activity_kind, app_id,
    app_name, app_name_dashboard, app_token, app_version, app_version_raw, app_version_short, store,
    environment, sdk_version, created_at, created_at_hour, created_at_milli, nonce, random,
    random_user_id, push_token, tracker, link_token, tracker_name, link_name, network_name,
    campaign_name, adgroup_name, creative_name, first_tracker, first_tracker_name, last_tracker,
    last_tracker_name, outdated_tracker, outdated_link_token, outdated_tracker_name,
    attribution_updated_at, is_organic, is_reattributed, impression_based, is_s2s,
    is_s2s_engagement_based, is_untrusted, is_redownload, match_type, reftag, click_time,
    click_time_hour, impression_time, impression_time_hour, engagement_time, engagement_time_hour,
    installed_at, installed_at_hour, conversion_duration, reattributed_at, reattributed_at_hour,
    install_begin_time, install_finish_time, referral_time, referrer, click_referer, deeplink,
    label, gclid, click_attribution_window, impression_attribution_window,
    fingerprint_attribution_window, reattribution_attribution_window, inactive_user_definition,
    attribution_ttl, attribution_expires_at, last_fallback_time, last_fallback_time_hour,
    callback_ttl, adid, idfa, idfa_upper, idfa_md5, idfa_md5_hex, idfv, gps_adid, gps_adid_md5,
    fire_adid, oaid, oaid_md5, android_id, android_id_md5, win_adid, win_udid, win_hwid, win_naid,
    mac_md5, mac_sha1, web_uuid, os_name, os_version, api_level, device_name, device_model,
    hardware_name, cpu_type, device_manufacturer, device_type, ip_address, proxy_ip_address, isp,
    connection_type, network_type, mcc, mnc, country, country_subdivision, region, city,
    postal_code, language, timezone, user_agent, rejection_reason, extra.key, extra.value, extra_map
FROM adjust.callbacks FINAL
WHERE activity_kind IN ('rejected_install', 'rejected_reattribution');

-- view adjust.skan (dropped, to be created with the current columns)
DROP VIEW IF EXISTS adjust.skan;

-- view adjust.skan (sk_install, sk_event, sk_qualifier, sk_cv_update, sk_install_direct)
CREATE VIEW IF NOT EXISTS adjust.skan AS
SELECT
    received_at, event_date, callback_id, callback_trigger, source_ip, activity_kind, app_id,
    app_name, app_name_dashboard, app_token, app_version, app_version_raw, app_version_short, store,
    environment, sdk_version, created_at, created_at_hour, created_at_milli, event, event_name,
    nonce, random, random_user_id, push_token, tracker, link_token, tracker_name, link_name,
    network_name, campaign_name, adgroup_name, creative_name, is_organic, installed_at, deeplink,
    label, adid, idfa, idfa_upper, idfa_md5, idfa_md5_hex, idfv, gps_adid, gps_adid_md5, fire_adid,
    oaid, oaid_md5, android_id, android_id_md5, win_adid, win_udid, win_hwid, win_naid, mac_md5,
    mac_sha1, web_uuid, os_name, os_version, api_level, device_name, device_model, hardware_name,
    cpu_type, device_manufacturer, device_type, ip_address, proxy_ip_address, isp, connection_type,
    network_type, mcc, mnc, country, country_subdivision, region, city, postal_code, language,
    timezone, user_agent, sk_ts, sk_payload, sk_version, sk_network_id, sk_campaign_id,
    sk_transaction_id, sk_app_id, sk_attribution_signature, sk_invalid_signature, sk_redownload,
    sk_fidelity_type, sk_did_win, count_min, count_max, reporting_revenue_min,
    reporting_revenue_max, sk_conversion_value, extra.key, extra.value, extra_map
FROM adjust.callbacks FINAL
WHERE activity_kind IN ('sk_install', 'sk_event', 'sk_qualifier', 'sk_cv_update', 'sk_install_direct');

-- view adjust.uninstalls (dropped, to be created with the current columns)
DROP VIEW IF EXISTS adjust.uninstalls;

-- view adjust.uninstalls (uninstall, reinstall)
CREATE VIEW IF NOT EXISTS adjust.uninstalls AS
SELECT
    received_at, event_date, callback_id, callback_trigger, source_ip, activity_kind, app_id,
    app_name, app_name_dashboard, app_token, app_version, app_version_raw, app_version_short, store,
    environment, sdk_version, created_at, created_at_hour, created_at_milli, nonce, random,
    random_user_id, push_token, tracker, link_token, tracker_name, link_name, network_name,
    campaign_name, adgroup_name, creative_name, is_organic, installed_at, deeplink, label, adid,
    idfa, idfa_upper, idfa_md5, idfa_md5_hex, idfv, gps_adid, gps_adid_md5, fire_adid, oaid,
    oaid_md5, android_id, android_id_md5, win_adid, win_udid, win_hwid, win_naid, mac_md5, mac_sha1,
    web_uuid, os_name, os_version, api_level, device_name, device_model, hardware_name, cpu_type,
    device_manufacturer, device_type, ip_address, proxy_ip_address, isp, connection_type,
    network_type, mcc, mnc, country, country_subdivision, region, city, postal_code, language,
    timezone, user_agent, last_session_time, uninstalled_at, reinstalled_at, time_to_uninstall,
    time_to_reinstall, extra.key, extra.value, extra_map
FROM adjust.callbacks FINAL
WHERE activity_kind IN ('uninstall', 'reinstall');
