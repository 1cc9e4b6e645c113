//! The placeholder catalog: one entry per Adjust placeholder, the single source of truth from which
//! the decoder, the row encoding, the DDL and the callback URL template are generated.
//!
//! Order matters: the columns of `adjust.callbacks` follow this order, so new placeholders are
//! appended at the end of their section and never reordered.

/// How a placeholder's value is typed in ClickHouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ty {
    /// Identifier or free text → `String` (`''` when not sent).
    Str,
    /// Repetitive string (enums, countries, network names) → `LowCardinality(String)`.
    LowCard,
    /// Unix epoch seconds → `Nullable(DateTime('UTC'))`.
    Time,
    /// Unix epoch milliseconds → `Nullable(DateTime64(3, 'UTC'))` (modern), `Nullable(Int64)` (legacy).
    TimeMs,
    /// `0`/`1` flag → `Nullable(UInt8)`.
    Flag,
    /// Integer → `Nullable(Int64)`.
    Int,
    /// Decimal number → `Nullable(Float64)`.
    Float,
    /// JSON text kept as sent → `String`; checked for validity (counted when invalid).
    Json,
    /// Flat JSON object of string pairs → `String` (raw) plus a `<name>_kv` `Nested(key, value)`
    /// column of its pairs.
    Params,
}

/// Which activities a placeholder is filled for; drives the per-trigger callback URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Filled for every activity (app, device, time, attribution basics).
    All,
    /// Attribution details: installs, reattributions, reinstalls, updates, rejections, clicks,
    /// impressions.
    Attribution,
    /// Click / impression engagement details.
    Engagement,
    /// Install-time details (Play referrer, install times).
    Install,
    /// Sessions and time spent.
    Session,
    /// In-app events and revenue.
    Event,
    /// Ad revenue (mediation).
    AdRevenue,
    /// Ad spend / cost.
    Cost,
    /// Subscriptions.
    Subscription,
    /// Uninstall / reinstall.
    Uninstall,
    /// Fraud prevention rejections.
    Fraud,
    /// SKAdNetwork postbacks.
    Skan,
    /// Self-attributing networks and partner-specific fields (Google, Meta, Apple Search Ads, …).
    Partner,
    /// Privacy and consent (ATT, tracking flags).
    Privacy,
}

/// One Adjust placeholder: `name` is both the query key Adjust sends (as `name={name}`) and the
/// ClickHouse column name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placeholder {
    pub name: &'static str,
    pub ty: Ty,
    pub scope: Scope,
}

const fn p(name: &'static str, ty: Ty, scope: Scope) -> Placeholder {
    Placeholder { name, ty, scope }
}

use Scope::*;
use Ty::*;

