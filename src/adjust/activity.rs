//! Activity kinds (`{activity_kind}`) Adjust sends, by wire string. The column stays a free
//! `LowCardinality(String)` because Adjust keeps adding kinds; this list only bounds metric labels.

/// Every activity kind documented or observed (ADJUST.md §2), by wire string.
pub const KNOWN: &[&str] = &[
    "click",
    "impression",
    "install",
    "session",
    "event",
    "reattribution",
    "reattribution_reinstall",
    "reinstall",
    "uninstall",
    "rejected_install",
    "rejected_reattribution",
    "install_update",
    "reattribution_update",
    "cost_updated",
    "ad_revenue",
    "att_update",
    "sk_install",
    "sk_event",
    "sk_qualifier",
    "sk_cv_update",
    "sk_install_direct",
    "gdpr_forget_device",
    "subscription",
    "san_click",
    "san_impression",
];

/// The metric label for an activity kind: the kind itself when known, `unknown` for anything
/// else (a new kind, a typo, an unreplaced placeholder), `none` when it was not sent at all.
pub fn label(kind: &str) -> &'static str {
    if kind.is_empty() {
        return "none";
    }
    KNOWN
        .iter()
        .find(|k| **k == kind)
        .copied()
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_are_bounded() {
        assert_eq!(super::label("install"), "install");
        assert_eq!(super::label("sk_cv_update"), "sk_cv_update");
        assert_eq!(super::label("brand_new_kind"), "unknown");
        assert_eq!(super::label(""), "none");
    }
}
