//! Activity kinds (`{activity_kind}`) Adjust sends: the one table of what is known about each.
//!
//! Per kind ([`ACTIVITIES`]): its wire string, the single-activity trigger that sends it (and
//! through it whether a partner's tracker URL can carry its callback, and with which parameter),
//! the placeholder [`Scope`]s that apply to it, whether Adjust's global callback carries it, which
//! per-activity view shows it ([`None`]: only the table), and whether it reports revenue. Triggers
//! ([`TRIGGERS`]: name, title, tracker URL parameter) and views ([`VIEWS`]: name, extra
//! placeholders) are small tables the activities refer to, so each fact is written once. Everything else derives from here: metric labels ([`label`]), the
//! callback URLs (`callback_url`), and the per-activity views and daily rollups (`schema::views`).
//!
//! The `activity_kind` column stays a free `LowCardinality(String)` because Adjust keeps adding
//! kinds; this table only bounds metric labels and shapes what is generated.

use super::catalog::{CATALOG, Placeholder, Scope};

/// A single-activity callback trigger, as Adjust's dashboard lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trigger {
    /// The path segment (`/adjust/<name>`), stored as `callback_trigger` (and the activity kind
    /// when a callback lacks one). Equal to the activity kind when the trigger sends one kind.
    pub name: &'static str,
    /// What Adjust calls the trigger.
    pub title: &'static str,
    /// The tracker URL parameter a partner sets it with; `None` when only the dashboard can.
    /// For events it is the prefix of `event_callback_<tokens>`.
    pub partner_param: Option<&'static str>,
}

/// A per-activity view (`<db>.<name>`) of the callbacks table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub name: &'static str,
    /// Placeholders it shows besides those of its activities' scopes.
    pub also: &'static [&'static str],
}

/// One activity kind and what it implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// The `{activity_kind}` wire string.
    pub kind: &'static str,
    /// The single-activity trigger that sends it.
    pub trigger: &'static Trigger,
    /// The placeholder scopes that apply to it, besides [`Scope::All`]: its callback URL asks for
    /// them and its view shows them.
    pub scopes: &'static [Scope],
    /// Whether Adjust's global callback carries it too (Adjust sends it every activity except ad revenue,
    /// SKAdNetwork, SAN clicks and impressions).
    pub in_global: bool,
    /// The per-activity view that shows it; `None`: only in the table.
    pub view: Option<&'static View>,
    /// Whether it reports revenue (`revenue_float`, `reporting_revenue`): the revenue rollup
    /// counts it.
    pub revenue: bool,
}

impl Activity {
    /// The tracker URL parameter that attaches its callback to a partner's tracker URL.
    pub fn partner_param(&self) -> Option<&'static str> {
        self.trigger.partner_param
    }
}

/// The triggers, by the name of what they send.
pub mod triggers {
    use super::Trigger;

    const fn t(name: &'static str, title: &'static str, partner: Option<&'static str>) -> Trigger {
        Trigger {
            name,
            title,
            partner_param: partner,
        }
    }

