use super::*;

fn dec(q: &str) -> Callback<'_> {
    decode(q.as_bytes(), Body::None, "", &DecodeOptions::new())
}

#[test]
fn typed_values_land_in_their_columns() {
    let cb = dec(
        "activity_kind=install&created_at=1404214665&is_organic=0&revenue_float=3.99\
                  &revenue=345&created_at_milli=1404214665123&tracker_name=Net%3A%3ACamp+1",
    );
    assert_eq!(cb.activity_kind(), "install");
    assert_eq!(
        *cb.value(index_of("created_at").unwrap()),
        Value::Time(1404214665)
    );
    assert_eq!(*cb.value(index_of("is_organic").unwrap()), Value::Flag(0));
    assert_eq!(
        *cb.value(index_of("revenue_float").unwrap()),
        Value::Float(3.99)
    );
    assert_eq!(*cb.value(index_of("revenue").unwrap()), Value::Int(345));
    assert_eq!(
        *cb.value(index_of("created_at_milli").unwrap()),
        Value::TimeMs(1404214665123)
    );
    assert_eq!(cb.get("tracker_name"), "Net::Camp 1");
    assert!(cb.extra.is_empty());
    assert!(cb.problems.is_empty());
}

#[test]
fn absent_empty_and_unreplaced_mean_not_sent() {
    let cb = dec("adid=&idfa=%7Bidfa%7D&gps_adid={gps_adid}&created_at={created_at}");
    for name in ["adid", "idfa", "gps_adid", "created_at"] {
        assert_eq!(*cb.value(index_of(name).unwrap()), Value::Absent, "{name}");
    }
    assert!(cb.extra.is_empty());
    assert!(!cb.keeps_raw());
    assert_eq!(cb.problems.len(), 3);
    assert!(
        cb.problems
            .iter()
            .all(|p| p.kind == ProblemKind::UnreplacedPlaceholder)
    );
}

#[test]
fn unparsable_value_is_null_and_kept_in_extra() {
    let cb = dec("revenue_float=abc&created_at=yesterday");
    assert_eq!(*cb.value(index_of("revenue_float").unwrap()), Value::Absent);
    assert_eq!(*cb.value(index_of("created_at").unwrap()), Value::Absent);
    assert_eq!(
        cb.extra,
        vec![
            ("revenue_float".into(), "abc".into()),
            ("created_at".into(), "yesterday".into())
        ]
    );
    let kinds: Vec<_> = cb.problems.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, vec![ProblemKind::BadNumber, ProblemKind::BadTime]);
    assert!(cb.keeps_raw());
}

#[test]
fn unknown_keys_and_repeats_go_to_extra() {
    let cb = dec("user_id=42&adid=first&adid=second&user_id=43");
    assert_eq!(cb.get("adid"), "first");
    assert_eq!(
        cb.extra,
        vec![
            ("user_id".into(), "42".into()),
            ("adid".into(), "second".into()),
            ("user_id".into(), "43".into()),
        ]
    );
    assert_eq!(cb.problems[0].kind, ProblemKind::DuplicateKey);
}

#[test]
fn trigger_is_the_kind_when_none_is_sent() {
    let cb = decode(b"event=f0ob4r", Body::None, "event", &DecodeOptions::new());
    assert_eq!(cb.activity_kind(), "event");
    let cb = decode(
        b"activity_kind=session",
        Body::None,
        "event",
        &DecodeOptions::new(),
    );
    assert_eq!(cb.activity_kind(), "session");
}

#[test]
fn unknown_kind_is_kept_and_flagged() {
    let cb = dec("activity_kind=hologram_view");
    assert_eq!(cb.activity_kind(), "hologram_view");
    assert_eq!(cb.problems[0].kind, ProblemKind::UnknownActivityKind);
}

#[test]
fn tracker_name_parts_fill_missing_names() {
    let cb = dec(
        "tracker_name=Facebook+Installs%3A%3ASpring+(123)%3A%3AAds%3A%3Abanner&campaign_name=Given",
    );
    assert_eq!(cb.get("network_name"), "Facebook Installs");
    assert_eq!(cb.get("campaign_name"), "Given");
    assert_eq!(cb.get("adgroup_name"), "Ads");
    assert_eq!(cb.get("creative_name"), "banner");
}

#[test]
fn damaged_encoding_is_decoded_lossily_and_flagged() {
    let cb = dec("city=K%F6ln&label=100%");
    assert_eq!(cb.get("city"), "K\u{FFFD}ln");
    assert_eq!(cb.get("label"), "100%");
    assert!(cb.keeps_raw());
}

