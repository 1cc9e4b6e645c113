//! `callback_id`: the key on which duplicates collapse.
//!
//! The same activity reaches the sink more than once: once per configured URL (global and
//! single-activity) and again on Adjust's retries. Both copies carry the same activity, but not
//! necessarily the same set of placeholders (each URL template is the user's choice), so the id is
//! a hash of what identifies the activity, not of the whole query:
//!
//! 1. `nonce` when sent (Adjust's random per-activity string), with the app;
//! 2. otherwise the activity's identity: kind, app, device identifiers, time of the activity, event
//!    token, SKAN and subscription transaction ids, engagement reference (the placeholders marked
//!    `.identity(n)` in the catalog, hashed in the order of `n`);
//! 3. when none of those was sent (a hand-made test call), every typed value and `extra` pair,
//!    so distinct calls stay distinct and exact repeats collapse.
//!
//! The hash is xxh3-64 over length-prefixed fields: stable across versions and platforms.

use std::sync::LazyLock;

use xxhash_rust::xxh3::Xxh3;

use super::catalog::identity_indexes;
use super::decode::{Callback, Value, index_of};

/// What the id of an activity sent with `nonce` is the hash of.
pub const NONCE_KEY: [&str; 3] = ["nonce", "app_token", "app_id"];

/// Catalog indexes of [`NONCE_KEY`].
static NONCE_KEY_INDEX: LazyLock<[usize; 3]> =
    LazyLock::new(|| NONCE_KEY.map(|n| index_of(n).expect("in catalog")));

/// Computes the `callback_id` of a decoded callback.
pub fn callback_id(cb: &Callback<'_>) -> u64 {
    let mut h = Xxh3::new();
    let [nonce, app_token, app_id] = *NONCE_KEY_INDEX;
    let nonce = cb.text(nonce);
    if !nonce.is_empty() {
        field(&mut h, b"nonce");
        field(&mut h, nonce.as_bytes());
        field(&mut h, cb.text(app_token).as_bytes());
        field(&mut h, cb.text(app_id).as_bytes());
        return h.digest();
    }
    field(&mut h, b"kind");
    field(&mut h, cb.activity_kind().as_bytes());
    let mut any = false;
    for &idx in identity_indexes() {
        let v = cb.value(idx);
        any |= *v != Value::Absent;
        value(&mut h, cb, v);
    }
    if !any {
        for v in cb.values() {
            value(&mut h, cb, v);
        }
        for (k, v) in &cb.extra {
            field(&mut h, k.as_bytes());
            field(&mut h, v.as_bytes());
        }
        for (k, v) in &cb.custom {
            field(&mut h, k.as_bytes());
            value(&mut h, cb, v);
        }
    }
    h.digest()
}

fn field(h: &mut Xxh3, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn value(h: &mut Xxh3, cb: &Callback<'_>, v: &Value<'_>) {
    match v {
        Value::Absent => h.update(&[0]),
        Value::Text(_) | Value::Params(..) | Value::Part(..) => {
            h.update(&[1]);
            field(h, cb.resolve(v).as_bytes());
        }
        Value::Time(t) => {
            h.update(&[2]);
            h.update(&t.to_le_bytes());
        }
        Value::TimeMs(t) | Value::Int(t) => {
            h.update(&[3]);
            h.update(&t.to_le_bytes());
        }
        Value::Flag(f) => h.update(&[4, *f]),
        Value::Float(f) => {
            h.update(&[5]);
            h.update(&f.to_bits().to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adjust::decode::{Body, DecodeOptions, decode};

    fn id(q: &str, trigger: &str) -> u64 {
        callback_id(&decode(
            q.as_bytes(),
            Body::None,
            trigger,
            &DecodeOptions::new(),
        ))
    }

    #[test]
    fn global_and_single_activity_copies_collapse() {
        let global = id(
            "activity_kind=event&adid=a1&created_at=100&event=tok123&tracker_name=x",
            "",
        );
        let single = id("adid=a1&created_at=100&event=tok123&country=de", "event");
        assert_eq!(global, single);
    }

    #[test]
    fn nonce_wins_and_distinct_activities_differ() {
        assert_eq!(
            id("nonce=n1&adid=a", ""),
            id("nonce=n1&adid=b&created_at=5", "")
        );
        assert_ne!(id("nonce=n1", ""), id("nonce=n2", ""));
        assert_ne!(
            id("activity_kind=session&adid=a&created_at=1", ""),
            id("activity_kind=session&adid=a&created_at=2", "")
        );
        assert_ne!(
            id("activity_kind=session&adid=a&created_at=1", ""),
            id("activity_kind=event&adid=a&created_at=1", "")
        );
    }

    /// The ids of activities without `nonce` depend on the identity placeholders and their order:
    /// a change would keep copies stored before and after a release from collapsing.
    #[test]
    fn ids_stay_what_they_were() {
        assert_eq!(
            id(
                "activity_kind=install&app_token=t&app_id=com.x&adid=a&idfa=I&idfv=V&gps_adid=g\
                 &android_id=an&fire_adid=f&oaid=o&web_uuid=w&win_adid=wa&created_at=100\
                 &created_at_milli=100123&event=e&sk_transaction_id=s\
                 &subscription_transaction_id=st&reftag=r",
                ""
            ),
            0x3b5e9dc72ea08265
        );
        assert_eq!(
            id(
                "activity_kind=event&adid=a1&created_at=100&event=tok123",
                ""
            ),
            0xc34b4fb70541a2c0
        );
        assert_eq!(id("nonce=n1&app_token=t&app_id=x", ""), 0x1397e623fd24a86c);
    }

    #[test]
    fn calls_without_identity_hash_everything() {
        assert_ne!(id("foo=1", ""), id("foo=2", ""));
        assert_eq!(id("foo=1&country=de", ""), id("foo=1&country=de", ""));
    }
}
