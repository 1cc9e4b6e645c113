//! What Adjust derives from other values when they were not sent: the tracker name's
//! `network::campaign::adgroup::creative` parts and the activity kind from the trigger (the SKAN
//! fields from `sk_payload` are in `skan`).

use std::borrow::Cow;
use std::sync::LazyLock;

use super::*;

static TRACKER_NAME: LazyLock<usize> =
    LazyLock::new(|| index_of("tracker_name").expect("in catalog"));
static LINK_NAME: LazyLock<usize> = LazyLock::new(|| index_of("link_name").expect("in catalog"));
static NAME_PARTS: LazyLock<[usize; 4]> = LazyLock::new(|| {
    [
        "network_name",
        "campaign_name",
        "adgroup_name",
        "creative_name",
    ]
    .map(|n| index_of(n).expect("in catalog"))
});

impl Callback<'_> {
    /// Fills what Adjust derives from other values when they were not sent: the tracker name's
    /// `network::campaign::adgroup::creative` parts, and the activity kind from the trigger.
    pub(super) fn derive(&mut self) {
        // `link_name` is the newer name of `tracker_name`; either gives the four name parts
        // (`Organic` alone is a one-part name: the network).
        let source = [*TRACKER_NAME, *LINK_NAME]
            .into_iter()
            .find(|&i| matches!(self.value(i), Value::Text(_) | Value::Part(DECODED, ..)));
        if let Some(src) = source {
            let mut parts = [(0, 0); 4];
            for (slot, range) in parts.iter_mut().zip(name_parts(self.text(src))) {
                *slot = range;
            }
            for ((from, to), &col) in parts.into_iter().zip(NAME_PARTS.iter()) {
                if !self.is_sent(col) && to > from {
                    self.set(col, Value::Part(src as u16, from, to));
                }
            }
        }
        self.derive_skan();
        if !self.is_sent(ACTIVITY_KIND) && !self.trigger.is_empty() {
            self.set(ACTIVITY_KIND, Value::Text(Cow::Borrowed(self.trigger)));
        }
        let kind = self.activity_kind();
        if !kind.is_empty() && crate::adjust::activity::label(kind) == "unknown" {
            self.problem(ProblemKind::UnknownActivityKind, "activity_kind");
        }
    }
}

/// The byte ranges of the `::`-separated parts of a tracker name, as `str::split("::")` gives
/// them (without a searcher set up per callback).
fn name_parts(text: &str) -> impl Iterator<Item = (u32, u32)> + '_ {
    let bytes = text.as_bytes();
    let mut start = Some(0usize);
    std::iter::from_fn(move || {
        let from = start?;
        let mut at = from;
        let end = loop {
            match memchr::memchr(b':', &bytes[at..]) {
                Some(i) if bytes.get(at + i + 1) == Some(&b':') => break at + i,
                Some(i) => at += i + 1,
                None => break bytes.len(),
            }
        };
        start = (end < bytes.len()).then_some(end + 2);
        Some((from as u32, end as u32))
    })
}

#[cfg(test)]
mod name_parts_tests {
    #[test]
    fn name_parts_split_like_str_split() {
        for text in [
            "",
            "Organic",
            "a::b::c::d",
            "a::b::c::d::e",
            "a:::b",
            "::a",
            "a::",
            "a:b::c",
            ":",
            "::::",
            "Network1::Christmas::Reindeers::320x70_en",
        ] {
            let want: Vec<&str> = text.split("::").collect();
            let got: Vec<&str> = super::name_parts(text)
                .map(|(a, b)| &text[a as usize..b as usize])
                .collect();
            assert_eq!(got, want, "{text:?}");
        }
    }
}