#[test]
fn json_and_form_bodies_decode_like_queries() {
    let opts = DecodeOptions::new();
    let json = br#"{"activity_kind":"event","revenue_float":1.5,"session_count":3,"user_id":"u1"}"#;
    let cb = decode(b"", Body::Json(json), "", &opts);
    assert_eq!(cb.activity_kind(), "event");
    assert_eq!(
        *cb.value(index_of("revenue_float").unwrap()),
        Value::Float(1.5)
    );
    assert_eq!(*cb.value(index_of("session_count").unwrap()), Value::Int(3));
    assert_eq!(cb.extra, vec![("user_id".into(), "u1".into())]);
    let cb = decode(
        b"adid=abc",
        Body::Form(b"country=de&city=K%C3%B6ln"),
        "",
        &opts,
    );
    assert_eq!(cb.get("adid"), "abc");
    assert_eq!(cb.get("city"), "Köln");
    let cb = decode(b"", Body::Json(b"not json"), "", &opts);
    assert_eq!(cb.problems[0].kind, ProblemKind::BadBody);
    assert!(cb.keeps_raw());
}

#[test]
fn a_key_sent_twice_in_a_json_body_is_kept_as_in_a_query() {
    let opts = DecodeOptions::new();
    let json = br#"{"activity_kind":"install","adid":"first","label":"a","adid":"second"}"#;
    let from_json = decode(b"", Body::Json(json), "", &opts);
    let from_query = dec("activity_kind=install&adid=first&label=a&adid=second");
    for cb in [&from_json, &from_query] {
        assert_eq!(cb.get("adid"), "first");
        assert_eq!(cb.extra, vec![("adid".into(), "second".into())]);
        assert_eq!(cb.problems[0].kind, ProblemKind::DuplicateKey);
    }
    // Arrays and scalars are not callbacks.
    for body in [&b"[1,2]"[..], b"\"adid\"", b"3"] {
        let cb = decode(b"", Body::Json(body), "", &opts);
        assert_eq!(cb.problems[0].kind, ProblemKind::BadBody);
    }
}

#[test]
fn a_json_body_that_is_not_utf8_is_decoded_lossily_and_flagged() {
    let opts = DecodeOptions::new();
    let json = b"{\"activity_kind\":\"install\",\"city\":\"K\xf6ln\",\"session_count\":3}";
    let cb = decode(b"", Body::Json(json), "", &opts);
    assert_eq!(cb.activity_kind(), "install");
    assert_eq!(cb.get("city"), "K\u{FFFD}ln");
    assert_eq!(*cb.value(index_of("session_count").unwrap()), Value::Int(3));
    assert_eq!(cb.problems[0].kind, ProblemKind::BadUtf8);
    assert!(cb.keeps_raw());
    // Not JSON whatever its bytes: nothing typed, the body kept.
    let cb = decode(b"", Body::Json(b"{\"city\":\"K\xf6ln\""), "", &opts);
    assert_eq!(cb.problems[0].kind, ProblemKind::BadBody);
    assert_eq!(cb.get("city"), "");
}

