//! The one way a callback becomes a row: decode, decide what raw input to keep, compute the
//! dedup key, encode. Pure (no I/O, no clock): the HTTP handler passes what it received and when,
//! and so do the tests, the benchmarks and the fuzz tests, so all of them build rows the same way.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::adjust::decode::{Body, Callback, DecodeOptions, Problem, decode, decode_pairs};
use crate::adjust::{activity, identity};

use super::privacy::Privacy;
use super::{INGEST_CALLBACK, INGEST_IMPORT, Meta, encode};

/// One callback as received.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The query string, without the `?`.
    pub query: &'a [u8],
    /// The request body (empty for a GET).
    pub body: &'a [u8],
    /// The `Content-Type` header, which says how to read the body (sniffed when absent).
    pub content_type: Option<&'a str>,
    /// The single-activity trigger from the path, `""` for the global callback.
    pub trigger: &'a str,
    /// The client, after trusted-proxy resolution.
    pub source_ip: IpAddr,
    /// Unix seconds when the callback was received.
    pub received_at: u32,
}

/// Settings that shape every row.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub decode: DecodeOptions,
    /// `--pseudonymize` / `--drop`.
    pub privacy: Privacy,
}

impl Options {
    /// The defaults, with the built-in parameter aliases.
    pub fn new() -> Self {
        Options {
            decode: DecodeOptions::new(),
            privacy: Privacy::default(),
        }
    }
}

/// A callback turned into its row.
#[derive(Debug, Clone)]
pub struct Built {
    /// The RowBinary row, ready for the queue.
    pub row: Vec<u8>,
    pub callback_id: u64,
    /// The activity kind as a bounded metric label ([`activity::label`]).
    pub activity: &'static str,
    /// What decoding found wrong; the row is complete all the same.
    pub problems: Vec<Problem>,
}

/// Builds the row of one callback.
///
/// `raw_query` keeps the raw input only when decoding hit a problem that loses information
/// ([`crate::adjust::ProblemKind::keeps_raw`]): the query, the body, or both joined by a newline.
///
/// With privacy settings ([`Privacy`]), pseudonymized values are replaced first, then
/// `callback_id` is computed (from the stored forms, so the copies of one activity still collapse,
/// and nothing without privacy settings changes), then dropped values are removed (after the id,
/// so two devices that differ only in a dropped identifier do not collapse); `raw_query` is
/// rebuilt with every configured value in its stored form.
pub fn build(received: &Received<'_>, options: &Options) -> Built {
    let Received {
        query,
        body,
        content_type,
        trigger,
        source_ip,
        received_at,
    } = *received;
    let parsed_body = Body::from_content_type(content_type, body);
    let mut cb = decode(query, parsed_body, trigger, &options.decode);
    let privacy = &options.privacy;
    let redacted;
    let (query, body) = if privacy.is_active() {
        privacy.pseudonymize(&mut cb, &options.decode);
        redacted = cb.keeps_raw().then(|| {
            (
                privacy.redact(Body::Form(query), &options.decode),
                privacy.redact(parsed_body, &options.decode),
            )
        });
        match &redacted {
            Some((q, b)) => (&q[..], &b[..]),
            None => (&b""[..], &b""[..]),
        }
    } else {
        (query, body)
    };
    let joined;
    let raw = if !cb.keeps_raw() {
        None
    } else if body.is_empty() {
        Some(query)
    } else if query.is_empty() {
        Some(body)
    } else {
        joined = [query, b"\n", body].concat();
        Some(&joined[..])
    };
    finish(
        cb,
        received_at,
        Some(source_ip),
        INGEST_CALLBACK,
        raw,
        options,
    )
}

/// Builds the row of one activity read from an export (`adjust-sink import`): `(placeholder,
/// value)` pairs already decoded (a CSV cell is not URL-encoded), typed exactly as a callback's
/// query pairs, with the same `callback_id` and the same privacy settings; `ingest_source` is
/// `import`, `source_ip` empty. A value that is not UTF-8 is read with U+FFFD in place of its
/// invalid bytes, as a callback's is. `raw_query` keeps the pairs as a query string, the original
/// bytes percent-encoded (redacted like a callback's), when decoding hit a problem or a value was
/// not UTF-8.
pub fn build_pairs<V: AsRef<[u8]>>(
    pairs: &[(&str, V)],
    received_at: u32,
    options: &Options,
) -> Built {
    let values: Vec<Cow<'_, str>> = pairs
        .iter()
        .map(|(_, v)| String::from_utf8_lossy(v.as_ref()))
        .collect();
    let replaced = values.iter().any(|v| matches!(v, Cow::Owned(_)));
    let mut cb = decode_pairs(
        pairs
            .iter()
            .zip(&values)
            .map(|((k, _), v)| (*k, v.as_ref())),
        &options.decode,
    );
    let privacy = &options.privacy;
    if privacy.is_active() {
        privacy.pseudonymize(&mut cb, &options.decode);
    }
    let raw = (cb.keeps_raw() || replaced).then(|| {
        let mut query = String::new();
        for (k, v) in pairs {
            if !query.is_empty() {
                query.push('&');
            }
            query.extend(url::form_urlencoded::byte_serialize(k.as_bytes()));
            query.push('=');
            query.extend(url::form_urlencoded::byte_serialize(v.as_ref()));
        }
        if privacy.is_active() {
            privacy.redact(Body::Form(query.as_bytes()), &options.decode)
        } else {
            query.into_bytes()
        }
    });
    finish(
        cb,
        received_at,
        None,
        INGEST_IMPORT,
        raw.as_deref(),
        options,
    )
}