    pub const CLICK: Trigger = t("click", "Click", Some("click_callback"));
    pub const IMPRESSION: Trigger = t("impression", "Impression", Some("impression_callback"));
    pub const INSTALL: Trigger = t("install", "Install", Some("install_callback"));
    pub const REATTRIBUTION: Trigger = t(
        "reattribution",
        "Reattribution",
        Some("reattribution_callback"),
    );
    pub const SESSION: Trigger = t("session", "Session", Some("session_callback"));
    pub const EVENT: Trigger = t("event", "Event", Some("event_callback"));
    pub const REJECTED_INSTALL: Trigger = t(
        "rejected_install",
        "Rejected install",
        Some("rejected_install_callback"),
    );
    pub const REJECTED_REATTRIBUTION: Trigger = t(
        "rejected_reattribution",
        "Rejected reattribution",
        Some("rejected_reattribution_callback"),
    );
    pub const ATTRIBUTION_UPDATE: Trigger = t("attribution_update", "Updated attribution", None);
    pub const REINSTALL: Trigger = t("reinstall", "Reinstall", None);
    pub const REATTRIBUTION_REINSTALL: Trigger =
        t("reattribution_reinstall", "Reattribution reinstall", None);
    pub const UNINSTALL: Trigger = t("uninstall", "Uninstall", None);
    pub const AD_REVENUE: Trigger = t("ad_revenue", "Ad revenue", None);
    pub const COST_UPDATED: Trigger = t("cost_updated", "Ad spend", None);
    pub const SUBSCRIPTION: Trigger = t("subscription", "Subscription", None);
    pub const ATT_UPDATE: Trigger = t("att_update", "ATT update (iOS)", None);
    pub const GDPR_FORGET_DEVICE: Trigger = t("gdpr_forget_device", "Erased user (GDPR)", None);
    pub const SK_INSTALL: Trigger = t("sk_install", "SKAdNetwork install", None);
    pub const SK_EVENT: Trigger = t("sk_event", "SKAdNetwork event", None);
    pub const SK_QUALIFIER: Trigger = t("sk_qualifier", "SKAdNetwork qualifier", None);
    pub const SK_CV_UPDATE: Trigger = t("sk_cv_update", "SKAdNetwork CV update", None);
    pub const SK_INSTALL_DIRECT: Trigger =
        t("sk_install_direct", "SKAdNetwork direct install", None);
    pub const SAN_CLICK: Trigger = t("san_click", "SAN click", None);
    pub const SAN_IMPRESSION: Trigger = t("san_impression", "SAN impression", None);
}

/// The per-activity views, by name.
pub mod views {
    use super::View;

    const fn v(name: &'static str) -> View {
        View { name, also: &[] }
    }

    pub const INSTALLS: View = v("installs");
    pub const EVENTS: View = v("events");
    pub const SESSIONS: View = v("sessions");
    pub const CLICKS: View = v("clicks");
    pub const IMPRESSIONS: View = v("impressions");
    pub const REATTRIBUTIONS: View = v("reattributions");
    pub const AD_REVENUE: View = v("ad_revenue");
    pub const REJECTED: View = v("rejected");
    /// The install time, which the device-side postbacks (`sk_cv_update`) carry although no
    /// SKAdNetwork callback URL asks for it.
    pub const SKAN: View = View {
        name: "skan",
        also: &["installed_at"],
    };
    pub const UNINSTALLS: View = v("uninstalls");
}

/// Every single-activity trigger, in the order `callback-url` prints them.
pub const TRIGGERS: &[Trigger] = {
    use triggers::*;
    &[
        CLICK,
        IMPRESSION,
        INSTALL,
        REATTRIBUTION,
        SESSION,
        EVENT,
        REJECTED_INSTALL,
        REJECTED_REATTRIBUTION,
        ATTRIBUTION_UPDATE,
        REINSTALL,
        REATTRIBUTION_REINSTALL,
        UNINSTALL,
        AD_REVENUE,
        COST_UPDATED,
        SUBSCRIPTION,
        ATT_UPDATE,
        GDPR_FORGET_DEVICE,
        SK_INSTALL,
        SK_EVENT,
        SK_QUALIFIER,
        SK_CV_UPDATE,
        SK_INSTALL_DIRECT,
        SAN_CLICK,
        SAN_IMPRESSION,
    ]
};

/// Every per-activity view, in creation order.
pub const VIEWS: &[View] = {
    use views::*;
    &[
        INSTALLS,
        EVENTS,
        SESSIONS,
        CLICKS,
        IMPRESSIONS,
        REATTRIBUTIONS,
        AD_REVENUE,
        REJECTED,
        SKAN,
        UNINSTALLS,
    ]
};

/// Sent by the global callback as well as by its trigger.
const GLOBAL: bool = true;
/// Sent by its single-activity trigger only.
const SINGLE: bool = false;

const fn a(
    kind: &'static str,
    trigger: &'static Trigger,
    scopes: &'static [Scope],
    in_global: bool,
    view: Option<&'static View>,
) -> Activity {
    Activity {
        kind,
        trigger,
        scopes,
        in_global,
        view,
        revenue: false,
    }
}

impl Activity {
    /// The same activity, reporting revenue.
    const fn with_revenue(self) -> Activity {
        Activity {
            revenue: true,
            ..self
        }
    }
}

