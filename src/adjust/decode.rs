//! A raw callback → typed values. Never fails: whatever the sender sent is kept, either typed in
//! its column, or as a raw pair in `extra`, or (when the input itself was damaged) in `raw_query`.
//!
//! Rules (how Adjust fills callback URLs): percent-decode once, `+` is a space; an absent key, an empty value
//! and an unreplaced literal `{placeholder}` all mean "not sent"; a value that does not parse gives
//! NULL and keeps the raw pair in `extra`; for a repeated key the first wins and the others go to
//! `extra`; keys that are not placeholders (SDK callback parameters) go to `extra`.
//!
//! Here: the values, problems and the decoded [`Callback`], and the entry points. Files:
//! `pairs` (the rules of one pair, splitting a query or form body), `typing` (text → typed
//! value), `derive` (tracker name parts, kind from the trigger), `skan` (SKAN fields from
//! `sk_payload`), `names` (the name table), `options` (aliases, columns of the user's own).

use rustc_hash::FxHashMap;
use std::borrow::Cow;

use super::catalog::{CATALOG, Ty};
use super::query::Damage;
use pairs::put_form;

/// Position of `activity_kind` (first in the catalog by construction).
const ACTIVITY_KIND: usize = 0;

/// Number of catalog entries.
pub const CATALOG_LEN: usize = CATALOG.len();
const PRESENT_WORDS: usize = CATALOG_LEN.div_ceil(64);

/// A request body, as the content type says (or as it looks when the type is missing).
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    None,
    Form(&'a [u8]),
    Json(&'a [u8]),
}

impl<'a> Body<'a> {
    /// Picks the body kind from a `Content-Type` header value, sniffing when absent or unknown.
    pub fn from_content_type(content_type: Option<&str>, bytes: &'a [u8]) -> Self {
        if bytes.is_empty() {
            return Body::None;
        }
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        if ct.contains("json") {
            Body::Json(bytes)
        } else if ct.contains("x-www-form-urlencoded") {
            Body::Form(bytes)
        } else if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            Body::Json(bytes)
        } else {
            Body::Form(bytes)
        }
    }
}

/// A parameters placeholder's raw JSON text and its flat string pairs.
pub type Params<'a> = (Cow<'a, str>, Vec<(String, String)>);

/// One typed placeholder value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A part of another placeholder's text (`network_name` … `creative_name` cut from
    /// `tracker_name`): catalog index of the source and a byte range in its text; or, with
    /// [`DECODED`] as the source, a percent-decoded value in the callback's shared buffer.
    Part(u16, u32, u32),
    /// Not sent (absent, empty or an unreplaced `{placeholder}`), or did not parse.
    Absent,
    Text(Cow<'a, str>),
    Time(u32),
    TimeMs(i64),
    Flag(u8),
    Int(i64),
    Float(f64),
    /// Raw JSON text (kept whatever it holds) and its flat string pairs when it is an object.
    /// Boxed: rare, and every other value fits in half its size.
    Params(Box<Params<'a>>),
}

/// What kind of decode problem happened; a stable metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    BadEscape,
    BadUtf8,
    BadTime,
    BadNumber,
    BadFlag,
    BadJson,
    BadParams,
    BadBody,
    DuplicateKey,
    UnreplacedPlaceholder,
    UnknownActivityKind,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 11] = [
        Self::BadEscape,
        Self::BadUtf8,
        Self::BadTime,
        Self::BadNumber,
        Self::BadFlag,
        Self::BadJson,
        Self::BadParams,
        Self::BadBody,
        Self::DuplicateKey,
        Self::UnreplacedPlaceholder,
        Self::UnknownActivityKind,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadEscape => "bad_escape",
            Self::BadUtf8 => "bad_utf8",
            Self::BadTime => "bad_time",
            Self::BadNumber => "bad_number",
            Self::BadFlag => "bad_flag",
            Self::BadJson => "bad_json",
            Self::BadParams => "bad_params",
            Self::BadBody => "bad_body",
            Self::DuplicateKey => "duplicate_key",
            Self::UnreplacedPlaceholder => "unreplaced_placeholder",
            Self::UnknownActivityKind => "unknown_activity_kind",
        }
    }

    /// Whether the raw input is kept in `raw_query` when this happens: damaged input and values
    /// that did not parse. A duplicate key or an unreplaced placeholder loses nothing.
    pub fn keeps_raw(self) -> bool {
        !matches!(
            self,
            Self::DuplicateKey | Self::UnreplacedPlaceholder | Self::UnknownActivityKind
        )
    }
}

