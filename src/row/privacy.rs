//! Privacy settings applied while a callback becomes its row (`--pseudonymize`, `--drop`).
//!
//! A pseudonymized placeholder is stored as the lowercase hex HMAC-SHA256 of its value under a
//! key only the operator holds (`ADJUST_SINK_PSEUDONYM_KEY`): the same device always gives the
//! same pseudonym, so analysts still join and count by device, but the raw identifier cannot be
//! recovered or confirmed without the key. A dropped placeholder is never stored.
//!
//! Both apply to every place a value could be written, because they act on the decoded callback
//! before it is encoded: the placeholder's column (hot or cold tier), a repeated or aliased key
//! in `extra`, the raw input kept in `raw_query` (rebuilt with the value replaced by its stored
//! form, the pair left out for a dropped one), and so the write-ahead log, the rejects table and
//! the rejects file, which all hold encoded rows. `source_ip` follows `ip_address`.
//!
//! A device identifier is acted on as a whole family ([`family_members`]): `--pseudonymize idfa`
//! (or `idfa_md5`) pseudonymizes `idfa`, `idfa_upper`, `idfa_md5` and `idfa_md5_hex`, because
//! any one spelling left raw identifies the device as well as the others.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::adjust::catalog::{CATALOG, Ty, device_ids, family_members};
use crate::adjust::decode::{Body, Callback, DecodeOptions, index_of};
use crate::adjust::query::{decode_component, raw_pairs};

/// What happens to one placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pseudonymize,
    Drop,
}

/// The privacy settings: which placeholders are pseudonymized or dropped, and the key.
#[derive(Clone, Default)]
pub struct Privacy {
    key: Vec<u8>,
    /// Catalog index → action, for the configured placeholders only.
    actions: Vec<(usize, Action)>,
}

impl fmt::Debug for Privacy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<(&str, Action)> = self
            .actions
            .iter()
            .map(|&(i, a)| (CATALOG[i].name, a))
            .collect();
        f.debug_struct("Privacy")
            .field("actions", &names)
            .field("key", &if self.key.is_empty() { "unset" } else { "***" })
            .finish()
    }
}

