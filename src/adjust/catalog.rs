//! The placeholder catalog: one entry per Adjust placeholder, the single source of truth from which
//! the decoder, the row encoding, the DDL and the callback URL template are generated.
//!
//! Order matters: the columns of `adjust.callbacks` follow this order, so new placeholders are
//! appended at the end of their section and never reordered.

use std::sync::LazyLock;

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

/// Whether a placeholder has a typed column of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// A typed column of its own: placeholders most callbacks carry and analysts filter or group
    /// by (the main device identifiers, app, time, attribution, device, geo, event and revenue),
    /// everything the rollups and `examples/sql` read, and every parameters placeholder (whose
    /// pairs have columns of their own). Measured on ClickHouse 18.16: a value sent costs about as
    /// much in the cold arrays as in a column, while an empty column still costs on every row; so
    /// what a typical callback sends stays hot (a smaller tier of ~35 made a typical install
    /// callback 40 % dearer for ClickHouse), and the tier saves the columns callbacks leave empty.
    Hot,
    /// Stored as text in the row's `cold` JSON object and exposed as an `ALIAS` column of
    /// its own name and type (`--physical` promotes one).
    Cold,
}

/// A device identifier: its base placeholder (the identifier as the device reports it) and every
/// other spelling or hash of it the catalog holds (`idfa_upper`, `idfa_md5`, …), the
/// *family*. The base identifiers are what an erasure request (`gdpr_forget_device`) is recorded
/// and carried out for, in the order of this enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceIdFamily {
    Adid,
    Idfa,
    Idfv,
    GpsAdid,
    AndroidId,
    FireAdid,
    Oaid,
    WebUuid,
    WinAdid,
}

impl DeviceIdFamily {
    /// The name of the family's base placeholder.
    pub const fn base(self) -> &'static str {
        match self {
            DeviceIdFamily::Adid => "adid",
            DeviceIdFamily::Idfa => "idfa",
            DeviceIdFamily::Idfv => "idfv",
            DeviceIdFamily::GpsAdid => "gps_adid",
            DeviceIdFamily::AndroidId => "android_id",
            DeviceIdFamily::FireAdid => "fire_adid",
            DeviceIdFamily::Oaid => "oaid",
            DeviceIdFamily::WebUuid => "web_uuid",
            DeviceIdFamily::WinAdid => "win_adid",
        }
    }
}

/// One Adjust placeholder: `name` is both the query key Adjust sends (as `name={name}`) and the
/// ClickHouse column name. Besides its type and scope, every fact about it that something is
/// generated from: the lists of hot columns, identity fields, device identifiers, the minimal URL
/// field set and the skip indexes are read off [`CATALOG`], never written down a second time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placeholder {
    pub name: &'static str,
    pub ty: Ty,
    pub scope: Scope,
    /// Its storage tier (`.hot()`; [`Tier::Cold`] unless marked).
    pub tier: Tier,
    /// The device identifier family it belongs to (`.device(F)`), if it is a device identifier.
    pub device_id: Option<DeviceIdFamily>,
    /// Its position in the `callback_id` hash of an activity sent without `nonce`
    /// (`.identity(n)`; [`super::identity`]), if it identifies an activity. The positions are
    /// `0..n` and never change: a new order would change the id of every such activity, and
    /// copies stored before and after a release would no longer collapse.
    pub identity: Option<u8>,
    /// In the `minimal` field set of the callback URLs (`.minimal()`): the app and device
    /// identity, the dedup key's inputs, attribution (the tracker and its name, from which the
    /// network, campaign, adgroup and creative columns are cut), and revenue.
    pub minimal_url: bool,
    /// A bloom filter skip index on modern servers (`.index()`): an identifier analysts look up
    /// one at a time.
    pub modern_index: bool,
}

const fn p(name: &'static str, ty: Ty, scope: Scope) -> Placeholder {
    Placeholder {
        name,
        ty,
        scope,
        tier: Tier::Cold,
        device_id: None,
        identity: None,
        minimal_url: false,
        modern_index: false,
    }
}

impl Placeholder {
    const fn hot(self) -> Self {
        Placeholder {
            tier: Tier::Hot,
            ..self
        }
    }

    const fn device(self, family: DeviceIdFamily) -> Self {
        Placeholder {
            device_id: Some(family),
            ..self
        }
    }