/// Every activity kind Adjust documents or was observed sending. The order is that of the kinds in
/// a view's `WHERE activity_kind IN (…)` and a rollup's.
#[rustfmt::skip]
pub static ACTIVITIES: &[Activity] = {
    use Scope::*;
    use triggers as t;
    use views as v;
    &[
        // kind                      trigger                      scopes (besides All)                                                       global  view
        a("click",                   &t::CLICK,                   &[Attribution, Engagement, Cost, Partner],                                 GLOBAL, Some(&v::CLICKS)),
        a("impression",              &t::IMPRESSION,              &[Attribution, Engagement, Cost, Partner],                                 GLOBAL, Some(&v::IMPRESSIONS)),
        a("install",                 &t::INSTALL,                 &[Attribution, Engagement, Install, Cost, Partner, Privacy],               GLOBAL, Some(&v::INSTALLS)),
        a("session",                 &t::SESSION,                 &[Install, Session, Privacy],                                              GLOBAL, Some(&v::SESSIONS)),
        a("event",                   &t::EVENT,                   &[Install, Session, Event, Privacy],                                       GLOBAL, Some(&v::EVENTS)).with_revenue(),
        a("reattribution",           &t::REATTRIBUTION,           &[Attribution, Engagement, Install, Cost, Partner, Privacy],               GLOBAL, Some(&v::REATTRIBUTIONS)),
        a("reattribution_reinstall", &t::REATTRIBUTION_REINSTALL, &[Attribution, Engagement, Install, Session, Uninstall, Partner, Privacy], GLOBAL, Some(&v::REATTRIBUTIONS)),
        a("uninstall",               &t::UNINSTALL,               &[Install, Session, Uninstall],                                            GLOBAL, Some(&v::UNINSTALLS)),
        a("reinstall",               &t::REINSTALL,               &[Attribution, Install, Session, Uninstall, Privacy],                      GLOBAL, Some(&v::UNINSTALLS)),
        a("rejected_install",        &t::REJECTED_INSTALL,        &[Attribution, Engagement, Install, Fraud, Partner],                       GLOBAL, Some(&v::REJECTED)),
        a("rejected_reattribution",  &t::REJECTED_REATTRIBUTION,  &[Attribution, Engagement, Fraud, Partner],                                GLOBAL, Some(&v::REJECTED)),
        a("install_update",          &t::ATTRIBUTION_UPDATE,      &[Attribution, Engagement, Install, Partner, Privacy],                     GLOBAL, None),
        a("reattribution_update",    &t::ATTRIBUTION_UPDATE,      &[Attribution, Engagement, Install, Partner, Privacy],                     GLOBAL, None),
        a("cost_updated",            &t::COST_UPDATED,            &[Cost, Partner],                                                          GLOBAL, None),
        a("ad_revenue",              &t::AD_REVENUE,              &[Install, Event, AdRevenue, Privacy],                                     SINGLE, Some(&v::AD_REVENUE)).with_revenue(),
        a("att_update",              &t::ATT_UPDATE,              &[Install, Privacy],                                                       GLOBAL, None),
        a("sk_install",              &t::SK_INSTALL,              &[Skan],                                                                   SINGLE, Some(&v::SKAN)),
        a("sk_event",                &t::SK_EVENT,                &[Event, Skan],                                                            SINGLE, Some(&v::SKAN)),
        a("sk_qualifier",            &t::SK_QUALIFIER,            &[Skan],                                                                   SINGLE, Some(&v::SKAN)),
        a("sk_cv_update",            &t::SK_CV_UPDATE,            &[Skan],                                                                   SINGLE, Some(&v::SKAN)),
        a("sk_install_direct",       &t::SK_INSTALL_DIRECT,       &[Skan],                                                                   SINGLE, Some(&v::SKAN)),
        a("gdpr_forget_device",      &t::GDPR_FORGET_DEVICE,      &[Privacy],                                                                GLOBAL, None),
        a("subscription",            &t::SUBSCRIPTION,            &[Install, Event, Subscription, Privacy],                                  GLOBAL, None).with_revenue(),
        a("san_click",               &t::SAN_CLICK,               &[Attribution, Engagement, Partner],                                       SINGLE, None),
        a("san_impression",          &t::SAN_IMPRESSION,          &[Attribution, Engagement, Partner],                                       SINGLE, None),
    ]
};