/// The device identifier families, as `--help` and the errors list them:
/// `adid; idfa (idfa_upper, idfa_md5, idfa_md5_hex); …`.
pub fn families() -> String {
    device_ids()
        .iter()
        .map(|base| match family_members(base) {
            Some(members) if members.len() > 1 => {
                format!("{base} ({})", members[1..].join(", "))
            }
            _ => base.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The environment variable holding the pseudonym key.
pub const KEY_ENV: &str = "ADJUST_SINK_PSEUDONYM_KEY";

impl Privacy {
    /// Validates the settings. `key` is needed (non-empty) as soon as a field is pseudonymized.
    pub fn new(
        key: Option<&[u8]>,
        pseudonymize: &[String],
        drop: &[String],
    ) -> Result<Self, String> {
        let mut actions: Vec<(usize, Action)> = Vec::new();
        for (names, action, flag) in [
            (pseudonymize, Action::Pseudonymize, "--pseudonymize"),
            (drop, Action::Drop, "--drop"),
        ] {
            for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                let idx = index_of(name).ok_or_else(|| {
                    format!(
                        "{flag} {name}: not an Adjust placeholder this sink knows (device \
                         identifiers, each with its family: {})",
                        families()
                    )
                })?;
                if name == "activity_kind" {
                    return Err(format!(
                        "{flag} activity_kind: the activity kind is not personal data, and the \
                         table's order, the views and erasure requests depend on it"
                    ));
                }
                let ty = CATALOG[idx].ty;
                if action == Action::Pseudonymize && !matches!(ty, Ty::Str | Ty::LowCard) {
                    return Err(format!(
                        "{flag} {name}: only text placeholders can be pseudonymized \
                         (`{name}` is {}); use --drop {name} to not store it",
                        ty.describe()
                    ));
                }
                // A device identifier goes with every spelling and hash of it.
                let family =
                    family_members(name).unwrap_or(std::slice::from_ref(&CATALOG[idx].name));
                for member in family {
                    let m = index_of(member).expect("a family member is a placeholder");
                    if let Some(&(_, other)) = actions.iter().find(|(i, _)| *i == m) {
                        if other != action {
                            let whole = if family.len() > 1 {
                                format!(
                                    " (a device identifier's family goes as a whole: {})",
                                    family.join(", ")
                                )
                            } else {
                                String::new()
                            };
                            return Err(format!(
                                "{member} is given to both --pseudonymize and --drop{whole}; keep one"
                            ));
                        }
                        continue;
                    }
                    actions.push((m, action));
                }
            }
        }
        let key = key.unwrap_or_default().to_vec();
        if key.is_empty() && actions.iter().any(|(_, a)| *a == Action::Pseudonymize) {
            return Err(format!(
                "--pseudonymize needs a secret key: set the environment variable {KEY_ENV} \
                 (keep it stable: a new key gives every device a new pseudonym)"
            ));
        }
        Ok(Privacy { key, actions })
    }

    /// Whether any placeholder is pseudonymized or dropped.
    pub fn is_active(&self) -> bool {
        !self.actions.is_empty()
    }

    /// What happens to catalog entry `idx`, if anything.
    pub fn action(&self, idx: usize) -> Option<Action> {
        self.actions
            .iter()
            .find(|(i, _)| *i == idx)
            .map(|&(_, a)| a)
    }

    fn action_of(&self, name: &str) -> Option<Action> {
        index_of(name).and_then(|i| self.action(i))
    }

    /// The stored form of a pseudonymized value: lowercase hex HMAC-SHA256 under the key.
    pub fn pseudonym(&self, value: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(64);
        for b in digest {
            out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        out
    }

    /// Replaces the pseudonymized values of a callback by their pseudonyms, in their columns and
    /// in `extra` (a repeated key, or an alias of the placeholder).
    pub fn pseudonymize(&self, cb: &mut Callback<'_>, opts: &DecodeOptions) {
        self.apply(cb, opts, Action::Pseudonymize);
    }

    /// Removes the dropped values of a callback, from their columns and from `extra`.
    pub fn drop_values(&self, cb: &mut Callback<'_>, opts: &DecodeOptions) {
        self.apply(cb, opts, Action::Drop);
    }

    fn apply(&self, cb: &mut Callback<'_>, opts: &DecodeOptions, which: Action) {
        for &(idx, action) in self.actions.iter().filter(|(_, a)| *a == which) {
            match action {
                Action::Pseudonymize => cb.rewrite(idx, |v| Some(self.pseudonym(v))),
                Action::Drop => cb.rewrite(idx, |_| None),
            }
        }
        let mut i = 0;
        while i < cb.extra.len() {
            let act = opts
                .lookup(&cb.extra[i].0)
                .and_then(|idx| self.action(idx))
                .filter(|a| *a == which);
            match act {
                Some(Action::Pseudonymize) => {
                    let p = self.pseudonym(&cb.extra[i].1);
                    cb.extra[i].1 = p.into();
                    i += 1;
                }
                Some(Action::Drop) => {
                    cb.extra.remove(i);
                }
                None => i += 1,
            }
        }
    }

    /// The stored form of the client IP (`source_ip`): it follows `ip_address` (pseudonymized or
    /// dropped with it).
    pub fn source_ip(&self, ip: String) -> String {
        match self.action_of("ip_address") {
            None => ip,
            Some(Action::Pseudonymize) => self.pseudonym(&ip),
            Some(Action::Drop) => String::new(),
        }
    }

    /// The raw input with every configured value in its stored form: a pseudonymized value
    /// replaced by its pseudonym, a dropped pair left out. A JSON body that does not parse cannot
    /// be redacted and is replaced by [`WITHHELD`].
    pub fn redact(&self, raw: Body<'_>, opts: &DecodeOptions) -> Vec<u8> {
        match raw {
            Body::None => Vec::new(),
            Body::Form(bytes) => self.redact_form(bytes, opts),
            Body::Json(bytes) => self.redact_json(bytes, opts),
        }
    }

    fn action_for_key(&self, key: &str, opts: &DecodeOptions) -> Option<Action> {
        opts.lookup(key).and_then(|idx| self.action(idx))
    }

    fn redact_form(&self, input: &[u8], opts: &DecodeOptions) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        for (k, v) in raw_pairs(input) {
            let (key, _) = decode_component(k);
            let replaced = match self.action_for_key(&key, opts) {
                None => None,
                Some(Action::Drop) => continue,
                Some(Action::Pseudonymize) => {
                    let (value, _) = decode_component(v);
                    Some(if value.is_empty() {
                        String::new()
                    } else {
                        self.pseudonym(&value)
                    })
                }
            };
            if !out.is_empty() {
                out.push(b'&');
            }
            out.extend_from_slice(k);
            out.push(b'=');
            match replaced {
                Some(p) => out.extend_from_slice(p.as_bytes()),
                None => out.extend_from_slice(v),
            }
        }
        out
    }

    fn redact_json(&self, input: &[u8], opts: &DecodeOptions) -> Vec<u8> {
        let Ok(map) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(input)
        else {
            return WITHHELD.as_bytes().to_vec();
        };
        let mut out = serde_json::Map::new();
        for (k, v) in map {
            match self.action_for_key(&k, opts) {
                None => {
                    out.insert(k, v);
                }
                Some(Action::Drop) => {}
                Some(Action::Pseudonymize) => {
                    let text = match v {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    let stored = if text.is_empty() {
                        text
                    } else {
                        self.pseudonym(&text)
                    };
                    out.insert(k, serde_json::Value::String(stored));
                }
            }
        }
        serde_json::Value::Object(out).to_string().into_bytes()
    }
}

/// What `raw_query` holds instead of a JSON body that does not parse while privacy settings are
/// on (it could hold a configured value that cannot be found in it).
pub const WITHHELD: &str = "(body withheld: not valid JSON, and --pseudonymize/--drop are set)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adjust::decode::decode;

    fn privacy(p: &[&str], d: &[&str]) -> Privacy {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Privacy::new(Some(b"k3y"), &s(p), &s(d)).unwrap()
    }

    #[test]
    fn the_pseudonym_is_the_hex_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let p = Privacy::new(Some(b"Jefe"), &["adid".into()], &[]).unwrap();
        assert_eq!(
            p.pseudonym("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn settings_are_checked() {
        let e = Privacy::new(None, &["adid".into()], &[]).unwrap_err();
        assert!(e.contains(KEY_ENV), "{e}");
        let e = Privacy::new(Some(b"k"), &["created_at".into()], &[]).unwrap_err();
        assert!(
            e.contains("only text placeholders") && e.contains("--drop"),
            "{e}"
        );
        let e = Privacy::new(Some(b"k"), &[], &["activity_kind".into()]).unwrap_err();
        assert!(e.contains("--drop activity_kind"), "{e}");
        let e = Privacy::new(Some(b"k"), &["nope".into()], &[]).unwrap_err();
        assert!(e.contains("--pseudonymize nope"), "{e}");
        let e = Privacy::new(Some(b"k"), &["adid".into()], &["adid".into()]).unwrap_err();
        assert!(e.contains("both"), "{e}");
        // Dropping needs no key, and any type can be dropped.
        assert!(Privacy::new(None, &[], &["created_at".into()]).is_ok());
        assert!(!format!("{:?}", privacy(&["adid"], &[])).contains("k3y"));
    }

    #[test]
    fn values_are_replaced_in_columns_and_extra() {
        let p = privacy(&["adid", "tracker_name"], &["user_agent"]);
        let opts = DecodeOptions::new()
            .with_alias("device_id", "adid")
            .unwrap();
        let mut cb = decode(
            b"adid=A1&adid=A2&device_id=A3&user_agent=UA&user_agent=UA2&tracker_name=net::camp&x=1",
            Body::None,
            "install",
            &opts,
        );
        p.pseudonymize(&mut cb, &opts);
        p.drop_values(&mut cb, &opts);
        assert_eq!(cb.get("adid"), p.pseudonym("A1"));
        assert_eq!(cb.get("user_agent"), "");
        assert_eq!(cb.get("tracker_name"), p.pseudonym("net::camp"));
        // The parts cut from the tracker name keep their text.
        assert_eq!(cb.get("network_name"), "net");
        assert_eq!(cb.get("campaign_name"), "camp");
        let extra: Vec<(String, String)> = cb
            .extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            extra,
            vec![
                ("adid".into(), p.pseudonym("A2")),
                ("device_id".into(), p.pseudonym("A3")),
                ("x".into(), "1".into()),
            ]
        );
    }

    /// Naming any spelling of a device identifier acts on its whole family; naming the same
    /// family twice for two actions is refused.
    #[test]
    fn a_device_identifier_goes_with_its_whole_family() {
        let p = privacy(&["idfa_md5"], &["gps_adid"]);
        let acted = |name: &str| p.action(index_of(name).unwrap());
        for m in ["idfa", "idfa_upper", "idfa_md5", "idfa_md5_hex"] {
            assert_eq!(acted(m), Some(Action::Pseudonymize), "{m}");
        }
        for m in ["gps_adid", "gps_adid_md5"] {
            assert_eq!(acted(m), Some(Action::Drop), "{m}");
        }
        assert_eq!(acted("idfv"), None);
        let e = Privacy::new(Some(b"k"), &["idfa".into()], &["idfa_upper".into()]).unwrap_err();
        assert!(e.contains("both") && e.contains("idfa_md5_hex"), "{e}");
        let e = Privacy::new(Some(b"k"), &["device_id".into()], &[]).unwrap_err();
        assert!(
            e.contains("idfa (idfa_upper, idfa_md5, idfa_md5_hex)"),
            "{e}"
        );
        // Every spelling of the family leaves the row pseudonymized.
        let opts = DecodeOptions::new();
        let p = privacy(&["idfa"], &[]);
        let mut cb = decode(
            b"idfa=RAW-IDFA&idfa_upper=RAW-IDFA&idfa_md5=abc&idfa_md5_hex=ABC",
            Body::None,
            "install",
            &opts,
        );
        p.pseudonymize(&mut cb, &opts);
        assert_eq!(cb.get("idfa_upper"), p.pseudonym("RAW-IDFA"));
        assert_eq!(cb.get("idfa_md5"), p.pseudonym("abc"));
        assert_eq!(cb.get("idfa_md5_hex"), p.pseudonym("ABC"));
    }

    /// `--help` of --pseudonymize and --drop lists every family as the catalog has it.
    #[test]
    fn help_lists_the_families() {
        use clap::{Args, Command};
        let mut cmd = crate::row::settings::RowArgs::augment_args(Command::new("serve"));
        let help = cmd
            .render_long_help()
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let families = families();
        assert!(
            families.starts_with("adid; idfa (idfa_upper, idfa_md5, idfa_md5_hex); idfv"),
            "{families}"
        );
        assert!(
            help.contains(&families),
            "--help lacks the families `{families}`:\n{help}"
        );
    }

    #[test]
    fn raw_input_is_redacted() {
        let p = privacy(&["adid"], &["user_agent"]);
        let opts = DecodeOptions::new();
        let form = p.redact(
            Body::Form(b"adid=A%zz&user_agent=U&revenue=x&ad%69d=B"),
            &opts,
        );
        assert_eq!(
            String::from_utf8(form).unwrap(),
            format!(
                "adid={}&revenue=x&ad%69d={}",
                p.pseudonym("A%zz"),
                p.pseudonym("B")
            )
        );
        let json = p.redact(Body::Json(br#"{"adid":"A","user_agent":"U","n":1}"#), &opts);
        assert_eq!(
            String::from_utf8(json).unwrap(),
            format!(r#"{{"adid":"{}","n":1}}"#, p.pseudonym("A"))
        );
        assert_eq!(p.redact(Body::Json(b"{adid"), &opts), WITHHELD.as_bytes());
    }

    #[test]
    fn source_ip_follows_ip_address() {
        let ip = "203.0.113.9".to_string();
        assert_eq!(privacy(&["adid"], &[]).source_ip(ip.clone()), ip);
        let p = privacy(&["ip_address"], &[]);
        assert_eq!(p.source_ip(ip.clone()), p.pseudonym(&ip));
        assert_eq!(privacy(&[], &["ip_address"]).source_ip(ip), "");
    }

    proptest::proptest! {
        /// Whatever surrounds them (repeats, damaged escapes, values that do not parse, a body),
        /// pseudonymized and dropped values never reach the encoded row in raw form.
        #[test]
        fn no_raw_value_reaches_the_row(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["adid", "user_agent", "idfa", "created_at", "revenue_float", "x", "ad%69d"]),
                    proptest::sample::select(vec!["SECRETA", "SECRETB%zz", "%zz", "abc", "1404214665", "{adid}", "%FF"]),
                ),
                0..12,
            ),
            in_body in proptest::bool::ANY,
        ) {
            let p = Privacy::new(Some(b"k"), &["adid".into(), "idfa".into()], &["user_agent".into(), "created_at".into()]).unwrap();
            let options = crate::row::Options { privacy: p, ..crate::row::Options::new() };
            // Secret values only under the configured keys (`ad%69d` is `adid`).
            let input = pairs
                .iter()
                .map(|(k, v)| {
                    let configured = ["adid", "ad%69d", "idfa", "user_agent", "created_at"].contains(k);
                    let v = if configured { v.to_string() } else { v.replace("SECRET", "plain").replace("1404214665", "7") };
                    format!("{k}={v}")
                })
                .collect::<Vec<_>>()
                .join("&");
            let (query, body) = if in_body { ("", input.as_str()) } else { (input.as_str(), "") };
            let built = crate::row::build(
                &crate::row::Received {
                    query: query.as_bytes(),
                    body: body.as_bytes(),
                    content_type: None,
                    trigger: "event",
                    source_ip: "10.0.0.1".parse().unwrap(),
                    received_at: 1_700_000_000,
                },
                &options,
            );
            let row = &built.row;
            proptest::prop_assert!(!contains(row, b"SECRET"), "{}", crate::row::to_json(row));
            proptest::prop_assert!(!contains(row, b"1404214665"), "{}", crate::row::to_json(row));
        }
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }
}