/// The common tail of every row: the dedup key, the values dropped by configuration, the
/// client's address in its stored form, and the encoding.
fn finish(
    mut cb: Callback<'_>,
    received_at: u32,
    source_ip: Option<IpAddr>,
    ingest_source: &str,
    raw: Option<&[u8]>,
    options: &Options,
) -> Built {
    let privacy = &options.privacy;
    let callback_id = identity::callback_id(&cb);
    if privacy.is_active() {
        privacy.drop_values(&mut cb, &options.decode);
    }
    let mut ip_text = [0u8; 39];
    let private_ip;
    let source_ip = match source_ip {
        None => "",
        Some(ip) if privacy.is_active() => {
            private_ip = privacy.source_ip(ip_str(ip, &mut ip_text).to_string());
            private_ip.as_str()
        }
        Some(ip) => ip_str(ip, &mut ip_text),
    };
    let meta = Meta {
        received_at,
        callback_id,
        source_ip,
        ingest_source,
        raw,
    };
    let mut row = Vec::with_capacity(raw.map_or(0, <[u8]>::len) + 2048);
    encode(&cb, &meta, &mut row);
    Built {
        row,
        callback_id,
        activity: activity::label(cb.activity_kind()),
        problems: cb.problems,
    }
}

/// The text of an address: IPv4 written by hand into `buf` (the usual case, and `Display` costs
/// more than the rest of the row's sink columns), IPv6 through `Display`.
fn ip_str(ip: IpAddr, buf: &mut [u8; 39]) -> &str {
    match ip {
        IpAddr::V4(v4) => {
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                let mut n = itoa::Buffer::new();
                let digits = n.format(octet).as_bytes();
                buf[len..len + digits.len()].copy_from_slice(digits);
                len += digits.len();
            }
            std::str::from_utf8(&buf[..len]).unwrap_or_default()
        }
        IpAddr::V6(v6) => {
            use std::io::Write as _;
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            let _ = write!(cursor, "{v6}");
            let len = cursor.position() as usize;
            std::str::from_utf8(&buf[..len]).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adjust::decode::DecodeOptions;
    use crate::row::rowbinary::Cell;

    fn raw_query_of(row: &[u8]) -> String {
        match crate::row::read_row(row).unwrap().pop() {
            Some((c, Cell::Str(s))) if c.name == "raw_query" => s,
            other => panic!("raw_query is not the last string: {other:?}"),
        }
    }

    fn received<'a>(query: &'a [u8], body: &'a [u8]) -> Received<'a> {
        Received {
            query,
            body,
            content_type: None,
            trigger: "install",
            source_ip: "178.162.216.70".parse().unwrap(),
            received_at: 1_700_000_000,
        }
    }

    #[test]
    fn raw_input_is_kept_only_when_decoding_lost_something() {
        let o = Options::new();
        let clean = build(&received(b"adid=a&created_at=1404214665", b""), &o);
        assert!(clean.problems.is_empty());
        assert_eq!(raw_query_of(&clean.row), "");
        assert_eq!(clean.activity, "install");

        let bad = build(&received(b"adid=a&revenue_float=abc", b""), &o);
        assert_eq!(raw_query_of(&bad.row), "adid=a&revenue_float=abc");

        let body_only = build(&received(b"", b"adid=a&created_at=x"), &o);
        assert_eq!(raw_query_of(&body_only.row), "adid=a&created_at=x");

        let both = build(&received(b"adid=a", b"created_at=x"), &o);
        assert_eq!(raw_query_of(&both.row), "adid=a\ncreated_at=x");
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "178.162.216.70",
            "255.255.255.255",
            "10.0.10.1",
            "2a0b:14c0::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:1.2.3.4",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut buf = [0u8; 39];
            assert_eq!(ip_str(ip, &mut buf), ip.to_string());
        }
    }

    /// Asserts that a callback's row and an exported activity's have the same `callback_id` and
    /// the same cells but for where they came from (`source_ip`, `callback_trigger`,
    /// `ingest_source`); returns both rows' cells by column name.
    fn same_but_for_the_source(
        callback: &Built,
        imported: &Built,
    ) -> (
        std::collections::HashMap<String, Cell>,
        std::collections::HashMap<String, Cell>,
    ) {
        assert_eq!(imported.callback_id, callback.callback_id);
        let by_name = |row: &[u8]| -> std::collections::HashMap<String, Cell> {
            let cells = crate::row::read_row(row).unwrap().into_iter();
            cells.map(|(col, cell)| (col.name, cell)).collect()
        };
        let (a, b) = (by_name(&callback.row), by_name(&imported.row));
        assert_eq!(a.len(), b.len());
        for (name, x) in &a {
            if !matches!(
                name.as_str(),
                "source_ip" | "callback_trigger" | "ingest_source"
            ) {
                assert_eq!(Some(x), b.get(name), "{name}");
            }
        }
        (a, b)
    }

    #[test]
    fn an_exported_row_is_the_callback_s_row_but_for_its_source() {
        let o = Options::new();
        let q = b"activity_kind=install&adid=a&created_at=1404214665&city=S%C3%A3o%2C+%22P%22";
        let cb = build(&received(q, b""), &o);
        let pairs = [
            ("city", "São, \"P\""),
            ("created_at", "1404214665"),
            ("adid", "a"),
            ("activity_kind", "install"),
        ];
        let im = build_pairs(&pairs, 1_700_000_000, &o);
        let (a, b) = same_but_for_the_source(&cb, &im);
        assert_eq!(a["ingest_source"], Cell::Str("callback".into()));
        assert_eq!(b["ingest_source"], Cell::Str("import".into()));
        let bad = build_pairs(&[("adid", "a"), ("created_at", "x y")], 0, &o);
        assert_eq!(raw_query_of(&bad.row), "adid=a&created_at=x+y");
    }

    #[test]
    fn an_exported_value_that_is_not_utf8_is_read_as_a_callback_s_and_kept_raw() {
        let o = Options::new();
        let cb = build(
            &received(
                b"activity_kind=install&adid=ab%FFcd&nonce=n1&created_at=1404214665",
                b"",
            ),
            &o,
        );
        let pairs: [(&str, &[u8]); 4] = [
            ("activity_kind", b"install"),
            ("adid", b"ab\xffcd"),
            ("nonce", b"n1"),
            ("created_at", b"1404214665"),
        ];
        let im = build_pairs(&pairs, 1_700_000_000, &o);
        let (_, b) = same_but_for_the_source(&cb, &im);
        assert_eq!(b["adid"], Cell::Str("ab\u{fffd}cd".into()));
        // The original bytes, as the callback's query had them.
        assert_eq!(
            raw_query_of(&im.row),
            "activity_kind=install&adid=ab%FFcd&nonce=n1&created_at=1404214665"
        );
    }

    #[test]
    fn the_row_carries_the_dedup_key() {
        let b = build(&received(b"nonce=n1&adid=a", b""), &Options::new());
        assert_eq!(crate::row::callback_id_of(&b.row), Some(b.callback_id));
    }

    fn private() -> Options {
        Options {
            privacy: Privacy::new(
                Some(b"k"),
                &["adid".into(), "ip_address".into()],
                &["user_agent".into()],
            )
            .unwrap(),
            ..Options::new()
        }
    }

    #[test]
    fn privacy_settings_keep_callback_ids_collapsing() {
        let global = b"activity_kind=event&adid=a1&created_at=100&event=tok&user_agent=x";
        let single = b"activity_kind=event&adid=a1&created_at=100&event=tok&ip_address=1.2.3.4";
        let plain = build(&received(global, b""), &Options::new());
        let (g, s) = (
            build(&received(global, b""), &private()),
            build(&received(single, b""), &private()),
        );
        assert_eq!(g.callback_id, s.callback_id);
        // Without settings the id is what it always was: the identity of the raw values.
        let cb = decode(global, Body::None, "install", &DecodeOptions::new());
        assert_eq!(plain.callback_id, identity::callback_id(&cb));
        // Two devices differing only in a pseudonymized id stay apart.
        let other = build(
            &received(b"activity_kind=event&adid=a2&created_at=100&event=tok", b""),
            &private(),
        );
        assert_ne!(g.callback_id, other.callback_id);
    }

    #[test]
    fn raw_query_keeps_no_raw_identifier() {
        let o = private();
        let b = build(
            &received(
                b"adid=RAW1&user_agent=UA&revenue_float=abc",
                b"ip_address=9.9.9.9",
            ),
            &o,
        );
        let raw = raw_query_of(&b.row);
        assert_eq!(
            raw,
            format!(
                "adid={}&revenue_float=abc\nip_address={}",
                o.privacy.pseudonym("RAW1"),
                o.privacy.pseudonym("9.9.9.9")
            )
        );
        let json = crate::row::to_json(&b.row);
        for secret in ["RAW1", "UA", "9.9.9.9", "178.162.216.70"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
        assert!(
            json.contains(&o.privacy.pseudonym("178.162.216.70")),
            "{json}"
        );
    }
}