/// A decode problem: its kind and, where there is one, the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub key: String,
}

/// No value sent for a catalog entry (in [`Callback`]'s slot table).
const NONE: u16 = u16::MAX;

/// The source of a [`Value::Part`] that lies in the callback's buffer of percent-decoded text.
pub const DECODED: u16 = u16::MAX;

static ABSENT: Value<'static> = Value::Absent;

/// A decoded callback. Values are kept sparse (Adjust sends a few dozen of the ~230
/// placeholders) with a slot table from catalog index to value.
#[derive(Debug, Clone)]
pub struct Callback<'a> {
    /// For each catalog entry, its position in `sent`, or [`NONE`].
    slots: [u16; CATALOG_LEN],
    /// Bit `i` set when catalog entry `i` has a value: walks the sent values in catalog order.
    present: [u64; PRESENT_WORDS],
    /// The values sent, with their catalog index.
    sent: Vec<(u16, Value<'a>)>,
    /// Keys that are not placeholders, repeated keys, and values that did not parse, as sent.
    pub extra: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Values of keys with a column of the user's own (`--column`), typed, in the order sent.
    pub custom: Vec<(&'static str, Value<'a>)>,
    pub problems: Vec<Problem>,
    /// The single-activity trigger from the path (`/adjust/{trigger}`), `""` for the global one.
    pub trigger: &'a str,
    /// The percent-decoded text of every escaped value, one after the other (one allocation
    /// per callback instead of one per value): [`Value::Part`] of [`DECODED`].
    decoded: String,
}

impl<'a> Callback<'a> {
    fn new(trigger: &'a str) -> Self {
        Callback {
            slots: [NONE; CATALOG_LEN],
            present: [0; PRESENT_WORDS],
            sent: Vec::with_capacity(48),
            extra: Vec::new(),
            custom: Vec::new(),
            problems: Vec::new(),
            trigger,
            decoded: String::new(),
        }
    }

    /// The value of catalog entry `idx` ([`Value::Absent`] when not sent).
    pub fn value(&self, idx: usize) -> &Value<'a> {
        match self.slots[idx] {
            NONE => &ABSENT,
            at => &self.sent[usize::from(at)].1,
        }
    }

    /// Every catalog entry's value, in catalog order.
    pub fn values(&self) -> impl Iterator<Item = &Value<'a>> + '_ {
        (0..CATALOG_LEN).map(|i| self.value(i))
    }

    /// The values sent (and derived) with their catalog index, in catalog order.
    pub fn sent(&self) -> impl Iterator<Item = (usize, &Value<'a>)> + '_ {
        self.present.iter().enumerate().flat_map(move |(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let idx = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some((idx, &self.sent[usize::from(self.slots[idx])].1))
            })
        })
    }

    /// Replaces the value of catalog entry `idx` when it was sent: `f` gets its text and returns
    /// the new text, or `None` to make it "not sent". Values cut from it (the tracker name's
    /// parts) keep their text. For the privacy settings, on string-typed placeholders.
    pub fn rewrite(&mut self, idx: usize, f: impl FnOnce(&str) -> Option<String>) {
        let at = match self.slots[idx] {
            NONE => return,
            at => usize::from(at),
        };
        for i in 0..self.sent.len() {
            if let Value::Part(of, ..) = self.sent[i].1
                && usize::from(of) == idx
            {
                let text = self.resolve(&self.sent[i].1).to_owned();
                self.sent[i].1 = Value::Text(Cow::Owned(text));
            }
        }
        match f(self.text(idx)) {
            Some(text) => self.sent[at].1 = Value::Text(Cow::Owned(text)),
            None => {
                self.sent[at].1 = Value::Absent;
                self.slots[idx] = NONE;
                self.present[idx / 64] &= !(1 << (idx % 64));
            }
        }
    }

    fn is_sent(&self, idx: usize) -> bool {
        self.slots[idx] != NONE
    }

    fn set(&mut self, idx: usize, v: Value<'a>) {
        self.present[idx / 64] |= 1 << (idx % 64);
        self.slots[idx] = self.sent.len() as u16;
        self.sent.push((idx as u16, v));
    }

    /// The text of a string-typed placeholder (or of a part of one), `""` when not sent.
    pub fn text(&self, idx: usize) -> &str {
        self.resolve(self.value(idx))
    }

    /// The text of a value: itself, or the part of another value it stands for.
    pub fn resolve<'s>(&'s self, v: &'s Value<'a>) -> &'s str {
        match v {
            Value::Text(s) => s,
            Value::Params(p) => &p.0,
            Value::Part(DECODED, start, end) => self
                .decoded
                .get(*start as usize..*end as usize)
                .unwrap_or(""),
            Value::Part(of, start, end) => self
                .text(usize::from(*of))
                .get(*start as usize..*end as usize)
                .unwrap_or(""),
            _ => "",
        }
    }

    /// The text of a placeholder by name (for tests and identity), `""` when not sent.
    pub fn get(&self, name: &str) -> &str {
        index_of(name).map(|i| self.text(i)).unwrap_or("")
    }

    pub fn activity_kind(&self) -> &str {
        self.text(ACTIVITY_KIND)
    }

    /// Whether the raw input should be kept in `raw_query`.
    pub fn keeps_raw(&self) -> bool {
        self.problems.iter().any(|p| p.kind.keeps_raw())
    }

    fn problem(&mut self, kind: ProblemKind, key: &str) {
        self.problems.push(Problem {
            kind,
            key: key.to_owned(),
        });
    }

    fn note_damage(&mut self, damage: Damage, key: &str) {
        if damage.bad_escape {
            self.problem(ProblemKind::BadEscape, key);
        }
        if damage.bad_utf8 {
            self.problem(ProblemKind::BadUtf8, key);
        }
    }
}

