//! Receiving callbacks: typing, triggers, extra keys, bad values, allowlist, proxies, POST
//! bodies, large requests, concurrency, metrics.

use std::time::Duration;

use crate::support::{Db, Sink, blast};

const WAIT: Duration = Duration::from_secs(20);

/// A global install callback as Adjust sends it, with ~40 placeholders.
const INSTALL: &str = "activity_kind=install&app_id=com.example.game&app_name=Example+Game&app_token=4w565xzmb54d\
&app_version=5.13.1&store=google&environment=production&sdk_version=android4.33.0&created_at=1404214665\
&created_at_milli=1404214665123&installed_at=1404214634&click_time=1404214600&impression_time=1404214500\
&tracker=abc123&tracker_name=Network1%3A%3AChristmas%3A%3AReindeers%3A%3A320x70_en&is_organic=0\
&match_type=google&adid=18546f6171f67e29d1cb983322ad1329&gps_adid=38400000-8cf0-11bd-b23e-10b96e40000d\
&android_id=9774d56d682e549c&os_name=android&os_version=13&device_name=SM-G313HZ&device_type=phone\
&ip_address=203.0.113.7&user_agent=Mozilla%2F5.0+%28Linux%3B+Android+13%29&country=de&region=BE&city=Berlin\
&language=de&timezone=UTC%2B0100&tracking_enabled=1&att_status=-1&nonce=f1b9c2e0&label=spring+sale\
&deeplink=myapp%3A%2F%2Fproduct%3Fid%3D650&revenue=345&revenue_float=3.45&currency=EUR&reporting_revenue=3.71\
&reporting_currency=USD&user_id=42";

