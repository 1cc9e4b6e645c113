//! A raw callback → typed values. Never fails: whatever the sender sent is kept, either typed in
//! its column, or as a raw pair in `extra`, or (when the input itself was damaged) in `raw_query`.
//!
//! Rules (how Adjust fills callback URLs): percent-decode once, `+` is a space; an absent key, an empty value
//! and an unreplaced literal `{placeholder}` all mean "not sent"; a value that does not parse gives
//! NULL and keeps the raw pair in `extra`; for a repeated key the first wins and the others go to
//! `extra`; keys that are not placeholders (SDK callback parameters) go to `extra`.

use std::borrow::Cow;
use std::sync::LazyLock;

use rustc_hash::FxHashMap;

use super::catalog::{CATALOG, Ty};
use super::query::{Damage, decode_component, for_each_pair, raw_pairs};
use super::value;

/// Index of a placeholder in [`CATALOG`], by name: open addressing over a cheap hash of the
/// length and three bytes (the names are short and fixed, so this beats a general hash map).
struct NameTable {
    slots: Vec<u16>,
}

const TABLE_BITS: u32 = 11;

fn name_hash(name: &[u8]) -> usize {
    let (first, mid, last) = match name {
        [] => (0, 0, 0),
        _ => (name[0], name[name.len() / 2], name[name.len() - 1]),
    };
    let h = (name.len() as u32)
        .wrapping_mul(0x9E37_79B1)
        .wrapping_add(u32::from(first).wrapping_mul(0x85EB_CA77))
        .wrapping_add(u32::from(mid).wrapping_mul(0xC2B2_AE3D))
        .wrapping_add(u32::from(last).wrapping_mul(0x27D4_EB2F));
    (h >> (32 - TABLE_BITS)) as usize
}

impl NameTable {
    fn new() -> Self {
        let mask = (1 << TABLE_BITS) - 1;
        let mut slots = vec![NONE; 1 << TABLE_BITS];
        for (i, p) in CATALOG.iter().enumerate() {
            let mut at = name_hash(p.name.as_bytes());
            while slots[at] != NONE {
                at = (at + 1) & mask;
            }
            slots[at] = i as u16;
        }
        NameTable { slots }
    }

    fn get(&self, name: &str) -> Option<usize> {
        let mask = (1 << TABLE_BITS) - 1;
        let mut at = name_hash(name.as_bytes());
        loop {
            match self.slots[at] {
                NONE => return None,
                i if CATALOG[usize::from(i)].name == name => return Some(usize::from(i)),
                _ => at = (at + 1) & mask,
            }
        }
    }
}

static INDEX: LazyLock<NameTable> = LazyLock::new(NameTable::new);

/// Position of `activity_kind` (first in the catalog by construction).
const ACTIVITY_KIND: usize = 0;

/// Number of catalog entries.
pub const CATALOG_LEN: usize = CATALOG.len();
const PRESENT_WORDS: usize = CATALOG_LEN.div_ceil(64);

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

/// Names Adjust's own material uses for a placeholder that has another column name.
const BUILTIN_ALIASES: &[(&str, &str)] = &[("publisher_parameter", "publisher_parameters")];

/// The catalog index of a placeholder name, if it is one.
pub fn index_of(name: &str) -> Option<usize> {
    INDEX.get(name)
}

/// A column of the user's own (`--column NAME:TYPE`) for a key the catalog does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomColumn {
    /// Made `'static` once at start-up (a handful of names from the command line).
    pub name: &'static str,
    pub ty: Ty,
}

impl CustomColumn {
    /// `NAME:TYPE`, TYPE one of `string`, `lowcard`, `int`, `float`, `bool`, `timestamp`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (name, ty) = spec
            .trim()
            .split_once(':')
            .ok_or("must be NAME:TYPE, e.g. loyalty_tier:lowcard")?;
        let (name, ty) = (name.trim(), ty.trim());
        let ty = match ty {
            "string" => Ty::Str,
            "lowcard" => Ty::LowCard,
            "int" => Ty::Int,
            "float" => Ty::Float,
            "bool" => Ty::Flag,
            "timestamp" => Ty::Time,
            other => {
                return Err(format!(
                    "type `{other}` is not one of string, lowcard, int, float, bool, timestamp"
                ));
            }
        };
        let ok_name = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok_name {
            return Err(format!(
                "`{name}`: use lowercase letters, digits and underscores"
            ));
        }
        if index_of(name).is_some() {
            return Err(format!(
                "`{name}` is an Adjust placeholder: it has its column"
            ));
        }
        let taken = crate::row::wire_columns()
            .iter()
            .flat_map(|c| {
                let base = c.name.clone();
                [format!("{base}_map"), base]
            })
            .any(|n| n == name);
        if taken || name == "cold_map" {
            return Err(format!("`{name}` is a column of the sink"));
        }
        Ok(CustomColumn {
            name: Box::leak(name.to_owned().into_boxed_str()),
            ty,
        })
    }
}