/// Every placeholder, in column order.
pub const CATALOG: &[Placeholder] = &[
    p("activity_kind", LowCard, All),
    // 3.2 App & activity core
    p("app_id", LowCard, All),
    p("app_name", LowCard, All),
    p("app_name_dashboard", LowCard, All),
    p("app_token", LowCard, All),
    p("app_version", LowCard, All),
    p("app_version_raw", LowCard, All),
    p("app_version_short", LowCard, All),
    p("store", LowCard, All),
    p("environment", LowCard, All),
    p("sdk_version", LowCard, All),
    p("created_at", Time, All),
    p("created_at_hour", Time, All),
    p("created_at_milli", TimeMs, All),
    p("event", LowCard, Event),
    p("event_name", LowCard, Event),
    p("nonce", Str, All),
    p("random", Int, All),
    p("random_user_id", Str, All),
    p("push_token", Str, All),
    // 3.3 Attribution / link structure
    p("tracker", Str, All),
    p("link_token", Str, All),
    p("tracker_name", Str, All),
    p("link_name", Str, All),
    p("network_name", LowCard, All),
    p("campaign_name", Str, All),
    p("adgroup_name", Str, All),
    p("creative_name", Str, All),
    p("first_tracker", Str, Attribution),
    p("first_tracker_name", Str, Attribution),
    p("last_tracker", Str, Attribution),
    p("last_tracker_name", Str, Attribution),
    p("outdated_tracker", Str, Attribution),
    p("outdated_link_token", Str, Attribution),
    p("outdated_tracker_name", Str, Attribution),
    p("attribution_updated_at", Time, Attribution),
    p("is_organic", Flag, All),
    p("is_reattributed", Flag, Attribution),
    p("impression_based", Flag, Engagement),
    p("is_s2s", Flag, Attribution),
    p("is_s2s_engagement_based", Flag, Attribution),
    p("is_untrusted", Flag, Attribution),
    p("is_redownload", Flag, Install),
    p("match_type", LowCard, Attribution),
    p("reftag", Str, Engagement),
    p("click_time", Time, Engagement),
    p("click_time_hour", Time, Engagement),
    p("impression_time", Time, Engagement),
    p("impression_time_hour", Time, Engagement),
    p("engagement_time", Time, Engagement),
    p("engagement_time_hour", Time, Engagement),
    p("installed_at", Time, Install),
    p("installed_at_hour", Time, Install),
    p("conversion_duration", Int, Install),
    p("reattributed_at", Time, Attribution),
    p("reattributed_at_hour", Time, Attribution),
    p("install_begin_time", Time, Install),
    p("install_finish_time", Time, Install),
    p("referral_time", Time, Install),
    p("referrer", Str, Install),
    p("click_referer", Str, Engagement),
    p("deeplink", Str, All),
    p("label", Str, All),
    p("gclid", Str, Engagement),
    // 3.4 Attribution settings (per engagement)
    p("click_attribution_window", Int, Attribution),
    p("impression_attribution_window", Int, Attribution),
    p("fingerprint_attribution_window", Int, Attribution),
    p("reattribution_attribution_window", Int, Attribution),
    p("inactive_user_definition", Int, Attribution),
    p("attribution_ttl", Int, Attribution),
    p("attribution_expires_at", Time, Attribution),
    p("last_fallback_time", Time, Attribution),
    p("last_fallback_time_hour", Time, Attribution),
    p("callback_ttl", Int, Attribution),
    // 3.5 Device & advertising identifiers
    p("adid", Str, All),
    p("idfa", Str, All),
    p("idfa_upper", Str, All),
    p("idfa_md5", Str, All),
    p("idfa_md5_hex", Str, All),
    p("idfv", Str, All),
    p("gps_adid", Str, All),
    p("gps_adid_md5", Str, All),
    p("fire_adid", Str, All),
    p("oaid", Str, All),
    p("oaid_md5", Str, All),
    p("android_id", Str, All),
    p("android_id_md5", Str, All),
    p("win_adid", Str, All),
    p("win_udid", Str, All),
    p("win_hwid", Str, All),
    p("win_naid", Str, All),
    p("mac_md5", Str, All),
    p("mac_sha1", Str, All),
    p("web_uuid", Str, All),
    // 3.6 Device, OS, network, geo
    p("os_name", LowCard, All),
    p("os_version", LowCard, All),
    p("api_level", Int, All),
    p("device_name", Str, All),
    p("device_model", Str, All),
    p("hardware_name", Str, All),
    p("cpu_type", LowCard, All),
    p("device_manufacturer", LowCard, All),
    p("device_type", LowCard, All),
    p("ip_address", Str, All),
    p("proxy_ip_address", Str, All),
    p("isp", LowCard, All),
    p("connection_type", LowCard, All),
    p("network_type", LowCard, All),
    p("mcc", LowCard, All),
    p("mnc", LowCard, All),
    p("country", LowCard, All),
    p("country_subdivision", LowCard, All),
    p("region", LowCard, All),
    p("city", Str, All),
    p("postal_code", Str, All),
    p("language", LowCard, All),
    p("timezone", LowCard, All),
    p("user_agent", Str, All),
    // 3.7 Privacy / consent
    p("att_status", Int, Privacy),
    p("tracking_enabled", Flag, Privacy),
    p("tracking_limited", Flag, Privacy),
    p("third_party_sharing_disabled", Flag, Privacy),
    // 3.8 Session / engagement
    p("session_count", Int, Session),
    p("lifetime_session_count", Int, Session),
    p("last_session_time", Time, Session),
    p("time_spent", Int, Session),
    p("last_time_spent", Int, Session),
    // 3.9 Events, revenue, currency
    p("revenue", Int, Event),
    p("revenue_float", Float, Event),
    p("currency", LowCard, Event),
    p("revenue_usd", Float, Event),
    p("revenue_usd_cents", Int, Event),
    p("revenue_cny_cents", Int, Event),
    p("reporting_revenue", Float, Event),
    p("reporting_currency", LowCard, Event),
    p("partner_parameters", Params, Event),
    p("publisher_parameters", Params, Event),
    p("callback_params", Params, Event),
    // 3.10 Ad revenue
    p("ad_impressions_count", Int, AdRevenue),
    p("ad_mediation_platform", LowCard, AdRevenue),
    p("ad_revenue_network", LowCard, AdRevenue),
    p("ad_revenue_unit", LowCard, AdRevenue),
    p("ad_revenue_placement", LowCard, AdRevenue),
    p("ad_revenue_payload", Json, AdRevenue),
    // 3.11 Ad spend / cost
    p("cost_type", LowCard, Cost),
    p("cost_amount", Float, Cost),
    p("cost_currency", LowCard, Cost),
    p("reporting_cost", Float, Cost),
    p("cost_id_md5", Str, Cost),
    p("event_cost_id", Str, Cost),
    // 3.12 Subscriptions
    p("subscription_event_type", LowCard, Subscription),
    p("subscription_event_subtype", LowCard, Subscription),
    p("subscription_product_id", LowCard, Subscription),
    p("subscription_sales_region", LowCard, Subscription),
    p("subscription_transaction_id", Str, Subscription),
    p("subscription_original_transaction_id", Str, Subscription),
    p("subscription_expired_transaction_id", Str, Subscription),
    p("subscription_store", LowCard, Subscription),
    p("subscription_purchased_at", Time, Subscription),
    p("subscription_expiration_time", Time, Subscription),
    p("subscription_cancelled_at", Time, Subscription),
    p("subscription_environment", LowCard, Subscription),
    // 3.13 Uninstall / reinstall
    p("uninstalled_at", Time, Uninstall),
    p("reinstalled_at", Time, Uninstall),
    p("time_to_uninstall", Int, Uninstall),
    p("time_to_reinstall", Int, Uninstall),
    // 3.14 Fraud
    p("rejection_reason", LowCard, Fraud),
    // 3.15 SKAdNetwork
    p("sk_ts", Time, Skan),
    p("sk_payload", Json, Skan),
    p("sk_version", LowCard, Skan),
    p("sk_network_id", LowCard, Skan),
    p("sk_campaign_id", Int, Skan),
    p("sk_transaction_id", Str, Skan),
    p("sk_app_id", Str, Skan),
    p("sk_attribution_signature", Str, Skan),
    p("sk_invalid_signature", Flag, Skan),
    p("sk_redownload", Flag, Skan),
    p("sk_fidelity_type", Flag, Skan),
    p("sk_did_win", Flag, Skan),
    p("count_min", Int, Skan),
    p("count_max", Int, Skan),
    p("reporting_revenue_min", Float, Skan),
    p("reporting_revenue_max", Float, Skan),
    p("sk_conversion_value", Int, Skan),
    // SKAdNetwork 4 (filled from Apple's postback in `sk_payload` when not sent as keys)
    p("sk_source_identifier", LowCard, Skan),
    p("sk_source_domain", Str, Skan),
    p("sk_source_app_id", Str, Skan),
    p("sk_coarse_conversion_value", LowCard, Skan),
    p("sk_postback_sequence_index", Int, Skan),
    // 3.16 Self-attributing-network & partner-specific
    p("google_ads_campaign_type", LowCard, Partner),
    p("google_ads_campaign_name", Str, Partner),
    p("google_ads_campaign_id", Str, Partner),
    p("google_ads_adgroup_id", Str, Partner),
    p("google_ads_adgroup_name", Str, Partner),
    p("google_ads_creative_id", Str, Partner),
    p("google_ads_network_type", LowCard, Partner),
    p("google_ads_network_subtype", LowCard, Partner),
    p("google_ads_keyword", Str, Partner),
    p("google_ads_matchtype", LowCard, Partner),
    p("google_ads_placement", Str, Partner),
    p("google_ads_video_id", Str, Partner),
    p("search_term", Str, Partner),
    p("fb_campaign_group_name", Str, Partner),
    p("fb_campaign_group_id", Str, Partner),
    p("fb_campaign_name", Str, Partner),
    p("fb_campaign_id", Str, Partner),
    p("fb_adgroup_name", Str, Partner),
    p("fb_adgroup_id", Str, Partner),
    p("fb_ad_objective_name", LowCard, Partner),
    p("fb_account_id", Str, Partner),
    p("fb_platform_position", LowCard, Partner),
    p("fb_install_referrer", Json, Partner),
    p("fb_install_referrer_account_id", Str, Partner),
    p("fb_install_referrer_publisher_platform", LowCard, Partner),
    p("fb_install_referrer_campaign_group_id", Str, Partner),
    p("fb_install_referrer_campaign_group_name", Str, Partner),
    p("fb_install_referrer_campaign_id", Str, Partner),
    p("fb_install_referrer_campaign_name", Str, Partner),
    p("fb_install_referrer_adgroup_id", Str, Partner),
    p("fb_install_referrer_adgroup_name", Str, Partner),
    p("fb_install_referrer_ad_id", Str, Partner),
    p("fb_install_referrer_ad_objective_name", LowCard, Partner),
    p("meta_install_referrer", Json, Partner),
    p("iad_ad_id", Int, Partner),
    p("iad_conversion_type", LowCard, Partner),
    p("iad_country_or_region", LowCard, Partner),
    p("iad_keyword", Str, Partner),
    p("iad_keyword_id", Int, Partner),
    p("iad_org_id", Int, Partner),
    p("iad_keyword_matchtype", LowCard, Partner),
    p("iad_creative_set_name", Str, Partner),
    p("iad_creative_set_id", Str, Partner),
    p("tweet_id", Str, Partner),
    p("twitter_line_item_id", Str, Partner),
    p("amazon_ads_site_name", Str, Partner),
    p("amazon_ads_source_name", Str, Partner),
    p("prediction_label", LowCard, Partner),
    p("predicted_value", Float, Partner),
    p("prediction_period_days", Int, Partner),
];