    const fn identity(self, position: u8) -> Self {
        Placeholder {
            identity: Some(position),
            ..self
        }
    }

    const fn minimal(self) -> Self {
        Placeholder {
            minimal_url: true,
            ..self
        }
    }

    const fn index(self) -> Self {
        Placeholder {
            modern_index: true,
            ..self
        }
    }

    /// Whether it has a typed column of its own.
    pub fn is_hot(&self) -> bool {
        self.tier == Tier::Hot
    }

    /// Whether Adjust fills it for activities of these scopes: it is of [`Scope::All`], of one of
    /// `scopes`, or [`REQUIRED`].
    pub fn applies_to(&self, scopes: &[Scope]) -> bool {
        self.scope == Scope::All || scopes.contains(&self.scope) || REQUIRED.contains(&self.name)
    }
}

use DeviceIdFamily::*;
use Scope::*;
use Ty::*;

/// Every placeholder, in column order, one line each: `p(name, type, scope)`, then its facets:
/// `.hot()` ([`Tier::Hot`]), `.device(F)` (of device id family `F`), `.identity(n)` (position `n`
/// in the `callback_id` hash), `.minimal()` (in the minimal URL field set), `.index()` (a skip
/// index on modern servers).
#[rustfmt::skip]
pub const CATALOG: &[Placeholder] = &[
    p("activity_kind", LowCard, All).hot().minimal(),
    // 3.2 App & activity core
    p("app_id", LowCard, All).hot().identity(1).minimal(),
    p("app_name", LowCard, All).hot(),
    p("app_name_dashboard", LowCard, All),
    p("app_token", LowCard, All).hot().identity(0).minimal(),
    p("app_version", LowCard, All).hot(),
    p("app_version_raw", LowCard, All),
    p("app_version_short", LowCard, All),
    p("store", LowCard, All).hot(),
    p("environment", LowCard, All).hot().minimal(),
    p("sdk_version", LowCard, All),
    p("created_at", Time, All).hot().identity(11).minimal(),
    p("created_at_hour", Time, All),
    p("created_at_milli", TimeMs, All).identity(12),
    p("event", LowCard, Event).hot().identity(13).minimal(),
    p("event_name", LowCard, Event).hot(),
    p("nonce", Str, All).hot().minimal().index(),
    p("random", Int, All),
    p("random_user_id", Str, All),
    p("push_token", Str, All),
    // 3.3 Attribution / link structure
    p("tracker", Str, All).hot().minimal(),
    p("link_token", Str, All),
    p("tracker_name", Str, All).hot().minimal(),
    p("link_name", Str, All),
    p("network_name", LowCard, All).hot(),
    p("campaign_name", Str, All).hot(),
    p("adgroup_name", Str, All).hot(),
    p("creative_name", Str, All).hot(),
    p("first_tracker", Str, Attribution),
    p("first_tracker_name", Str, Attribution),
    p("last_tracker", Str, Attribution),
    p("last_tracker_name", Str, Attribution),
    p("outdated_tracker", Str, Attribution),
    p("outdated_link_token", Str, Attribution),
    p("outdated_tracker_name", Str, Attribution),
    p("attribution_updated_at", Time, Attribution),
    p("is_organic", Flag, All).hot().minimal(),
    p("is_reattributed", Flag, Attribution).hot(),
    p("impression_based", Flag, Engagement),
    p("is_s2s", Flag, Attribution),
    p("is_s2s_engagement_based", Flag, Attribution),
    p("is_untrusted", Flag, Attribution),
    p("is_redownload", Flag, Install),
    p("match_type", LowCard, Attribution).hot(),
    p("reftag", Str, Engagement).identity(16),
    p("click_time", Time, Engagement).hot(),
    p("click_time_hour", Time, Engagement),
    p("impression_time", Time, Engagement),
    p("impression_time_hour", Time, Engagement),
    p("engagement_time", Time, Engagement),
    p("engagement_time_hour", Time, Engagement),
    p("installed_at", Time, Install).hot().minimal(),
    p("installed_at_hour", Time, Install),
    p("conversion_duration", Int, Install),
    p("reattributed_at", Time, Attribution).hot().minimal(),
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
    p("adid", Str, All).hot().device(Adid).identity(2).minimal().index(),
    p("idfa", Str, All).hot().device(Idfa).identity(3).minimal().index(),
    p("idfa_upper", Str, All).device(Idfa),
    p("idfa_md5", Str, All).device(Idfa),
    p("idfa_md5_hex", Str, All).device(Idfa),
    p("idfv", Str, All).hot().device(Idfv).identity(4).minimal().index(),
    p("gps_adid", Str, All).hot().device(GpsAdid).identity(5).minimal().index(),
    p("gps_adid_md5", Str, All).device(GpsAdid),
    p("fire_adid", Str, All).hot().device(FireAdid).identity(7).minimal(),
    p("oaid", Str, All).hot().device(Oaid).identity(8).minimal(),
    p("oaid_md5", Str, All).device(Oaid),
    p("android_id", Str, All).hot().device(AndroidId).identity(6).minimal(),
    p("android_id_md5", Str, All).device(AndroidId),
    p("win_adid", Str, All).device(WinAdid).identity(10),
    p("win_udid", Str, All),
    p("win_hwid", Str, All),
    p("win_naid", Str, All),
    p("mac_md5", Str, All),
    p("mac_sha1", Str, All),
    p("web_uuid", Str, All).hot().device(WebUuid).identity(9).minimal(),
    // 3.6 Device, OS, network, geo
    p("os_name", LowCard, All).hot().minimal(),
    p("os_version", LowCard, All).hot(),
    p("api_level", Int, All),
    p("device_name", Str, All).hot(),
    p("device_model", Str, All),
    p("hardware_name", Str, All),
    p("cpu_type", LowCard, All),
    p("device_manufacturer", LowCard, All),
    p("device_type", LowCard, All).hot(),
    p("ip_address", Str, All).hot(),
    p("proxy_ip_address", Str, All),
    p("isp", LowCard, All),
    p("connection_type", LowCard, All),
    p("network_type", LowCard, All),
    p("mcc", LowCard, All),
    p("mnc", LowCard, All),
    p("country", LowCard, All).hot().minimal(),
    p("country_subdivision", LowCard, All),
    p("region", LowCard, All),
    p("city", Str, All).hot(),
    p("postal_code", Str, All),
    p("language", LowCard, All).hot(),
    p("timezone", LowCard, All),
    p("user_agent", Str, All),
    // 3.7 Privacy / consent
    p("att_status", Int, Privacy).hot(),
    p("tracking_enabled", Flag, Privacy),
    p("tracking_limited", Flag, Privacy).hot(),
    p("third_party_sharing_disabled", Flag, Privacy),
    // 3.8 Session / engagement
    p("session_count", Int, Session).hot(),
    p("lifetime_session_count", Int, Session),
    p("last_session_time", Time, Session),
    p("time_spent", Int, Session),
    p("last_time_spent", Int, Session),
    // 3.9 Events, revenue, currency
    p("revenue", Int, Event).hot().minimal(),
    p("revenue_float", Float, Event).hot().minimal(),
    p("currency", LowCard, Event).hot().minimal(),
    p("revenue_usd", Float, Event).hot().minimal(),
    p("revenue_usd_cents", Int, Event),
    p("revenue_cny_cents", Int, Event),
    p("reporting_revenue", Float, Event).hot(),
    p("reporting_currency", LowCard, Event).hot(),
    p("partner_parameters", Params, Event).hot(),
    p("publisher_parameters", Params, Event).hot(),
    p("callback_params", Params, Event).hot(),
    // 3.10 Ad revenue
    p("ad_impressions_count", Int, AdRevenue),
    p("ad_mediation_platform", LowCard, AdRevenue).hot().minimal(),
    p("ad_revenue_network", LowCard, AdRevenue),
    p("ad_revenue_unit", LowCard, AdRevenue),
    p("ad_revenue_placement", LowCard, AdRevenue),
    p("ad_revenue_payload", Json, AdRevenue),
    // 3.11 Ad spend / cost
    p("cost_type", LowCard, Cost),
    p("cost_amount", Float, Cost).hot().minimal(),
    p("cost_currency", LowCard, Cost).minimal(),
    p("reporting_cost", Float, Cost),
    p("cost_id_md5", Str, Cost),
    p("event_cost_id", Str, Cost),
    // 3.12 Subscriptions
    p("subscription_event_type", LowCard, Subscription),
    p("subscription_event_subtype", LowCard, Subscription),
    p("subscription_product_id", LowCard, Subscription),
    p("subscription_sales_region", LowCard, Subscription),
    p("subscription_transaction_id", Str, Subscription).identity(15).minimal(),
    p("subscription_original_transaction_id", Str, Subscription),
    p("subscription_expired_transaction_id", Str, Subscription),
    p("subscription_store", LowCard, Subscription),
    p("subscription_purchased_at", Time, Subscription),
    p("subscription_expiration_time", Time, Subscription),
    p("subscription_cancelled_at", Time, Subscription),
    p("subscription_environment", LowCard, Subscription),
    // 3.13 Uninstall / reinstall
    p("uninstalled_at", Time, Uninstall).hot(),
    p("reinstalled_at", Time, Uninstall),
    p("time_to_uninstall", Int, Uninstall),
    p("time_to_reinstall", Int, Uninstall),
    // 3.14 Fraud
    p("rejection_reason", LowCard, Fraud).hot().minimal(),
    // 3.15 SKAdNetwork
    p("sk_ts", Time, Skan),
    p("sk_payload", Json, Skan).hot().minimal(),
    p("sk_version", LowCard, Skan),
    p("sk_network_id", LowCard, Skan),
    p("sk_campaign_id", Int, Skan).hot(),
    p("sk_transaction_id", Str, Skan).hot().identity(14).minimal().index(),
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
    p("sk_conversion_value", Int, Skan).hot(),
    // SKAdNetwork 4 (filled from Apple's postback in `sk_payload` when not sent as keys)
    p("sk_source_identifier", LowCard, Skan).hot(),
    p("sk_source_domain", Str, Skan),
    p("sk_source_app_id", Str, Skan),
    p("sk_coarse_conversion_value", LowCard, Skan).hot(),
    p("sk_postback_sequence_index", Int, Skan).hot(),
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

/// The placeholders every callback URL carries: `callback_id` is the hash of `nonce`, or of the
/// activity's identity (kind, `created_at`, …) when there is none.
pub const REQUIRED: [&str; 3] = ["activity_kind", "created_at", "nonce"];

/// The placeholders Adjust fills for activities of these scopes ([`Placeholder::applies_to`]), in
/// catalog order; every placeholder of the catalog with `all`. What a callback URL asks for and a
/// per-activity view shows.
pub fn placeholders(scopes: &[Scope], all: bool) -> Vec<&'static Placeholder> {
    CATALOG
        .iter()
        .filter(|p| all || p.applies_to(scopes))
        .collect()
}

