//! A pipeline that never wedges: an error the classifier does not know is retried (never turned
//! into rejects) until its cause is gone, and SIGTERM with an insert hanging exits within the
//! shutdown deadline, the log keeping what was acknowledged.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{Db, Sink, assert_exactly_once, base_args, blast, migrate};

#[tokio::test]
async fn an_unknown_server_error_is_retried_and_nothing_goes_to_the_rejects() {
    let db = Db::fresh("unknown_error").await;
    migrate(&db);
    let t = db.table();
    // Every insert now fails with "Division by zero" (code 153, ILLEGAL_DIVISION), which the
    // classifier lists neither as transient nor as a data error.
    db.query(&format!(
        "ALTER TABLE {t} ADD COLUMN boom UInt64 DEFAULT intDiv(callback_id, callback_id - callback_id)"
    ))
    .await;
    let sink = Sink::start(&db, &[]).await;
    let (ok, statuses) = blast(&sink, 40, 8, "unknown").await;
    assert_eq!(ok.len(), 40, "{statuses:?}");
    sink.wait_metric(
        r#"adjust_sink_insert_errors_total{retriable="true"}"#,
        3.0,
        Duration::from_secs(30),
    )
    .await;
    assert!(
        sink.logs().contains("Code: 153"),
        "the insert failed another way; log:\n{}",
        sink.logs()
    );
    let rejects = format!("{t}_rejects");
    assert_eq!(db.rows().await, 0);
    assert_eq!(
        db.number(&format!("SELECT count() FROM {rejects}")).await,
        0
    );

    // The cause is gone: everything lands, once.
    db.query(&format!("ALTER TABLE {t} DROP COLUMN boom")).await;
    assert_eq!(db.wait_rows(40, Duration::from_secs(60)).await, 40);
    assert_exactly_once(&db, &ok).await;
    assert_eq!(
        db.number(&format!("SELECT count() FROM {rejects}")).await,
        0
    );
    assert_eq!(
        sink.metric(r#"adjust_sink_insert_errors_total{retriable="false"}"#)
            .await,
        0.0
    );
    let rejected: f64 = sink
        .metrics()
        .await
        .lines()
        .filter(|l| l.starts_with("adjust_sink_rows_rejected_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(rejected, 0.0);
}

/// A "ClickHouse" that answers `SELECT version()` as 18.16 and every other query with an empty
/// result, but reads an INSERT and never answers it. Counts the INSERTs it holds.
fn hanging_clickhouse() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let inserts = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
    let seen = inserts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (seen, held) = (seen.clone(), held.clone());
            std::thread::spawn(move || {
                // Whatever arrives until the client pauses is the request.
                stream
                    .set_read_timeout(Some(Duration::from_millis(300)))
                    .expect("timeout");
                let mut request = Vec::new();
                let mut buf = [0u8; 65536];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                        Err(_) if !request.is_empty() => break,
                        Err(_) => {}
                    }
                }
                let text = String::from_utf8_lossy(&request);
                if text.contains("INSERT") {
                    seen.fetch_add(1, Ordering::SeqCst);
                    held.lock().unwrap().push(stream);
                    return;
                }
                let body = if text.contains("version()") {
                    "18.16.1\n"
                } else {
                    ""
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (url, inserts)
}

#[tokio::test]
async fn sigterm_with_an_insert_hanging_exits_by_the_deadline_and_the_log_keeps_the_rows() {
    let db = Db::fresh("hanging_insert").await;
    migrate(&db);
    let (hang_url, inserts) = hanging_clickhouse();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = base_args(&db, dir.path());
    let url = args
        .iter()
        .position(|a| a == "--clickhouse-url")
        .expect("url")
        + 1;
    args[url] = hang_url;
    args.extend(
        [
            "--no-migrate",
            "--shutdown-timeout",
            "5s",
            "--durability",
            "wal",
        ]
        .map(String::from),
    );
    let mut sink = Sink::spawn(args, dir.path().to_path_buf()).await;
    let (ok, statuses) = blast(&sink, 50, 8, "hang").await;
    assert_eq!(ok.len(), 50, "{statuses:?}");
    // An INSERT is in flight and will never be answered (the insert timeout is 60 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    while inserts.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "no INSERT sent; log:\n{}",
            sink.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopping = Instant::now();
    let status = sink.terminate(Duration::from_secs(15));
    let took = stopping.elapsed();
    assert!(status.success(), "{status:?}; log:\n{}", sink.logs());
    assert!(
        took < Duration::from_secs(8),
        "exit took {took:?}; log:\n{}",
        sink.logs()
    );
    assert!(
        sink.logs().contains("abandoning the insert in flight"),
        "log:\n{}",
        sink.logs()
    );

    // Restarted on the real ClickHouse: every acknowledged callback lands, once.
    let sink = Sink::start_in(&db, dir.path(), &[]).await;
    assert_eq!(db.wait_rows(50, Duration::from_secs(30)).await, 50);
    assert_exactly_once(&db, &ok).await;
    drop(sink);
}
