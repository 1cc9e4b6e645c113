//! Taking one `key=value` pair: the rules every pair follows (placeholder or alias, column of
//! the user's own, or `extra`; "not sent"; first wins; typed, or NULL with the raw pair kept),
//! and the splitting of a query string or form body into pairs, escaped values decoded into the
//! callback's shared buffer.

use std::borrow::Cow;

use super::*;
use crate::adjust::query::{Damage, decode_component, decode_into, for_each_pair, raw_pairs};

impl<'a> Callback<'a> {
    /// Takes one decoded pair.
    pub(super) fn put(&mut self, key: Cow<'a, str>, val: Cow<'a, str>, opts: &DecodeOptions) {
        self.put_with(key, val, opts, |v| v, |raw| raw);
    }

    /// Takes one pair whose value was percent-decoded into [`Callback::decoded`] at
    /// `start..end`: a text value stays there (a [`Value::Part`] of [`DECODED`]).
    fn put_span(&mut self, key: Cow<'a, str>, start: usize, end: usize, opts: &DecodeOptions) {
        let decoded = std::mem::take(&mut self.decoded);
        let span = (start as u32, end as u32);
        self.put_with(
            key,
            Cow::Borrowed(&decoded[start..end]),
            opts,
            |v| detach(v, span),
            |raw| Cow::Owned(raw.into_owned()),
        );
        self.decoded = decoded;
    }

    /// The rules of a pair: `attach` turns a typed value of `val` into one the callback keeps,
    /// `own` the raw text for `extra`.
    fn put_with<'v>(
        &mut self,
        key: Cow<'a, str>,
        val: Cow<'v, str>,
        opts: &DecodeOptions,
        attach: impl Fn(Value<'v>) -> Value<'a>,
        own: impl Fn(Cow<'v, str>) -> Cow<'a, str>,
    ) {
        let Some(idx) = opts.lookup(&key) else {
            match opts.custom(&key) {
                Some(c) => self.put_custom(c, key, val, attach, own),
                None => self.extra.push((key, own(val))),
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
            self.extra.push((key, own(val)));
            return;
        }
        match CATALOG[idx].ty.parse(val) {
            Ok((v, flaw)) => {
                if let Some(kind) = flaw {
                    self.problem(kind, &key);
                }
                self.set(idx, attach(v));
            }
            Err((kind, raw)) => {
                self.problem(kind, &key);
                self.extra.push((key, own(raw)));
            }
        }
    }

    /// Takes the value of a key with a column of the user's own: the same rules as for a
    /// placeholder (not sent when empty or unreplaced; first wins; NULL and the raw pair in `extra`
    /// when it does not parse).
    fn put_custom<'v>(
        &mut self,
        c: CustomColumn,
        key: Cow<'a, str>,
        val: Cow<'v, str>,
        attach: impl Fn(Value<'v>) -> Value<'a>,
        own: impl Fn(Cow<'v, str>) -> Cow<'a, str>,
    ) {
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
            self.extra.push((key, own(val)));
            return;
        }
        match c.ty.parse(val) {
            Ok((v, _)) => self.custom.push((c.name, attach(v))),
            Err((kind, raw)) => {
                self.problem(kind, &key);
                self.extra.push((key, own(raw)));
            }
        }
    }
}

/// `{name}` or `{a||b}` as left in a URL when Adjust did not replace it (test callbacks).
pub(super) fn is_placeholder_literal(v: &str) -> bool {
    let inner = &v[1..v.len() - 1];
    !inner.is_empty()
        && inner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'|')
}

/// A value typed from text in [`Callback::decoded`] at `span`, as the callback keeps it: text
/// stays in the buffer, parameters are copied (rare), numbers and times carry no text.
fn detach<'a>(v: Value<'_>, (start, end): (u32, u32)) -> Value<'a> {
    match v {
        Value::Text(_) | Value::Part(..) => Value::Part(DECODED, start, end),
        Value::Params(p) => {
            let (raw, pairs) = *p;
            Value::Params(Box::new((Cow::Owned(raw.into_owned()), pairs)))
        }
        Value::Absent => Value::Absent,
        Value::Time(t) => Value::Time(t),
        Value::TimeMs(t) => Value::TimeMs(t),
        Value::Flag(f) => Value::Flag(f),
        Value::Int(i) => Value::Int(i),
        Value::Float(f) => Value::Float(f),
    }
}

thread_local! {
    /// Bytes of one value being percent-decoded (before its UTF-8 check).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Takes every pair of a query string or form body. UTF-8 is checked once for the whole input;
/// only damaged input goes the byte-by-byte way. Escaped values are decoded into the
/// callback's shared buffer.
pub(super) fn put_form<'a>(cb: &mut Callback<'a>, input: &'a [u8], opts: &DecodeOptions) {
    match std::str::from_utf8(input) {
        Ok(text) => SCRATCH.with_borrow_mut(|scratch| {
            for_each_pair(text, |k, key_escaped, v, value_escaped| {
                let (key, kd) = if key_escaped {
                    decode_component(k.as_bytes())
                } else {
                    (Cow::Borrowed(k), Damage::default())
                };
                if value_escaped {
                    if cb.decoded.capacity() == 0 {
                        cb.decoded.reserve(input.len());
                    }
                    let start = cb.decoded.len();
                    let vd = decode_into(v.as_bytes(), scratch, &mut cb.decoded);
                    note_damage(cb, &key, kd, vd);
                    let end = cb.decoded.len();
                    cb.put_span(key, start, end, opts);
                } else {
                    note_damage(cb, &key, kd, Damage::default());
                    cb.put(key, Cow::Borrowed(v), opts);
                }
            })
        }),
        Err(_) => {
            for (k, v) in raw_pairs(input) {
                let (key, kd) = decode_component(k);
                let (val, vd) = decode_component(v);
                note_damage(cb, &key, kd, vd);
                cb.put(key, val, opts);
            }
        }
    }
}

fn note_damage(cb: &mut Callback<'_>, key: &str, kd: Damage, vd: Damage) {
    if kd.any() || vd.any() {
        cb.note_damage(
            Damage {
                bad_escape: kd.bad_escape || vd.bad_escape,
                bad_utf8: kd.bad_utf8 || vd.bad_utf8,
            },
            key,
        );
    }
}