/// The catalog entry of a placeholder name.
pub fn find(name: &str) -> Option<&'static Placeholder> {
    CATALOG.iter().find(|p| p.name == name)
}

static HOT_FLAGS: [bool; CATALOG.len()] = {
    let mut flags = [false; CATALOG.len()];
    let mut i = 0;
    while i < CATALOG.len() {
        flags[i] = matches!(CATALOG[i].tier, Tier::Hot);
        i += 1;
    }
    flags
};

/// Whether catalog entry `idx` has a typed column of its own (the hot tier).
pub fn is_hot(idx: usize) -> bool {
    HOT_FLAGS[idx]
}

/// [`is_hot`] for every catalog entry, for loops that ask for many.
pub fn hot_flags() -> &'static [bool; CATALOG.len()] {
    &HOT_FLAGS
}

/// The catalog indexes of the placeholders that identify an activity (`.identity(n)` in
/// [`CATALOG`]), in hash order.
pub fn identity_indexes() -> &'static [usize] {
    static IDENTITY: LazyLock<Vec<usize>> = LazyLock::new(|| {
        let mut idx: Vec<usize> = (0..CATALOG.len())
            .filter(|&i| CATALOG[i].identity.is_some())
            .collect();
        idx.sort_by_key(|&i| CATALOG[i].identity);
        idx
    });
    &IDENTITY
}