/// The hot tier: placeholders most callbacks carry and analysts filter or group by (the main device
/// identifiers, app, time, attribution, device, geo, event and revenue), plus everything the
/// rollups and `examples/sql` read (and every parameters placeholder, whose pairs have columns of
/// their own). Each has a typed column of its own. Measured on ClickHouse 18.16: a value sent costs
/// about as much in the cold arrays as in a column, while an empty column still costs on every row;
/// so what a typical callback sends stays hot (a smaller tier of ~35 made a typical install
/// callback 40 % dearer for ClickHouse), and the tier saves the columns callbacks leave empty.
/// Every other placeholder is cold: stored as text in the `cold_keys`/`cold_values` arrays and
/// exposed as an `ALIAS` column of its own name and type (`--physical` promotes one).
pub const HOT: &[&str] = &[
    "activity_kind",
    "app_id",
    "app_name",
    "app_token",
    "app_version",
    "store",
    "environment",
    "created_at",
    "event",
    "event_name",
    "nonce",
    "tracker",
    "tracker_name",
    "network_name",
    "campaign_name",
    "adgroup_name",
    "creative_name",
    "is_organic",
    "is_reattributed",
    "match_type",
    "click_time",
    "installed_at",
    "reattributed_at",
    "adid",
    "idfa",
    "idfv",
    "gps_adid",
    "fire_adid",
    "oaid",
    "android_id",
    "web_uuid",
    "os_name",
    "os_version",
    "device_type",
    "device_name",
    "ip_address",
    "country",
    "city",
    "language",
    "att_status",
    "tracking_limited",
    "session_count",
    "revenue",
    "revenue_float",
    "currency",
    "revenue_usd",
    "reporting_revenue",
    "reporting_currency",
    "partner_parameters",
    "publisher_parameters",
    "callback_params",
    "ad_mediation_platform",
    "cost_amount",
    "rejection_reason",
    "uninstalled_at",
    "sk_payload",
    "sk_campaign_id",
    "sk_transaction_id",
    "sk_conversion_value",
    "sk_source_identifier",
    "sk_coarse_conversion_value",
    "sk_postback_sequence_index",
];

static HOT_FLAGS: std::sync::LazyLock<[bool; CATALOG.len()]> = std::sync::LazyLock::new(|| {
    let mut flags = [false; CATALOG.len()];
    for (i, p) in CATALOG.iter().enumerate() {
        flags[i] = HOT.contains(&p.name) || p.ty == Ty::Params;
    }
    flags
});

/// Whether catalog entry `idx` has a typed column of its own (the hot tier).
pub fn is_hot(idx: usize) -> bool {
    HOT_FLAGS[idx]
}

/// [`is_hot`] for every catalog entry, for loops that ask for many.
pub fn hot_flags() -> &'static [bool; CATALOG.len()] {
    &HOT_FLAGS
}

#[cfg(test)]
mod tier_tests {
    use super::*;

    #[test]
    fn every_hot_name_is_a_placeholder_once() {
        for (i, name) in HOT.iter().enumerate() {
            assert!(
                CATALOG.iter().any(|p| p.name == *name),
                "{name} is not a placeholder"
            );
            assert!(!HOT[..i].contains(name), "{name} listed twice");
        }
        assert!(
            CATALOG
                .iter()
                .filter(|p| p.ty == Ty::Params)
                .all(|p| HOT.contains(&p.name))
        );
    }
}