/// Decoder settings that come from configuration.
#[derive(Debug, Clone, Default)]
pub struct DecodeOptions {
    /// Query keys that stand for a placeholder (`device_id` → `adid`), as catalog indexes.
    aliases: FxHashMap<String, u16>,
    /// Keys with a column of the user's own.
    columns: Vec<CustomColumn>,
}

impl DecodeOptions {
    /// Adds `alias` as another name for the placeholder `target`. Fails when `target` is not a
    /// placeholder, or when `alias` is itself one (it would shadow a real column).
    pub fn with_alias(mut self, alias: &str, target: &str) -> Result<Self, String> {
        let idx = index_of(target)
            .ok_or_else(|| format!("`{target}` is not an Adjust placeholder this sink knows"))?;
        if index_of(alias).is_some() {
            return Err(format!(
                "`{alias}` is itself a placeholder and cannot be an alias"
            ));
        }
        self.aliases.insert(alias.to_owned(), idx as u16);
        Ok(self)
    }

    /// Gives the key `column.name` a typed column of its own: its values go to the cold arrays
    /// (not to `extra`), typed as the column says.
    pub fn with_column(mut self, column: CustomColumn) -> Self {
        self.columns.retain(|c| c.name != column.name);
        self.columns.push(column);
        self
    }

    fn custom(&self, key: &str) -> Option<CustomColumn> {
        self.columns.iter().find(|c| c.name == key).copied()
    }

    /// The default options plus the built-in aliases.
    pub fn new() -> Self {
        let mut opts = Self::default();
        for (alias, target) in BUILTIN_ALIASES {
            opts = opts.with_alias(alias, target).expect("built-in alias");
        }
        opts
    }

    /// The catalog index a query key stands for (a placeholder name or an alias of one).
    pub fn lookup(&self, key: &str) -> Option<usize> {
        match index_of(key) {
            Some(i) => Some(i),
            None if self.aliases.is_empty() => None,
            None => self.aliases.get(key).map(|&i| usize::from(i)),
        }
    }
}

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