#[tokio::test(flavor = "multi_thread")]
async fn a_global_install_lands_with_every_value_typed() {
    let db = Db::fresh("install_typed").await;
    let sink = Sink::start(&db, &[]).await;
    assert_eq!(sink.get(&format!("/adjust?{INSTALL}")).await.status(), 200);
    assert_eq!(db.wait_rows(1, WAIT).await, 1);
    let expect = [
        ("activity_kind", "install"),
        ("callback_trigger", ""),
        ("app_id", "com.example.game"),
        ("app_name", "Example Game"),
        ("app_token", "4w565xzmb54d"),
        ("store", "google"),
        ("environment", "production"),
        ("sdk_version", "android4.33.0"),
        ("created_at", "2014-07-01 11:37:45"),
        ("created_at_milli", "1404214665123"),
        ("installed_at", "2014-07-01 11:37:14"),
        ("click_time", "2014-07-01 11:36:40"),
        ("impression_time", "2014-07-01 11:35:00"),
        ("tracker", "abc123"),
        ("tracker_name", "Network1::Christmas::Reindeers::320x70_en"),
        ("network_name", "Network1"),
        ("campaign_name", "Christmas"),
        ("adgroup_name", "Reindeers"),
        ("creative_name", "320x70_en"),
        ("is_organic", "0"),
        ("adid", "18546f6171f67e29d1cb983322ad1329"),
        ("gps_adid", "38400000-8cf0-11bd-b23e-10b96e40000d"),
        ("user_agent", "Mozilla/5.0 (Linux; Android 13)"),
        ("timezone", "UTC+0100"),
        ("tracking_enabled", "1"),
        ("att_status", "-1"),
        ("label", "spring sale"),
        ("deeplink", "myapp://product?id=650"),
        ("revenue", "345"),
        ("revenue_float", "3.45"),
        ("reporting_revenue", "3.71"),
        ("source_ip", "127.0.0.1"),
        ("event_date", "2014-07-01"),
        ("raw_query", ""),
        ("extra.key", "['user_id']"),
        ("extra.value", "['42']"),
    ];
    let cols: Vec<&str> = expect.iter().map(|(c, _)| *c).collect();
    let row = db.row_where(&cols, "1").await;
    let mut wrong = Vec::new();
    for (col, want) in expect {
        let got = row[col].as_str().unwrap_or("NULL");
        if got != want {
            wrong.push(format!("{col}: expected {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Not sent: NULL for typed columns, '' for strings.
    let missing = db
        .row_where(&["reattributed_at", "idfa", "revenue_usd"], "1")
        .await;
    assert_eq!(missing["reattributed_at"], serde_json::Value::Null);
    assert_eq!(missing["revenue_usd"], serde_json::Value::Null);
    assert_eq!(missing["idfa"], "");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_activity_event_lands_with_its_trigger() {
    let db = Db::fresh("event_trigger").await;
    let sink = Sink::start(&db, &[]).await;
    let resp = sink.get("/adjust/event?event=f0ob4r&event_name=purchase&adid=aa&created_at=1700000000&revenue_float=0.99").await;
    assert_eq!(resp.status(), 200);
    db.wait_rows(1, WAIT).await;
    let row = db
        .row_where(
            &[
                "callback_trigger",
                "activity_kind",
                "event",
                "revenue_float",
            ],
            "1",
        )
        .await;
    assert_eq!(row["callback_trigger"], "event");
    assert_eq!(row["activity_kind"], "event");
    assert_eq!(row["event"], "f0ob4r");
    assert_eq!(row["revenue_float"], "0.99");
    // A trigger outside [a-z0-9_]+ is a wrong URL, not content.
    assert_eq!(sink.get("/adjust/Bad-Trigger?x=1").await.status(), 404);
    // Another method on a callback path (a HEAD probe, say) is told which two it takes, and
    // stores nothing: once a later callback has landed, the table holds the two GETs only.
    for method in [
        reqwest::Method::HEAD,
        reqwest::Method::PUT,
        reqwest::Method::OPTIONS,
    ] {
        for path in [
            "/adjust?activity_kind=install",
            "/adjust/event?event=f0ob4r",
        ] {
            let resp = sink.request(method.clone(), path).await;
            assert_eq!(resp.status(), 405, "{method} {path}");
            assert_eq!(resp.headers()["allow"], "GET, POST", "{method} {path}");
        }
    }
    let marker = "/adjust/event?event=f0ob4r&adid=bb&created_at=1700000001&nonce=marker";
    assert_eq!(sink.get(marker).await.status(), 200);
    assert_eq!(db.wait_rows(2, WAIT).await, 2);
    // A URL pasted with a trailing slash is the same path (a 404 would never be retried).
    for path in [
        "/adjust/?activity_kind=install&adid=cc&nonce=slash-global",
        "/adjust/event/?event=f0ob4r&adid=dd&nonce=slash-trigger",
    ] {
        assert_eq!(sink.get(path).await.status(), 200, "{path}");
    }
    assert_eq!(db.wait_rows(4, WAIT).await, 4);
    let triggers = db
        .query(&format!(
            "SELECT nonce, callback_trigger FROM {} WHERE nonce LIKE 'slash-%' ORDER BY nonce",
            db.table()
        ))
        .await;
    assert_eq!(triggers, "slash-global\t\nslash-trigger\tevent\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_keys_and_bad_values_are_kept() {
    let db = Db::fresh("extra_bad").await;
    let sink = Sink::start(&db, &[]).await;
    let q = "/adjust?activity_kind=event&adid=bb&created_at=1700000000&revenue_float=abc&my_param=x%20y&idfa={idfa}";
    assert_eq!(sink.get(q).await.status(), 200);
    db.wait_rows(1, WAIT).await;
    let row = db
        .row_where(
            &[
                "revenue_float",
                "extra.key",
                "extra.value",
                "idfa",
                "raw_query",
            ],
            "adid = 'bb'",
        )
        .await;
    assert_eq!(row["revenue_float"], serde_json::Value::Null);
    assert_eq!(row["extra.key"], "['revenue_float','my_param']");
    assert_eq!(row["extra.value"], "['abc','x y']");
    assert_eq!(row["idfa"], "", "an unreplaced {{idfa}} means not sent");
    assert_eq!(row["raw_query"], q.trim_start_matches("/adjust?"));
    assert_eq!(
        sink.metric("adjust_sink_decode_problems_total{kind=\"bad_number\"}")
            .await,
        1.0
    );
    assert_eq!(
        sink.metric("adjust_sink_decode_problems_total{kind=\"unreplaced_placeholder\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_outside_the_allowlist_is_closed_at_accept_and_nothing_lands() {
    let db = Db::fresh("forbidden").await;
    // Only 10.9.9.9 is allowed: the test client (127.0.0.1) is not, and is no trusted proxy.
    let sink = Sink::start_allowing(&db, "10.9.9.9/32", &[]).await;
    for path in [
        "/adjust?activity_kind=install&adid=cc",
        "/adjust/install?adid=cc",
    ] {
        let sent = sink.client().get(sink.url(path)).send().await;
        assert!(
            sent.is_err(),
            "{path}: answered {:?}",
            sent.map(|r| r.status())
        );
    }
    assert!(
        sink.metric("adjust_sink_connections_refused_total{reason=\"outside\"}")
            .await
            >= 2.0
    );
    assert_eq!(
        sink.metric("adjust_sink_requests_total{outcome=\"forbidden\",route=\"global\"}")
            .await,
        0.0,
        "no request was read"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(db.rows().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let db = Db::fresh("proxy").await;
    // Behind a trusted proxy (the test client plays the proxy): the X-Forwarded-For client is
    // checked against the allowlist (Adjust's ranges only).
    let sink = Sink::start_allowing(
        &db,
        "178.162.216.64/26",
        &["--trusted-proxy", "127.0.0.1/32"],
    )
    .await;
    let send = |xff: &'static str, adid: &'static str| {
        let req = sink
            .client()
            .get(sink.url(&format!(
                "/adjust?activity_kind=install&adid={adid}&created_at=1700000000"
            )))
            .header("X-Forwarded-For", xff);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send("178.162.216.70", "from_adjust").await, 200);
    assert_eq!(send("203.0.113.9, 178.162.216.71", "chain").await, 200);
    assert_eq!(send("8.8.8.8", "outsider").await, 403);
    assert_eq!(send("178.162.216.70, 8.8.8.8", "spoofed_left").await, 403);
    db.wait_rows(2, WAIT).await;
    let row = db.row_where(&["source_ip"], "adid = 'from_adjust'").await;
    assert_eq!(row["source_ip"], "178.162.216.70");
    let row = db.row_where(&["source_ip"], "adid = 'chain'").await;
    assert_eq!(row["source_ip"], "178.162.216.71");
    assert_eq!(db.rows().await, 2);

    // From a peer that is not a trusted proxy, the header is ignored: the peer itself is the
    // client, whatever the header claims.
    let db2 = Db::fresh("untrusted_peer").await;
    let untrusted = Sink::start_allowing(&db2, "178.162.216.64/26", &[]).await;
    let sent = untrusted
        .client()
        .get(untrusted.url("/adjust?activity_kind=install&adid=spoof"))
        .header("X-Forwarded-For", "178.162.216.70")
        .send()
        .await;
    assert!(
        sent.is_err(),
        "a spoofed X-Forwarded-For from an untrusted peer must not pass (closed at accept)"
    );
    let allowed = Sink::start(&db2, &[]).await;
    let status = allowed
        .client()
        .get(allowed.url("/adjust?activity_kind=install&adid=direct&created_at=1700000000"))
        .header("X-Forwarded-For", "178.162.216.70")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    db2.wait_rows(1, WAIT).await;
    assert_eq!(
        db2.row_where(&["source_ip"], "adid = 'direct'").await["source_ip"],
        "127.0.0.1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn post_form_and_json_bodies_land_like_get() {
    let db = Db::fresh("post").await;
    let sink = Sink::start(&db, &[]).await;
    let q = "activity_kind=session&adid=dd&created_at=1700000000&session_count=7&city=K%C3%B6ln&user_id=u1";
    assert_eq!(
        sink.get(&format!("/adjust?{q}&nonce=get")).await.status(),
        200
    );
    let form = sink
        .client()
        .post(sink.url("/adjust"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{q}&nonce=form"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let json = sink
        .client()
        .post(sink.url("/adjust/session?nonce=json"))
        .header("content-type", "application/json")
        .body(r#"{"adid":"dd","created_at":"1700000000","session_count":"7","city":"Köln","user_id":"u1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 200);
    db.wait_rows(3, WAIT).await;
    let cols = [
        "activity_kind",
        "adid",
        "created_at",
        "session_count",
        "city",
        "extra.key",
        "extra.value",
    ];
    let get = db.row_where(&cols, "nonce = 'get'").await;
    for nonce in ["form", "json"] {
        let row = db.row_where(&cols, &format!("nonce = '{nonce}'")).await;
        assert_eq!(row, get, "POST {nonce} differs from GET");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn large_queries_and_bodies_are_stored_whole() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Writes `request` on a fresh connection and reads up to `n` responses; returns their
    /// statuses and whether the server closed the connection (within 10 s) after them.
    async fn raw(sink: &Sink, request: &[u8], n: usize) -> (Vec<u16>, bool) {
        let mut conn = tokio::net::TcpStream::connect(sink.main)
            .await
            .expect("connect");
        conn.write_all(request).await.expect("write request");
        let (mut buf, mut pos, mut statuses) = (Vec::new(), 0, Vec::new());
        let mut chunk = vec![0; 64 << 10];
        loop {
            while statuses.len() < n {
                let Some(end) = buf[pos..].windows(4).position(|w| w == b"\r\n\r\n") else {
                    break;
                };
                let head = String::from_utf8_lossy(&buf[pos..pos + end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().expect("content-length"));
                if buf.len() < pos + end + 4 + length {
                    break;
                }
                statuses.push(head[9..12].parse().expect("status code"));
                pos += end + 4 + length;
            }
            let read = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk)).await;
            match read {
                Ok(Ok(0)) => return (statuses, true),
                Ok(Ok(k)) => buf.extend_from_slice(&chunk[..k]),
                Ok(Err(e)) => panic!("reading responses {statuses:?}: {e}"),
                Err(_) => return (statuses, false),
            }
        }
    }
    fn get(query: &str, connection: &str) -> String {
        format!("GET /adjust?{query} HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n")
    }

    let db = Db::fresh("large").await;
    let sink = Sink::start(&db, &[]).await;
    // A GET beyond what `http::Uri` takes (65,534 bytes) but within the 128 KiB head limit.
    let big = "x".repeat(100_000);
    let query = format!("activity_kind=event&adid=big_get&created_at=1700000000&deeplink={big}");
    let request = get(&query, "close");
    assert_eq!(raw(&sink, request.as_bytes(), 1).await, (vec![200], true));
    // Beyond the head limit: 431 (not 400), and the connection is closed.
    let huge = "x".repeat(140_000);
    let request = get(
        &format!("activity_kind=event&adid=huge_get&deeplink={huge}"),
        "close",
    );
    assert_eq!(raw(&sink, request.as_bytes(), 1).await, (vec![431], true));
    // Pipelined on one connection: a 100 kB target, then a short one.
    let pipelined = get(&query.replace("big_get", "piped_big"), "keep-alive")
        + &get(
            "activity_kind=event&adid=piped_small&created_at=1700000000",
            "close",
        );
    assert_eq!(
        raw(&sink, pipelined.as_bytes(), 2).await,
        (vec![200, 200], true)
    );

    let body_value = "y".repeat(1_000_000 - 100);
    let body =
        format!("activity_kind=event&adid=big_post&created_at=1700000000&label={body_value}");
    assert!(body.len() <= 1_000_000);
    let resp = sink
        .client()
        .post(sink.url("/adjust"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(db.wait_rows(4, WAIT).await, 4);
    let db = &db;
    let length = |column: &str, adid: &str| {
        let sql = format!(
            "SELECT length({column}) FROM {} WHERE adid = '{adid}'",
            db.table()
        );
        async move { db.number(&sql).await }
    };
    assert_eq!(length("deeplink", "big_get").await, 100_000);
    assert_eq!(length("deeplink", "piped_big").await, 100_000);
    assert_eq!(length("adid", "piped_small").await, 11);
    assert_eq!(length("label", "big_post").await, body_value.len() as u64);
    assert_eq!(db.rows().await, 4, "nothing from the 431");
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_concurrent_callbacks_all_land() {
    let db = Db::fresh("concurrent").await;
    let sink = Sink::start(&db, &[]).await;
    let (ok, statuses) = blast(&sink, 10_000, 256, "c").await;
    assert_eq!(ok.len(), 10_000, "statuses: {statuses:?}");
    assert_eq!(db.wait_rows(10_000, Duration::from_secs(60)).await, 10_000);
    let (rows, collapsed, distinct) = db.counts().await;
    assert_eq!((rows, collapsed, distinct), (10_000, 10_000, 10_000));
    assert_eq!(
        sink.metric("adjust_sink_rows_written_total").await,
        10_000.0
    );
    assert_eq!(
        sink.metric("adjust_sink_callbacks_total{activity_kind=\"click\"}")
            .await,
        10_000.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_expose_the_documented_families() {
    let db = Db::fresh("metrics").await;
    let sink = Sink::start(&db, &[]).await;
    assert_eq!(
        sink.get("/adjust?activity_kind=install&adid=m1&created_at=1700000000")
            .await
            .status(),
        200
    );
    db.wait_rows(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = sink.metrics().await;
    for family in [
        "adjust_sink_requests_total",
        "adjust_sink_callbacks_total",
        "adjust_sink_decode_problems_total",
        "adjust_sink_queue_rows_pushed_total",
        "adjust_sink_queue_bytes_pushed_total",
        "adjust_sink_queue_rows_popped_total",
        "adjust_sink_queue_bytes_popped_total",
        "adjust_sink_queue_capacity_rows",
        "adjust_sink_queue_capacity_bytes",
        "adjust_sink_batch_rows_bucket",
        "adjust_sink_batch_bytes_bucket",
        "adjust_sink_flushes_total",
        "adjust_sink_insert_duration_seconds_bucket",
        "adjust_sink_rows_written_total",
        "adjust_sink_insert_errors_total",
        "adjust_sink_rows_dropped_total",
        "adjust_sink_rows_rejected_total",
        "adjust_sink_spool_bytes",
        "adjust_sink_spool_oldest_unacked_age_seconds",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(family)),
            "{family} missing from /metrics"
        );
    }
    assert_eq!(
        sink.metric("adjust_sink_requests_total{outcome=\"accepted\",route=\"global\"}")
            .await,
        1.0
    );
    assert_eq!(
        sink.metric("adjust_sink_callbacks_total{activity_kind=\"install\"}")
            .await,
        1.0
    );
    assert_eq!(sink.metric("adjust_sink_rows_written_total").await, 1.0);
    assert_eq!(
        sink.metric("adjust_sink_queue_rows_popped_total").await,
        1.0
    );
    assert_eq!(
        sink.metric("adjust_sink_rows_dropped_total{cause=\"shutdown_deadline\"}")
            .await,
        0.0
    );
    let health = sink
        .client()
        .get(format!("http://{}/healthz", sink.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = sink
        .client()
        .get(format!("http://{}/readyz", sink.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // A probe that asks with HEAD gets the same status without the body; another method 405.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let url = format!("http://{}{path}", sink.admin);
        let head = sink.client().head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert_eq!(head.bytes().await.unwrap().len(), 0, "HEAD {path}");
        let post = sink.client().post(&url).send().await.unwrap();
        assert_eq!(post.status(), 405, "POST {path}");
        assert_eq!(post.headers()["allow"], "GET, HEAD", "POST {path}");
    }
}
