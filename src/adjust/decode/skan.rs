//! SKAdNetwork 4: the `sk_*` placeholders a callback did not send, filled from Apple's postback
//! JSON in `sk_payload`.

use std::sync::LazyLock;

use super::*;

/// SKAdNetwork postback fields (Apple's JSON, kept whole in `sk_payload`) and the placeholder
/// each fills when the callback did not send that placeholder itself.
const SKAN_FIELDS: &[(&str, &str)] = &[
    ("version", "sk_version"),
    ("ad-network-id", "sk_network_id"),
    ("campaign-id", "sk_campaign_id"),
    ("source-identifier", "sk_source_identifier"),
    ("app-id", "sk_app_id"),
    ("source-app-id", "sk_source_app_id"),
    ("source-domain", "sk_source_domain"),
    ("transaction-id", "sk_transaction_id"),
    ("redownload", "sk_redownload"),
    ("fidelity-type", "sk_fidelity_type"),
    ("conversion-value", "sk_conversion_value"),
    ("coarse-conversion-value", "sk_coarse_conversion_value"),
    ("postback-sequence-index", "sk_postback_sequence_index"),
    ("did-win", "sk_did_win"),
];

static SKAN: LazyLock<(usize, Vec<(&'static str, usize)>)> = LazyLock::new(|| {
    let fields = SKAN_FIELDS
        .iter()
        .map(|(k, p)| (*k, index_of(p).expect("in catalog")))
        .collect();
    (index_of("sk_payload").expect("in catalog"), fields)
});

impl Callback<'_> {
    /// Fills the `sk_*` placeholders the callback did not send from Apple's postback in
    /// `sk_payload` (SKAN 4 adds `source-identifier`, `coarse-conversion-value`,
    /// `postback-sequence-index`, …). A key sent by Adjust wins over the payload; a payload field
    /// that does not type is left out (the payload itself is kept whole).
    pub(super) fn derive_skan(&mut self) {
        let (payload, fields) = &*SKAN;
        if !self.is_sent(*payload) {
            return;
        }
        let text = self.text(*payload);
        let Ok(map) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
        else {
            return;
        };
        for &(key, idx) in fields {
            if self.is_sent(idx) {
                continue;
            }
            let text = match map.get(key) {
                None | Some(serde_json::Value::Null) => continue,
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Bool(b)) => u8::from(*b).to_string(),
                Some(other) => other.to_string(),
            };
            if text.is_empty() {
                continue;
            }
            if let Ok((v, None)) = CATALOG[idx].ty.parse(text) {
                self.set(idx, v);
            }
        }
    }
}