/// Decodes a callback from its query string, its body and its trigger (`""` for the global
/// callback). Query pairs come first, then body pairs.
pub fn decode<'a>(
    query: &'a [u8],
    body: Body<'a>,
    trigger: &'a str,
    opts: &DecodeOptions,
) -> Callback<'a> {
    let mut cb = Callback::new(trigger);
    put_form(&mut cb, query, opts);
    match body {
        Body::None => {}
        Body::Form(bytes) => put_form(&mut cb, bytes, opts),
        Body::Json(bytes) => match json_object(bytes) {
            Some((map, lossy)) => {
                if lossy {
                    cb.problem(ProblemKind::BadUtf8, "");
                }
                for (k, v) in map {
                    let v = match v {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    cb.put(Cow::Owned(k), Cow::Owned(v), opts);
                }
            }
            None => cb.problem(ProblemKind::BadBody, ""),
        },
    }
    cb.derive();
    cb
}

/// A JSON object body's members. One that is not UTF-8 is read with U+FFFD in place of its
/// invalid bytes, as a query's values are (the second value is then `true`: the raw body is kept).
fn json_object(bytes: &[u8]) -> Option<(Vec<(String, serde_json::Value)>, bool)> {
    if let Ok(Members(members)) = serde_json::from_slice(bytes) {
        return Some((members, false));
    }
    match String::from_utf8_lossy(bytes) {
        Cow::Owned(text) => serde_json::from_str(&text)
            .ok()
            .map(|Members(members)| (members, true)),
        Cow::Borrowed(_) => None,
    }
}

/// A JSON object's members in the order sent, a key sent twice included (a map keeps only the
/// last one: the first would be lost instead of kept in `extra`, as a query's is).
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(256));
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// Decodes an activity given as `(placeholder, value)` pairs whose values are already decoded
/// (a row of one of Adjust's CSV exports): each pair is taken as a query pair would be after
/// percent-decoding, then the same derivations run. No trigger.
pub fn decode_pairs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    opts: &DecodeOptions,
) -> Callback<'a> {
    let mut cb = Callback::new("");
    for (k, v) in pairs {
        cb.put(Cow::Borrowed(k), Cow::Borrowed(v), opts);
    }
    cb.derive();
    cb
}

mod derive;
mod names;
mod options;
mod pairs;
mod skan;
mod typing;

pub use names::index_of;
pub use options::{CustomColumn, DecodeOptions};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
