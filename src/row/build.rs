//! The one way a callback becomes a row: decode, decide what raw input to keep, compute the
//! dedup key, encode. Pure (no I/O, no clock): the HTTP handler passes what it received and when,
//! and so do the tests, the benchmarks and the fuzz tests, so all of them build rows the same way.

use std::net::IpAddr;

use crate::adjust::decode::{Body, Callback, DecodeOptions, Problem, decode, decode_pairs};
use crate::adjust::{activity, identity};

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
}

impl Options {
    /// The defaults, with the built-in parameter aliases.
    pub fn new() -> Self {
        Options {
            decode: DecodeOptions::new(),
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
pub fn build(received: &Received<'_>, options: &Options) -> Built {
    let Received {
        query,
        body,
        content_type,
        trigger,
        source_ip,
        received_at,
    } = *received;
    let cb = decode(
        query,
        Body::from_content_type(content_type, body),
        trigger,
        &options.decode,
    );
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
    let source_ip = source_ip.to_string();
    finish(cb, received_at, &source_ip, INGEST_CALLBACK, raw)
}

/// Builds the row of one activity read from an export (`adjust-sink import`): `(placeholder,
/// value)` pairs already decoded (a CSV cell is not URL-encoded), typed exactly as a callback's
/// query pairs, with the same `callback_id`; `ingest_source` is `import`, `source_ip` empty.
/// `raw_query` keeps the pairs as a query string when decoding hit a problem.
pub fn build_pairs(pairs: &[(&str, &str)], received_at: u32, options: &Options) -> Built {
    let cb = decode_pairs(pairs.iter().copied(), &options.decode);
    let raw = cb.keeps_raw().then(|| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        s.finish()
    });
    finish(
        cb,
        received_at,
        "",
        INGEST_IMPORT,
        raw.as_deref().map(str::as_bytes),
    )
}

/// The common tail of every row: the dedup key and the encoding.
fn finish(
    cb: Callback<'_>,
    received_at: u32,
    source_ip: &str,
    ingest_source: &str,
    raw: Option<&[u8]>,
) -> Built {
    let callback_id = identity::callback_id(&cb);
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

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(im.callback_id, cb.callback_id);
        let (a, b) = (
            crate::row::read_row(&cb.row).unwrap(),
            crate::row::read_row(&im.row).unwrap(),
        );
        for ((col, x), (_, y)) in a.iter().zip(&b) {
            match col.name.as_str() {
                "source_ip" | "callback_trigger" => {}
                "ingest_source" => {
                    assert_eq!(x, &Cell::Str("callback".into()));
                    assert_eq!(y, &Cell::Str("import".into()));
                }
                _ => assert_eq!(x, y, "{}", col.name),
            }
        }
        let bad = build_pairs(&[("adid", "a"), ("created_at", "x y")], 0, &o);
        assert_eq!(raw_query_of(&bad.row), "adid=a&created_at=x+y");
    }

    #[test]
    fn the_row_carries_the_dedup_key() {
        let b = build(&received(b"nonce=n1&adid=a", b""), &Options::new());
        assert_eq!(crate::row::callback_id_of(&b.row), Some(b.callback_id));
    }
}