/// The activity of a wire string.
pub fn find(kind: &str) -> Option<&'static Activity> {
    ACTIVITIES.iter().find(|a| a.kind == kind)
}

/// Every known wire string, in table order.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    ACTIVITIES.iter().map(|a| a.kind)
}

/// The trigger of a name.
pub fn trigger(name: &str) -> Option<&'static Trigger> {
    TRIGGERS.iter().find(|t| t.name == name)
}

/// `scopes` with [`Scope::All`] first and each scope once, in order of appearance.
fn union<'a>(scopes: impl IntoIterator<Item = &'a Scope>) -> Vec<Scope> {
    let mut out = vec![Scope::All];
    for s in scopes {
        if !out.contains(s) {
            out.push(*s);
        }
    }
    out
}

impl Trigger {
    /// The activities it sends, in table order.
    pub fn activities(&self) -> impl Iterator<Item = &'static Activity> {
        ACTIVITIES
            .iter()
            .filter(move |a| a.trigger.name == self.name)
    }

    /// The `{activity_kind}` values it sends.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.activities().map(|a| a.kind).collect()
    }

    /// The placeholder scopes of its callback URL: [`Scope::All`] and those of its activities.
    pub fn scopes(&self) -> Vec<Scope> {
        union(self.activities().flat_map(|a| a.scopes))
    }
}

impl View {
    /// The activities it shows, in table order.
    pub fn activities(&self) -> impl Iterator<Item = &'static Activity> {
        ACTIVITIES
            .iter()
            .filter(move |a| a.view.is_some_and(|v| v.name == self.name))
    }

    /// The `activity_kind` values it shows.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.activities().map(|a| a.kind).collect()
    }

    /// The placeholder scopes whose placeholders are its columns: [`Scope::All`] and those of its
    /// activities.
    pub fn scopes(&self) -> Vec<Scope> {
        union(self.activities().flat_map(|a| a.scopes))
    }

    /// The placeholders it shows, in catalog order: those its activities' callback URLs ask for
    /// (the [`placeholders`](super::catalog::placeholders) of its [`scopes`](Self::scopes)) and
    /// those it names itself.
    pub fn placeholders(&self) -> Vec<&'static Placeholder> {
        let scopes = self.scopes();
        CATALOG
            .iter()
            .filter(|p| p.applies_to(&scopes) || self.also.contains(&p.name))
            .collect()
    }
}

/// The scopes of the global callback: [`Scope::All`] and those of every activity it carries.
pub fn global_scopes() -> Vec<Scope> {
    union(
        ACTIVITIES
            .iter()
            .filter(|a| a.in_global)
            .flat_map(|a| a.scopes),
    )
}

