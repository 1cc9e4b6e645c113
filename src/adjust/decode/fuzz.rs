//! Property tests: the decoder takes any bytes without panicking, keeps what it was sent, and
//! every row it produces reads back as the table's columns. 2000 cases each under `cargo test`;
//! `scripts/fuzz.sh` runs them longer (see [`crate::fuzzing`]).

use proptest::prelude::*;

use super::pairs::is_placeholder_literal;
use super::*;
use crate::fuzzing;
use crate::row;

/// Keys that hit every column type, plus unknown ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            CATALOG
                .iter()
                .map(|p| p.name.to_string())
                .collect::<Vec<_>>()
        ),
        "[a-z_]{1,12}",
        any::<String>(),
    ]
}

/// Values that parse, values that do not, encodings that are broken.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,12}",
        "-?[0-9]{1,5}\\.[0-9]{0,4}",
        "[01]",
        "\\{[a-z_|]{0,10}\\}",
        "%[0-9A-Fa-f]{2}[a-z%+]{0,6}",
        "%7B%22[a-z]{1,4}%22%3A%22[a-z]{0,4}%22%7D",
        any::<String>(),
    ]
}

fn query() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec((key(), value()), 0..40).prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes()
        }),
        proptest::collection::vec(any::<u8>(), 0..512),
    ]
}

fn body() -> impl Strategy<Value = (Option<&'static str>, Vec<u8>)> {
    prop_oneof![
        Just((None, Vec::new())),
        query().prop_map(|q| (Some("application/x-www-form-urlencoded"), q)),
        proptest::collection::vec((key(), value()), 0..10).prop_map(|pairs| {
            let map: serde_json::Map<String, serde_json::Value> = pairs
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            (
                Some("application/json"),
                serde_json::Value::Object(map).to_string().into_bytes(),
            )
        }),
        proptest::collection::vec(any::<u8>(), 0..256).prop_map(|b| (None, b)),
    ]
}

#[test]
fn any_input_decodes_encodes_and_reads_back() {
    let input = (query(), body(), "[a-z0-9_]{0,12}");
    fuzzing::check(
        "decode::any_input_decodes_encodes_and_reads_back",
        2000,
        input,
        |(q, (ct, b), trigger)| {
            let opts = DecodeOptions::new();
            let cb = decode(&q, Body::from_content_type(ct, &b), &trigger, &opts);
            let built = row::build(
                &row::Received {
                    query: &q,
                    body: &b,
                    content_type: ct,
                    trigger: &trigger,
                    source_ip: std::net::Ipv4Addr::LOCALHOST.into(),
                    received_at: 1_700_000_000,
                },
                &row::Options {
                    decode: opts.clone(),
                    ..Default::default()
                },
            );
            let (out, id) = (built.row, built.callback_id);
            prop_assert_eq!(id, crate::adjust::identity::callback_id(&cb));
            let read = row::read_row(&out);
            prop_assert!(read.is_ok(), "row unreadable: {:?}", read.err());
            prop_assert_eq!(read.unwrap().len(), row::columns().len());
            prop_assert_eq!(row::callback_id_of(&out), Some(id));
            // Nothing sent is lost: every pair of the query is in its column, or in `extra` as sent,
            // or was "not sent" (an empty value or an unreplaced `{placeholder}`).
            for (k, v) in crate::adjust::query::raw_pairs(&q) {
                let (k, _) = crate::adjust::query::decode_component(k);
                let (v, _) = crate::adjust::query::decode_component(v);
                if v.is_empty()
                    || (v.len() >= 2
                        && v.starts_with('{')
                        && v.ends_with('}')
                        && is_placeholder_literal(&v))
                {
                    continue;
                }
                let in_extra = cb.extra.iter().any(|(ek, ev)| *ek == k && *ev == v);
                let in_column = opts
                    .lookup(&k)
                    .is_some_and(|i| *cb.value(i) != Value::Absent);
                prop_assert!(in_extra || in_column, "pair {:?}={:?} lost", k, v);
            }
            Ok(())
        },
    );
}

#[test]
fn a_known_typed_value_round_trips() {
    let input = (0u32..=u32::MAX, any::<i64>(), 0u8..=1, -1e12f64..1e12);
    fuzzing::check(
        "decode::a_known_typed_value_round_trips",
        2000,
        input,
        |(secs, cents, flag, f)| {
            let q =
                format!("created_at={secs}&revenue={cents}&is_organic={flag}&revenue_float={f}");
            let cb = decode(q.as_bytes(), Body::None, "", &DecodeOptions::new());
            prop_assert_eq!(
                cb.value(index_of("created_at").unwrap()),
                &Value::Time(secs)
            );
            prop_assert_eq!(cb.value(index_of("revenue").unwrap()), &Value::Int(cents));
            prop_assert_eq!(
                cb.value(index_of("is_organic").unwrap()),
                &Value::Flag(flag)
            );
            prop_assert_eq!(
                cb.value(index_of("revenue_float").unwrap()),
                &Value::Float(f)
            );
            prop_assert!(cb.extra.is_empty());
            Ok(())
        },
    );
}