#[test]
fn structured_values_are_parsed_and_checked() {
    let cb = dec("publisher_parameters=%7B%22a%22%3A%221%22%7D&sk_payload=%7Bbroken");
    match cb.value(index_of("publisher_parameters").unwrap()) {
        Value::Params(p) => {
            let (raw, pairs) = &**p;
            assert_eq!(raw, r#"{"a":"1"}"#);
            assert_eq!(pairs, &vec![("a".to_string(), "1".to_string())]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(cb.get("sk_payload"), "{broken");
    assert_eq!(cb.problems[0].kind, ProblemKind::BadJson);
}

#[test]
fn aliases_map_custom_keys() {
    let opts = DecodeOptions::new()
        .with_alias("device_id", "adid")
        .unwrap();
    let cb = decode(b"device_id=abc", Body::None, "", &opts);
    assert_eq!(cb.get("adid"), "abc");
    assert!(DecodeOptions::new().with_alias("x", "nope").is_err());
    assert!(DecodeOptions::new().with_alias("idfa", "adid").is_err());
}

#[test]
fn content_type_picks_the_body_kind() {
    assert!(matches!(
        Body::from_content_type(Some("application/json; charset=utf-8"), b"{}"),
        Body::Json(_)
    ));
    assert!(matches!(
        Body::from_content_type(None, b"  {\"a\":1}"),
        Body::Json(_)
    ));
    assert!(matches!(
        Body::from_content_type(Some("text/plain"), b"a=1"),
        Body::Form(_)
    ));
    assert!(matches!(
        Body::from_content_type(Some("application/json"), b""),
        Body::None
    ));
}

#[test]
fn a_one_part_tracker_name_is_the_network_and_link_name_works_too() {
    let cb = dec("tracker_name=Organic");
    assert_eq!(cb.get("network_name"), "Organic");
    assert_eq!(cb.get("campaign_name"), "");
    let cb = dec("link_name=Net%3A%3ACamp");
    assert_eq!(cb.get("network_name"), "Net");
    assert_eq!(cb.get("campaign_name"), "Camp");
}

#[test]
fn skan_4_fields_come_from_the_payload_unless_sent() {
    let payload = r#"{"version":"4.0","ad-network-id":"x.skadnetwork","source-identifier":"5239","source-app-id":"", "source-domain":"example.com","transaction-id":"t-1","redownload":true,"fidelity-type":1,"coarse-conversion-value":"high","postback-sequence-index":2,"did-win":false,"conversion-value":"bad"}"#;
    let enc: String = url::form_urlencoded::byte_serialize(payload.as_bytes()).collect();
    let q = format!("activity_kind=sk_install&sk_payload={enc}");
    let cb = dec(&q);
    assert_eq!(cb.get("sk_source_identifier"), "5239");
    assert_eq!(cb.get("sk_source_domain"), "example.com");
    assert_eq!(cb.get("sk_source_app_id"), "");
    assert_eq!(cb.get("sk_version"), "4.0");
    assert_eq!(cb.get("sk_transaction_id"), "t-1");
    assert_eq!(cb.get("sk_coarse_conversion_value"), "high");
    let v = |n: &str| cb.value(index_of(n).unwrap()).clone();
    assert_eq!(v("sk_postback_sequence_index"), Value::Int(2));
    assert_eq!(v("sk_redownload"), Value::Flag(1));
    assert_eq!(v("sk_did_win"), Value::Flag(0));
    assert_eq!(v("sk_fidelity_type"), Value::Flag(1));
    assert_eq!(v("sk_conversion_value"), Value::Absent, "does not type");
    assert!(cb.problems.is_empty(), "{:?}", cb.problems);

    let sent = format!("{q}&sk_source_identifier=17&sk_postback_sequence_index=0");
    let cb = dec(&sent);
    assert_eq!(cb.get("sk_source_identifier"), "17");
    assert_eq!(
        cb.value(index_of("sk_postback_sequence_index").unwrap()),
        &Value::Int(0)
    );
    assert_eq!(cb.get("sk_source_domain"), "example.com");
}

#[test]
fn keys_with_a_column_of_their_own_are_typed_and_leave_extra() {
    let opts = DecodeOptions::new()
        .with_column(CustomColumn::parse("loyalty_tier:lowcard").unwrap())
        .with_column(CustomColumn::parse(" ltv_cents : int ").unwrap());
    let q = b"adid=a&loyalty_tier=gold&ltv_cents=1234&user_id=7";
    let cb = decode(q, Body::None, "", &opts);
    assert_eq!(
        cb.custom,
        vec![
            ("loyalty_tier", Value::Text("gold".into())),
            ("ltv_cents", Value::Int(1234))
        ]
    );
    assert_eq!(cb.extra, vec![("user_id".into(), "7".into())]);
    let bad = decode(b"ltv_cents=lots&ltv_cents=5", Body::None, "", &opts);
    // As for a placeholder: the value that does not parse stays in `extra`, the next one lands.
    assert_eq!(bad.custom, vec![("ltv_cents", Value::Int(5))]);
    assert_eq!(bad.extra, vec![("ltv_cents".into(), "lots".into())]);
    assert_eq!(bad.problems[0].kind, ProblemKind::BadNumber);
    let without = decode(q, Body::None, "", &DecodeOptions::new());
    assert_eq!(without.extra.len(), 3);
    for bad in ["adid:string", "x", "a:decimal", "Tier:int"] {
        assert!(CustomColumn::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn escaped_values_share_one_buffer_and_follow_every_rule() {
    let opts = DecodeOptions::new().with_column(CustomColumn::parse("tier:int").unwrap());
    let q = "app_name=My+App&revenue_float=3%2E5&city=K%C3%B6ln&city=Bonn%21&att_status=x%31\
             &user_note=a%26b&tier=%34%32&created_at=%7Bcreated_at%7D&os_name=%FF";
    let cb = decode(q.as_bytes(), Body::None, "", &opts);
    let at = |n: &str| cb.value(index_of(n).unwrap()).clone();
    assert!(matches!(at("app_name"), Value::Part(DECODED, ..)));
    assert_eq!(cb.get("app_name"), "My App");
    assert_eq!(at("revenue_float"), Value::Float(3.5));
    assert_eq!(cb.get("city"), "Köln");
    assert_eq!(cb.get("os_name"), "\u{FFFD}");
    // Did not parse, repeated, unknown: the decoded text in `extra`.
    let extra: Vec<(&str, &str)> = cb.extra.iter().map(|(k, v)| (&**k, &**v)).collect();
    assert!(extra.contains(&("att_status", "x1")), "{extra:?}");
    assert!(extra.contains(&("city", "Bonn!")), "{extra:?}");
    assert!(extra.contains(&("user_note", "a&b")), "{extra:?}");
    assert_eq!(at("att_status"), Value::Absent);
    assert_eq!(cb.custom, vec![("tier", Value::Int(42))]);
    // An unreplaced placeholder, even escaped, is "not sent".
    assert_eq!(at("created_at"), Value::Absent);
    let kinds: Vec<ProblemKind> = cb.problems.iter().map(|p| p.kind).collect();
    for kind in [
        ProblemKind::BadNumber,
        ProblemKind::DuplicateKey,
        ProblemKind::UnreplacedPlaceholder,
        ProblemKind::BadUtf8,
    ] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
}