/// Each device identifier family with its members, base first then in catalog order; families in
/// the order of [`DeviceIdFamily`].
static FAMILIES: LazyLock<Vec<(DeviceIdFamily, Vec<&'static str>)>> = LazyLock::new(|| {
    let mut out: Vec<(DeviceIdFamily, Vec<&'static str>)> = Vec::new();
    for p in CATALOG {
        let Some(f) = p.device_id else { continue };
        match out.iter_mut().find(|(g, _)| *g == f) {
            Some((_, members)) => members.push(p.name),
            None => out.push((f, vec![p.name])),
        }
    }
    for (f, members) in &mut out {
        members.sort_by_key(|n| *n != f.base());
    }
    out.sort_by_key(|(f, _)| *f);
    out
});

/// The base device identifiers, in the order of [`DeviceIdFamily`]: what a `gdpr_forget_device`
/// callback's erasure request is recorded for and erased by.
pub fn device_ids() -> &'static [&'static str] {
    static BASES: LazyLock<Vec<&'static str>> =
        LazyLock::new(|| FAMILIES.iter().map(|(f, _)| f.base()).collect());
    &BASES
}

/// Every spelling and hash of the device identifier `name` (any member of its family), base
/// first: `idfa` and `idfa_md5` both give `idfa`, `idfa_upper`, `idfa_md5`, `idfa_md5_hex`.
/// `None` when `name` is not a device identifier.
pub fn family_members(name: &str) -> Option<&'static [&'static str]> {
    let family = find(name)?.device_id?;
    FAMILIES
        .iter()
        .find(|(f, _)| *f == family)
        .map(|(_, members)| members.as_slice())
}