/// One typed placeholder value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A part of another placeholder's text (`network_name` … `creative_name` cut from
    /// `tracker_name`): catalog index of the source and a byte range in its text.
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
    Params(Cow<'a, str>, Vec<(String, String)>),
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
            Value::Text(s) | Value::Params(s, _) => s,
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

    /// Takes one decoded pair.
    fn put(&mut self, key: Cow<'a, str>, val: Cow<'a, str>, opts: &DecodeOptions) {
        let Some(idx) = opts.lookup(&key) else {
            match opts.custom(&key) {
                Some(c) => self.put_custom(c, key, val),
                None => self.extra.push((key, val)),
            }
            return;
        };
        if val.is_empty() {
            return;
        }
        if val.len() >= 2
            && val.starts_with('{')
            && val.ends_with('}')
            && is_placeholder_literal(&val)
        {
            self.problem(ProblemKind::UnreplacedPlaceholder, &key);
            return;
        }
        if self.is_sent(idx) {
            self.problem(ProblemKind::DuplicateKey, &key);
            self.extra.push((key, val));
            return;
        }
        let typed = match CATALOG[idx].ty.parse(val) {
            Ok((v, flaw)) => {
                if let Some(kind) = flaw {
                    self.problem(kind, &key);
                }
                Ok(v)
            }
            Err(bad) => Err(bad),
        };
        match typed {
            Ok(v) => self.set(idx, v),
            Err((kind, raw)) => {
                self.problem(kind, &key);
                self.extra.push((key, raw));
            }
        }
    }

    /// Takes the value of a key with a column of the user's own: the same rules as for a
    /// placeholder (not sent when empty or unreplaced; first wins; NULL and the raw pair in `extra`
    /// when it does not parse).
    fn put_custom(&mut self, c: CustomColumn, key: Cow<'a, str>, val: Cow<'a, str>) {
        if val.is_empty() {
            return;
        }
        if val.len() >= 2
            && val.starts_with('{')
            && val.ends_with('}')
            && is_placeholder_literal(&val)
        {
            self.problem(ProblemKind::UnreplacedPlaceholder, &key);
            return;
        }
        if self.custom.iter().any(|(n, _)| *n == c.name) {
            self.problem(ProblemKind::DuplicateKey, &key);
            self.extra.push((key, val));
            return;
        }
        match c.ty.parse(val) {
            Ok((v, _)) => self.custom.push((c.name, v)),
            Err((kind, raw)) => {
                self.problem(kind, &key);
                self.extra.push((key, raw));
            }
        }
    }

    /// Fills what Adjust derives from other values when they were not sent: the tracker name's
    /// `network::campaign::adgroup::creative` parts, and the activity kind from the trigger.
    fn derive(&mut self) {
        // `link_name` is the newer name of `tracker_name`; either gives the four name parts
        // (`Organic` alone is a one-part name: the network).
        let source = [*TRACKER_NAME, *LINK_NAME]
            .into_iter()
            .find(|&i| matches!(self.value(i), Value::Text(_)));
        if let Some(src) = source {
            let mut start = 0u32;
            let parts: Vec<(u32, u32)> = self
                .text(src)
                .split("::")
                .map(|part| {
                    let range = (start, start + part.len() as u32);
                    start = range.1 + 2;
                    range
                })
                .collect();
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
        if !kind.is_empty() && super::activity::label(kind) == "unknown" {
            self.problem(ProblemKind::UnknownActivityKind, "activity_kind");
        }
    }
}

impl Callback<'_> {
    /// Fills the `sk_*` placeholders the callback did not send from Apple's postback in
    /// `sk_payload` (SKAN 4 adds `source-identifier`, `coarse-conversion-value`,
    /// `postback-sequence-index`, …). A key sent by Adjust wins over the payload; a payload field
    /// that does not type is left out (the payload itself is kept whole).
    fn derive_skan(&mut self) {
        let (payload, fields) = &*SKAN;
        let Value::Text(text) = self.value(*payload) else {
            return;
        };
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

impl Ty {
    /// Types the text sent for a placeholder of this type. `Ok` with a problem: kept as sent but
    /// flagged (JSON that is not valid, parameters that are not an object). `Err`: the text does
    /// not parse; the column is NULL and the raw pair goes to `extra`.
    pub fn parse<'a>(
        self,
        val: impl Into<Cow<'a, str>>,
    ) -> Result<(Value<'a>, Option<ProblemKind>), (ProblemKind, Cow<'a, str>)> {
        let val = val.into();
        let bad = |kind| move |val| (kind, val);
        match self {
            Ty::Str | Ty::LowCard => Ok((Value::Text(val), None)),
            Ty::Json => {
                let flaw = (!value::is_json(&val)).then_some(ProblemKind::BadJson);
                Ok((Value::Text(val), flaw))
            }
            Ty::Params => {
                let pairs = value::parse_params(&val);
                let flaw = pairs.is_none().then_some(ProblemKind::BadParams);
                Ok((Value::Params(val, pairs.unwrap_or_default()), flaw))
            }
            Ty::Time => match value::parse_time(&val) {
                Some(t) => Ok((Value::Time(t), None)),
                None => Err(bad(ProblemKind::BadTime)(val)),
            },
            Ty::TimeMs => match value::parse_time_ms(&val) {
                Some(t) => Ok((Value::TimeMs(t), None)),
                None => Err(bad(ProblemKind::BadTime)(val)),
            },
            Ty::Flag => match value::parse_flag(&val) {
                Some(f) => Ok((Value::Flag(f), None)),
                None => Err(bad(ProblemKind::BadFlag)(val)),
            },
            Ty::Int => match value::parse_int(&val) {
                Some(i) => Ok((Value::Int(i), None)),
                None => Err(bad(ProblemKind::BadNumber)(val)),
            },
            Ty::Float => match value::parse_float(&val) {
                Some(f) => Ok((Value::Float(f), None)),
                None => Err(bad(ProblemKind::BadNumber)(val)),
            },
        }
    }
}

/// `{name}` or `{a||b}` as left in a URL when Adjust did not replace it (test callbacks).
fn is_placeholder_literal(v: &str) -> bool {
    let inner = &v[1..v.len() - 1];
    !inner.is_empty()
        && inner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'|')
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
        Body::Json(bytes) => {
            match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes) {
                Ok(map) => {
                    for (k, v) in map {
                        let v = match v {
                            serde_json::Value::String(s) => s,
                            serde_json::Value::Null => String::new(),
                            other => other.to_string(),
                        };
                        cb.put(Cow::Owned(k), Cow::Owned(v), opts);
                    }
                }
                Err(_) => cb.problem(ProblemKind::BadBody, ""),
            }
        }
    }
    cb.derive();
    cb
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

/// Takes every pair of a query string or form body. UTF-8 is checked once for the whole input;
/// only damaged input goes the byte-by-byte way.
fn put_form<'a>(cb: &mut Callback<'a>, input: &'a [u8], opts: &DecodeOptions) {
    match std::str::from_utf8(input) {
        Ok(text) => for_each_pair(text, |k, v| put_decoded(cb, k, v, opts)),
        Err(_) => {
            for (k, v) in raw_pairs(input) {
                put_decoded(cb, decode_component(k), decode_component(v), opts);
            }
        }
    }
}

fn put_decoded<'a>(
    cb: &mut Callback<'a>,
    (key, kd): (Cow<'a, str>, Damage),
    (val, vd): (Cow<'a, str>, Damage),
    opts: &DecodeOptions,
) {
    if kd.any() || vd.any() {
        let name = key.clone().into_owned();
        cb.note_damage(
            Damage {
                bad_escape: kd.bad_escape || vd.bad_escape,
                bad_utf8: kd.bad_utf8 || vd.bad_utf8,
            },
            &name,
        );
    }
    cb.put(key, val, opts);
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