/// The metric label for an activity kind: the kind itself when known, `unknown` for anything
/// else (a new kind, a typo, an unreplaced placeholder), `none` when it was not sent at all.
pub fn label(kind: &str) -> &'static str {
    if kind.is_empty() {
        return "none";
    }
    find(kind).map_or("unknown", |a| a.kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adjust::catalog::CATALOG;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(label("install"), "install");
        assert_eq!(label("sk_cv_update"), "sk_cv_update");
        assert_eq!(label("san_impression"), "san_impression");
        assert_eq!(label("brand_new_kind"), "unknown");
        assert_eq!(label(""), "none");
        assert_eq!(label("Install"), "unknown");
    }

    #[test]
    fn no_kind_appears_twice_and_kinds_are_wire_strings() {
        for (i, a) in ACTIVITIES.iter().enumerate() {
            assert!(
                ACTIVITIES[i + 1..].iter().all(|b| b.kind != a.kind),
                "{} twice in the activity table",
                a.kind
            );
            assert!(
                !a.kind.is_empty()
                    && a.kind
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "`{}` is not a wire string",
                a.kind
            );
            assert!(
                !a.scopes.contains(&Scope::All),
                "{}: All applies anyway",
                a.kind
            );
            assert_eq!(
                union(a.scopes).len(),
                a.scopes.len() + 1,
                "{}: a scope listed twice",
                a.kind
            );
        }
    }

    /// Both directions: every activity's trigger is one of [`TRIGGERS`], and every trigger sends
    /// a known kind; a trigger sending one kind is named after it.
    #[test]
    fn triggers_and_activities_name_each_other() {
        for a in ACTIVITIES {
            assert!(
                TRIGGERS.contains(a.trigger),
                "{}: trigger {} is not in TRIGGERS",
                a.kind,
                a.trigger.name
            );
            assert_eq!(trigger(a.trigger.name), Some(a.trigger), "{}", a.kind);
        }
        for (i, t) in TRIGGERS.iter().enumerate() {
            assert!(
                TRIGGERS[i + 1..].iter().all(|u| u.name != t.name),
                "trigger {} twice",
                t.name
            );
            assert!(
                t.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{} does not match the /adjust/{{trigger}} route",
                t.name
            );
            let kinds = t.kinds();
            assert!(!kinds.is_empty(), "trigger {} sends no known kind", t.name);
            if kinds.len() == 1 {
                assert_eq!(kinds[0], t.name);
            } else {
                assert!(find(t.name).is_none(), "{} is a kind of its own", t.name);
            }
        }
        assert_eq!(
            triggers::ATTRIBUTION_UPDATE.kinds(),
            ["install_update", "reattribution_update"]
        );
    }

    /// Both directions: every activity's view is one of [`VIEWS`], and every view shows a known
    /// kind; its extra placeholders are placeholders its activities' scopes do not cover.
    #[test]
    fn views_and_activities_name_each_other() {
        for a in ACTIVITIES {
            if let Some(v) = a.view {
                assert!(
                    VIEWS.contains(v),
                    "{}: view {} is not in VIEWS",
                    a.kind,
                    v.name
                );
            }
        }
        for (i, v) in VIEWS.iter().enumerate() {
            assert!(
                VIEWS[i + 1..].iter().all(|w| w.name != v.name),
                "view {} twice",
                v.name
            );
            assert!(!v.kinds().is_empty(), "view {} shows no known kind", v.name);
            let scopes = v.scopes();
            for name in v.also {
                let p = CATALOG
                    .iter()
                    .find(|p| p.name == *name)
                    .unwrap_or_else(|| panic!("view {}: {name} is no placeholder", v.name));
                assert!(
                    !scopes.contains(&p.scope),
                    "view {}: {name} is in its scopes already",
                    v.name
                );
            }
        }
        assert_eq!(
            views::REATTRIBUTIONS.kinds(),
            ["reattribution", "reattribution_reinstall"]
        );
        assert_eq!(views::UNINSTALLS.kinds(), ["uninstall", "reinstall"]);
    }

    #[test]
    fn scopes_are_the_union_of_the_activities() {
        assert_eq!(
            views::UNINSTALLS.scopes(),
            [
                Scope::All,
                Scope::Install,
                Scope::Session,
                Scope::Uninstall,
                Scope::Attribution,
                Scope::Privacy
            ]
        );
        assert_eq!(triggers::SK_INSTALL.scopes(), [Scope::All, Scope::Skan]);
        let global = global_scopes();
        assert!(global.contains(&Scope::Fraud) && global.contains(&Scope::Subscription));
        assert!(!global.contains(&Scope::Skan) && !global.contains(&Scope::AdRevenue));
        for a in ACTIVITIES {
            let own = a.trigger.scopes();
            assert!(a.scopes.iter().all(|s| own.contains(s)), "{}", a.kind);
            if let Some(v) = a.view {
                let shown = v.scopes();
                assert!(a.scopes.iter().all(|s| shown.contains(s)), "{}", a.kind);
            }
            if a.in_global {
                assert!(a.scopes.iter().all(|s| global.contains(s)), "{}", a.kind);
            }
        }
    }

    #[test]
    fn partner_params_follow_adjusts_partner_guide() {
        for a in ACTIVITIES {
            if let Some(param) = a.partner_param() {
                assert!(param.ends_with("_callback"), "{param}");
            }
        }
        let kinds: Vec<&str> = ACTIVITIES
            .iter()
            .filter(|a| a.partner_param().is_some())
            .map(|a| a.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "click",
                "impression",
                "install",
                "session",
                "event",
                "reattribution",
                "rejected_install",
                "rejected_reattribution"
            ]
        );
    }
}