/// The placeholders with a bloom filter skip index on modern servers, in catalog order.
pub fn modern_indexes() -> impl Iterator<Item = &'static str> {
    CATALOG.iter().filter(|p| p.modern_index).map(|p| p.name)
}

#[cfg(test)]
mod facet_tests {
    use super::*;
    use crate::adjust::identity::NONCE_KEY;

    /// What a device identifier's other spellings and hashes append to its name.
    const VARIANT_SUFFIXES: &[&str] = &["upper", "lower", "md5", "sha1", "sha256", "hex"];

    /// `name` without its trailing [`VARIANT_SUFFIXES`] (`idfa_md5_hex` → `idfa`).
    fn stem(name: &str) -> &str {
        let mut stem = name;
        while let Some((head, last)) = stem.rsplit_once('_') {
            if !VARIANT_SUFFIXES.contains(&last) {
                break;
            }
            stem = head;
        }
        stem
    }

    fn named(pred: impl Fn(&Placeholder) -> bool) -> Vec<&'static str> {
        CATALOG.iter().filter(|p| pred(p)).map(|p| p.name).collect()
    }

    #[test]
    fn every_name_is_a_placeholder_once() {
        for (i, p) in CATALOG.iter().enumerate() {
            assert!(
                CATALOG[..i].iter().all(|q| q.name != p.name),
                "{} twice",
                p.name
            );
            assert_eq!(find(p.name), Some(p));
        }
        assert_eq!(CATALOG[0].name, "activity_kind");
    }

    /// A parameters placeholder's pairs have columns of their own, beside its own column.
    #[test]
    fn every_parameters_placeholder_is_hot() {
        for p in CATALOG.iter().filter(|p| p.ty == Ty::Params) {
            assert!(p.is_hot(), "{} is cold", p.name);
        }
        let hot = named(Placeholder::is_hot);
        assert!((50..100).contains(&hot.len()), "{} hot", hot.len());
        for (i, p) in CATALOG.iter().enumerate() {
            assert_eq!(is_hot(i), p.tier == Tier::Hot);
            assert_eq!(hot_flags()[i], is_hot(i));
        }
    }

    /// The hash positions are `0..n`, each once; every base device identifier takes part (two
    /// devices' activities must not collapse), and the keys of the `nonce` hash are placeholders.
    #[test]
    fn identity_positions_are_a_sequence_of_the_base_device_ids_and_more() {
        let positions: Vec<u8> = identity_indexes()
            .iter()
            .map(|&i| CATALOG[i].identity.unwrap())
            .collect();
        let n = u8::try_from(positions.len()).unwrap();
        assert_eq!(positions, (0..n).collect::<Vec<_>>());
        for base in device_ids() {
            assert!(find(base).unwrap().identity.is_some(), "{base}");
        }
        for name in NONCE_KEY.iter().chain(&REQUIRED) {
            assert!(find(name).is_some(), "{name}");
        }
        let identity: Vec<&str> = identity_indexes()
            .iter()
            .map(|&i| CATALOG[i].name)
            .collect();
        assert_eq!(identity[..3], ["app_token", "app_id", "adid"]);
    }

    /// Each family has its base identifier, first among its members; every member is text,
    /// spelled as its base plus [`VARIANT_SUFFIXES`]; and a placeholder so spelled after a family's
    /// (or any other placeholder's) name is in that family: a new `gps_adid_sha1` without
    /// `.device(GpsAdid)` fails here.
    #[test]
    fn device_id_families_are_complete() {
        assert!(!FAMILIES.is_empty());
        for (family, members) in FAMILIES.iter() {
            let base = family.base();
            assert_eq!(members[0], base, "{family:?}: base first");
            assert_eq!(
                find(base).and_then(|p| p.device_id),
                Some(*family),
                "{base}"
            );
            for m in members {
                let p = find(m).unwrap();
                assert_eq!(p.ty, Ty::Str, "{m} is a device id, so text");
                assert_eq!(stem(m), base, "{m} is not spelled after {base}");
                assert_eq!(family_members(m), Some(members.as_slice()));
            }
        }
        for p in CATALOG {
            let stem = stem(p.name);
            if let Some(base) = find(stem).filter(|_| stem != p.name) {
                assert!(
                    base.device_id.is_some() && p.device_id == base.device_id,
                    "{} is a spelling of {stem}: give both the same device id family",
                    p.name
                );
            }
        }
        assert_eq!(
            family_members("idfa_md5").unwrap(),
            ["idfa", "idfa_upper", "idfa_md5", "idfa_md5_hex"]
        );
        assert_eq!(family_members("adid").unwrap(), ["adid"]);
        assert_eq!(family_members("country"), None);
        assert_eq!(family_members("no_such_placeholder"), None);
        assert_eq!(stem("gps_adid_md5"), "gps_adid");
        assert_eq!(stem("cost_id_md5"), "cost_id");
    }

    /// The erasure list: the base identifiers in the order of [`DeviceIdFamily`], each once.
    #[test]
    fn device_ids_are_the_family_bases_in_enum_order() {
        let ids = device_ids();
        assert_eq!(ids.len(), FAMILIES.len());
        let families: Vec<DeviceIdFamily> = ids
            .iter()
            .map(|id| find(id).unwrap().device_id.unwrap())
            .collect();
        assert!(families.windows(2).all(|w| w[0] < w[1]), "{families:?}");
        assert_eq!(ids[0], "adid");
    }

    /// The minimal set keeps what makes the id of an activity (with or without `nonce`) and
    /// every device identifier with a column of its own.
    #[test]
    fn minimal_url_holds_the_dedup_key_and_the_hot_device_ids() {
        let minimal = named(|p| p.minimal_url);
        for name in REQUIRED.iter().chain(&NONCE_KEY) {
            assert!(minimal.contains(name), "{name} not minimal");
        }
        for base in device_ids() {
            let p = find(base).unwrap();
            assert_eq!(p.minimal_url, p.is_hot(), "{base}");
        }
        for name in [
            "tracker",
            "tracker_name",
            "revenue_float",
            "currency",
            "event",
        ] {
            assert!(minimal.contains(&name), "{name} not minimal");
        }
        assert!(minimal.len() < CATALOG.len() / 4);
    }

    /// A bloom filter skip index is on a text column of the table.
    #[test]
    fn every_modern_index_is_a_hot_text_column() {
        let indexes: Vec<&str> = modern_indexes().collect();
        assert!(indexes.contains(&"adid") && indexes.contains(&"nonce"));
        for name in indexes {
            let p = find(name).unwrap();
            assert!(p.is_hot(), "{name} is cold: no column to index");
            assert_eq!(p.ty, Ty::Str, "{name}");
        }
    }

    /// The placeholders of a set of scopes: [`Scope::All`], those scopes and [`REQUIRED`], in
    /// catalog order.
    #[test]
    fn placeholders_of_scopes() {
        let skan = placeholders(&[Scope::Skan], false);
        assert!(
            skan.iter()
                .all(|p| p.scope == Scope::All || p.scope == Scope::Skan)
        );
        assert!(skan.iter().any(|p| p.name == "sk_payload"));
        assert!(REQUIRED.iter().all(|r| skan.iter().any(|p| p.name == *r)));
        assert_eq!(placeholders(&[], true).len(), CATALOG.len());
        let idx: Vec<usize> = skan
            .iter()
            .map(|p| CATALOG.iter().position(|q| q == *p).unwrap())
            .collect();
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
    }
}
