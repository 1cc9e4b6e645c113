use super::*;
use crate::pipeline::{Batch, Limits};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

fn config(dir: &Path) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        segment_bytes: 1 << 20,
        disk_budget: 1 << 30,
        max_pending_bytes: 1 << 26,
        keep_delivered: Duration::ZERO,
    }
}

fn limits(rows: usize) -> Limits {
    Limits {
        max_rows: rows,
        max_bytes: 1 << 30,
        max_age: Duration::from_secs(1),
    }
}

fn rows_of(batch: &Batch) -> Vec<Vec<u8>> {
    (0..batch.rows()).map(|i| batch.row(i).to_vec()).collect()
}

async fn append_all(wal: &Wal, rows: impl IntoIterator<Item = Vec<u8>>) {
    for r in rows {
        wal.append(r).await.unwrap();
    }
}

#[tokio::test]
async fn rows_are_read_back_in_order_and_resume_after_ack() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, mut reader, _) = Wal::open(config(dir.path()), Metrics::new()).unwrap();
    append_all(&wal, (0..10u8).map(|i| vec![i; 100])).await;
    let mut b = Batch::default();
    assert_eq!(reader.fill(&mut b, &limits(4)).unwrap(), 4);
    assert_eq!(
        rows_of(&b),
        (0..4u8).map(|i| vec![i; 100]).collect::<Vec<_>>()
    );
    reader.ack_upto(b.log.unwrap().end).unwrap();
    wal.close();
    drop((wal, reader));

    let (wal, mut reader, rec) = Wal::open(config(dir.path()), Metrics::new()).unwrap();
    assert_eq!(rec.torn_bytes, 0);
    let mut b = Batch::default();
    assert_eq!(reader.fill(&mut b, &limits(100)).unwrap(), 6);
    assert_eq!(b.row(0), &[4u8; 100][..]);
    // New appends go to a new segment and are read after the old ones.
    append_all(&wal, [vec![42; 3]]).await;
    assert_eq!(reader.fill(&mut b, &limits(100)).unwrap(), 1);
    assert_eq!(b.row(6), &[42u8; 3][..]);
}

#[tokio::test]
async fn opening_a_log_without_appending_leaves_no_empty_segments() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let (wal, _reader, _) = Wal::open(config(dir.path()), Metrics::new()).unwrap();
        wal.close();
    }
    assert_eq!(list_segments(dir.path()).unwrap(), [1]);
    // A run that writes keeps its segments (one, or two if the filled one was ready early); the
    // next run starts one of its own after them, and runs after it that write nothing reuse it.
    let (wal, _reader, _) = Wal::open(config(dir.path()), Metrics::new()).unwrap();
    append_all(&wal, (0..3u8).map(|i| vec![i; 100])).await;
    wal.close();
    drop((wal, _reader));
    let mut segments = list_segments(dir.path()).unwrap();
    assert_eq!(segments[0], 1);
    segments.push(segments.last().unwrap() + 1);
    for _ in 0..2 {
        let (wal, _reader, _) = Wal::open(config(dir.path()), Metrics::new()).unwrap();
        wal.close();
    }
    assert_eq!(list_segments(dir.path()).unwrap(), segments);
    // What the first run wrote is still read, then what a later run appends into the reused one.
    let (wal, mut reader, _) = Wal::open(config(dir.path()), Metrics::new()).unwrap();
    append_all(&wal, [vec![42; 3]]).await;
    let mut b = Batch::default();
    assert_eq!(reader.fill(&mut b, &limits(100)).unwrap(), 4);
    assert_eq!(b.row(0), &[0u8; 100][..]);
    assert_eq!(b.row(3), &[42u8; 3][..]);
    assert_eq!(list_segments(dir.path()).unwrap(), segments);
}

#[tokio::test]
async fn segments_rotate_and_are_trimmed_after_ack() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.segment_bytes = 4096;
    let (wal, mut reader, _) = Wal::open(cfg, Metrics::new()).unwrap();
    append_all(&wal, (0..50u8).map(|i| vec![i; 500])).await;
    assert!(list_segments(dir.path()).unwrap().len() > 3);
    let mut b = Batch::default();
    assert_eq!(reader.fill(&mut b, &limits(1000)).unwrap(), 50);
    reader.ack_upto(b.log.unwrap().end).unwrap();
    assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
    let disk = wal.usage().bytes;
    assert!(disk < 4096 + 600, "disk bytes after trim: {disk}");
}

#[tokio::test]
async fn torn_tail_is_truncated_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, reader, _) = Wal::open(config(dir.path()), Metrics::new()).unwrap();
    append_all(&wal, (0..5u8).map(|i| vec![i; 10])).await;
    wal.close();
    drop((wal, reader));
    let seg = *list_segments(dir.path()).unwrap().last().unwrap();
    let mut f = OpenOptions::new()
        .append(true)
        .open(segment_path(dir.path(), seg))
        .unwrap();
    f.write_all(b"\x41\x4a\x57\x4c torn garbage").unwrap();
    drop(f);
    let metrics = Metrics::new();
    let (_wal, mut reader, rec) = Wal::open(config(dir.path()), metrics.clone()).unwrap();
    assert_eq!(rec.torn_bytes, 17);
    assert_eq!(
        metrics.wal_damaged.get(crate::metrics::WalDamage::TornTail),
        1
    );
    let mut b = Batch::default();
    assert_eq!(reader.fill(&mut b, &limits(100)).unwrap(), 5);
}

#[tokio::test]
async fn damage_in_the_middle_is_quarantined_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    // A budget of few segments fills none ahead: the five records stay in the first segment.
    let mut cfg = config(dir.path());
    cfg.disk_budget = 8 << 20;
    let (wal, reader, _) = Wal::open(cfg.clone(), Metrics::new()).unwrap();
    append_all(&wal, (0..5u8).map(|i| vec![i; 10])).await;
    wal.close();
    drop((wal, reader));
    let seg = *list_segments(dir.path()).unwrap().last().unwrap();
    let path = segment_path(dir.path(), seg);
    let mut bytes = fs::read(&path).unwrap();
    let rec = record::HEADER + 10;
    bytes[2 * rec + record::HEADER + 3] ^= 0xff; // third record's payload
    fs::write(&path, &bytes).unwrap();
    let metrics = Metrics::new();
    let (_wal, mut reader, rec_info) = Wal::open(cfg, metrics.clone()).unwrap();
    assert_eq!(rec_info.torn_bytes, 0);
    let mut b = Batch::default();
    let mut got = 0;
    for _ in 0..3 {
        got += reader.fill(&mut b, &limits(100)).unwrap();
    }
    assert_eq!(got, 4);
    assert_eq!(
        rows_of(&b),
        vec![vec![0; 10], vec![1; 10], vec![3; 10], vec![4; 10]]
    );
    assert_eq!(
        metrics
            .wal_damaged
            .get(crate::metrics::WalDamage::Quarantined),
        1
    );
    assert!(fs::metadata(dir.path().join("quarantine")).unwrap().len() >= rec as u64);
}

#[tokio::test]
async fn an_inflight_batch_is_recut_identically_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, mut reader, _) = Wal::open(config(dir.path()), Metrics::new()).unwrap();
    append_all(&wal, (0..3u8).map(|i| vec![i; 10])).await;
    let mut b = Batch::default();
    reader.fill(&mut b, &limits(100)).unwrap();
    reader
        .mark_inflight(b.log.unwrap().start, b.log.unwrap().end)
        .unwrap();
    let token = b.token(0..b.rows());
    // More rows arrive, then the process dies before the ack.
    append_all(&wal, (3..6u8).map(|i| vec![i; 10])).await;
    wal.close();
    drop((wal, reader));
    let (_wal, mut reader, rec) = Wal::open(config(dir.path()), Metrics::new()).unwrap();
    assert!(rec.inflight.is_some());
    let mut again = Batch::default();
    assert_eq!(reader.fill(&mut again, &limits(100)).unwrap(), 3);
    assert_eq!(again.token(0..again.rows()), token);
    let mut next = Batch::default();
    assert_eq!(reader.fill(&mut next, &limits(100)).unwrap(), 3);
}

#[tokio::test]
async fn appends_past_the_disk_budget_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.disk_budget = 1000;
    let (wal, _reader, _) = Wal::open(cfg, Metrics::new()).unwrap();
    let mut refused = None;
    for i in 0..20 {
        if let Err(e) = wal.append(vec![0; 100]).await {
            refused = Some((i, e));
            break;
        }
    }
    let (i, e) = refused.expect("budget enforced");
    assert_eq!(e, Refusal::DiskBudget);
    assert!(i >= 5, "refused too early, after {i} rows");
    wal.close();
    assert_eq!(wal.append(vec![1]).await, Err(Refusal::ShuttingDown));
}

#[tokio::test]
async fn acknowledged_bytes_free_the_budget_before_their_segment_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.disk_budget = 10_000;
    let (wal, mut reader, _) = Wal::open(cfg, Metrics::new()).unwrap();
    let mut accepted = 0;
    while wal.append(vec![1; 200]).await.is_ok() {
        accepted += 1;
        assert!(accepted < 100, "budget not enforced");
    }
    assert!(accepted >= 40, "refused after {accepted}");
    assert_eq!(wal.append(vec![0; 200]).await, Err(Refusal::DiskBudget));
    let mut b = Batch::default();
    reader.fill(&mut b, &limits(1000)).unwrap();
    reader.ack_upto(b.log.unwrap().end).unwrap();
    assert_eq!(wal.usage().bytes, 0);
    // Still one segment on disk, but the budget is free again.
    assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
    wal.append(vec![0; 200]).await.unwrap();
}

#[tokio::test]
async fn two_logs_never_mint_the_same_token() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut tokens = Vec::new();
    for dir in [a.path(), b.path()] {
        let (wal, mut reader, _) = Wal::open(config(dir), Metrics::new()).unwrap();
        append_all(&wal, [vec![1; 10]]).await;
        let mut batch = Batch::default();
        reader.fill(&mut batch, &limits(10)).unwrap();
        tokens.push(batch.token(0..1));
        wal.close();
    }
    assert_ne!(tokens[0], tokens[1], "same positions, different logs");
    // The id survives a reopen.
    let (_wal, mut reader, _) = Wal::open(config(a.path()), Metrics::new()).unwrap();
    let mut batch = Batch::default();
    reader.fill(&mut batch, &limits(10)).unwrap();
    let id = |t: &str| t.split('-').nth(1).unwrap().to_owned();
    assert_eq!(id(&batch.token(0..1)), id(&tokens[0]));
}

#[tokio::test]
async fn prepared_segments_hold_records_only_once_finished_and_crash_leaves_no_damage() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.segment_bytes = 64 << 10;
    let (wal, mut reader, _) = Wal::open(cfg.clone(), Metrics::new()).unwrap();
    // Nothing is filled before the first callback.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!dir.path().join(appender::PREPARED).exists());
    let mut sent = vec![vec![7; 10]];
    append_all(&wal, sent.clone()).await;
    for round in 0..4u8 {
        // Time for the helper to fill the next segment, then enough rows to start it.
        for _ in 0..200 {
            if dir.path().join(appender::PREPARED).exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let rows: Vec<Vec<u8>> = (0..70u8).map(|i| vec![round ^ i; 1000]).collect();
        append_all(&wal, rows.clone()).await;
        sent.extend(rows);
    }
    let ids = list_segments(dir.path()).unwrap();
    assert!(ids.len() >= 4, "segments: {ids:?}");
    // The active segment was prepared: full size, zeros after its records, which the budget
    // counts (the log's own bytes do not include them).
    let active = segment_path(dir.path(), *ids.last().unwrap());
    assert_eq!(fs::metadata(&active).unwrap().len(), cfg.segment_bytes);
    let usage = wal.usage();
    assert!(usage.capacity_bytes < cfg.disk_budget, "{usage:?}");
    assert!(usage.capacity_bytes >= cfg.disk_budget - 2 * cfg.segment_bytes);
    // Finished segments end at their last record; the running log's zeros are not damage.
    let seen = inspect::inspect(dir.path()).unwrap();
    assert_eq!(seen.damaged_bytes, 0);
    assert_eq!(seen.pending_records, sent.len() as u64);
    for id in &ids[..ids.len() - 1] {
        let len = fs::metadata(segment_path(dir.path(), *id)).unwrap().len();
        assert!(len < cfg.segment_bytes, "segment {id}: {len} bytes");
    }
    let mut b = Batch::default();
    assert_eq!(reader.fill(&mut b, &limits(10_000)).unwrap(), sent.len());
    assert_eq!(rows_of(&b), sent);
    // A crash leaves the active segment as it is now (a close cuts its zeros): the next start
    // cuts them without counting damage, and every row is still there.
    let crashed = fs::read(&active).unwrap();
    wal.close();
    drop((wal, reader));
    assert!(fs::metadata(&active).unwrap().len() < cfg.segment_bytes);
    assert!(!dir.path().join(appender::PREPARED).exists());
    fs::write(&active, crashed).unwrap();
    let metrics = Metrics::new();
    let (_wal, mut reader, rec) = Wal::open(cfg.clone(), metrics.clone()).unwrap();
    assert_eq!(rec.torn_bytes, 0);
    assert_eq!(
        metrics.wal_damaged.get(crate::metrics::WalDamage::TornTail),
        0
    );
    assert!(fs::metadata(&active).unwrap().len() < cfg.segment_bytes);
    let mut b = Batch::default();
    assert_eq!(reader.fill(&mut b, &limits(10_000)).unwrap(), sent.len());
    assert_eq!(rows_of(&b), sent);
}

#[tokio::test]
async fn a_growing_first_segment_gives_way_to_the_filled_one_once_it_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (wal, mut reader, _) = Wal::open(cfg.clone(), Metrics::new()).unwrap();
    // Rows one at a time: the first goes into the segment the run started with, which grows as
    // it is written; once the helper has filled the next one, the next commit starts it, long
    // before the first segment is full.
    let mut sent = Vec::new();
    for i in 0..500u32 {
        let row = vec![i as u8; 100];
        wal.append(row.clone()).await.unwrap();
        sent.push(row);
        if list_segments(dir.path()).unwrap().len() > 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ids = list_segments(dir.path()).unwrap();
    assert_eq!(ids.len(), 2, "no second segment after {} rows", sent.len());
    assert!(sent.len() > 1);
    // The first segment holds its records only; the second one is the filled file.
    let first = fs::metadata(segment_path(dir.path(), ids[0]))
        .unwrap()
        .len();
    assert!(
        first > 0 && first < cfg.segment_bytes / 10,
        "first segment: {first} bytes"
    );
    let second = fs::metadata(segment_path(dir.path(), ids[1]))
        .unwrap()
        .len();
    assert_eq!(second, cfg.segment_bytes);
    // More rows go on in the filled segment, and every row reads back once, in order.
    let more: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 200]).collect();
    append_all(&wal, more.clone()).await;
    sent.extend(more);
    assert_eq!(list_segments(dir.path()).unwrap(), ids);
    let mut b = Batch::default();
    assert_eq!(reader.fill(&mut b, &limits(10_000)).unwrap(), sent.len());
    assert_eq!(rows_of(&b), sent);
    assert_eq!(inspect::inspect(dir.path()).unwrap().damaged_bytes, 0);
}

/// A log in `dir` of several small segments (none filled ahead), holding 100 rows of 1,000
/// bytes that nothing has read yet.
async fn unread_segments(dir: &Path) -> (Wal, LogReader, Vec<Vec<u8>>) {
    let mut cfg = config(dir);
    cfg.segment_bytes = 64 << 10;
    cfg.disk_budget = 8 << 20;
    let (wal, reader, _) = Wal::open(cfg, Metrics::new()).unwrap();
    let rows: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 1000]).collect();
    append_all(&wal, rows.clone()).await;
    assert!(list_segments(dir).unwrap().len() >= 2);
    (wal, reader, rows)
}

#[tokio::test]
async fn a_reader_behind_a_finished_segment_waits_for_a_directory_moved_away() {
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("wal");
    let (_wal, mut reader, rows) = unread_segments(&wal_dir).await;
    // Nothing read yet: the reader is at the start of a finished segment when the directory
    // goes. It fails (and is retried) rather than take the missing segment for an empty one.
    let away = dir.path().join("away");
    fs::rename(&wal_dir, &away).unwrap();
    let mut b = Batch::default();
    assert!(reader.fill(&mut b, &limits(10_000)).is_err());
    assert_eq!(b.rows(), 0);
    fs::rename(&away, &wal_dir).unwrap();
    assert_eq!(reader.fill(&mut b, &limits(10_000)).unwrap(), rows.len());
    assert_eq!(rows_of(&b), rows);
}

#[tokio::test]
async fn a_segment_deleted_before_it_is_read_is_skipped_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (_wal, mut reader, rows) = unread_segments(dir.path()).await;
    let ids = list_segments(dir.path()).unwrap();
    // The first segment's records are gone with it; the reader goes on with the next segment.
    let first = segment_path(dir.path(), ids[0]);
    let in_first = fs::metadata(&first).unwrap().len() as usize / (record::HEADER + 1000);
    assert!(in_first > 0 && in_first < rows.len());
    fs::remove_file(&first).unwrap();
    let mut b = Batch::default();
    assert_eq!(
        reader.fill(&mut b, &limits(10_000)).unwrap(),
        rows.len() - in_first
    );
    assert_eq!(rows_of(&b), rows[in_first..].to_vec());
}

#[tokio::test]
async fn a_budget_of_few_segments_prepares_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.disk_budget = 8 << 20; // segments of 1 MiB: eight of them
    let (wal, _reader, _) = Wal::open(cfg.clone(), Metrics::new()).unwrap();
    append_all(&wal, (0..2_500u32).map(|i| vec![i as u8; 1000])).await;
    assert!(list_segments(dir.path()).unwrap().len() >= 3);
    assert!(!dir.path().join(appender::PREPARED).exists());
    assert_eq!(wal.usage().capacity_bytes, cfg.disk_budget);
}

#[tokio::test]
async fn delivered_segments_are_kept_and_give_way_to_new_callbacks() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.keep_delivered = Duration::from_secs(3600);
    cfg.disk_budget = 8 << 20; // segments of 1 MiB: eight of them
    let metrics = Metrics::new();
    let (wal, mut reader, _) = Wal::open(cfg.clone(), metrics.clone()).unwrap();
    // Fill most of the budget, deliver it all: the segments stay (kept for replay --since).
    append_all(&wal, (0..600u32).map(|_| vec![7u8; 10_000])).await;
    let mut b = Batch::default();
    reader.fill(&mut b, &limits(1 << 20)).unwrap();
    reader.ack_upto(b.log.unwrap().end).unwrap();
    let kept = list_segments(dir.path()).unwrap().len();
    assert!(kept >= 5, "segments: {kept}");
    assert_eq!(
        crate::pipeline::wal::inspect::inspect(dir.path())
            .unwrap()
            .kept_records,
        600
    );
    // Kept data never refuses a callback: as new rows need the disk, the oldest kept go.
    append_all(&wal, (0..600u32).map(|_| vec![8u8; 10_000])).await;
    let ids = list_segments(dir.path()).unwrap();
    let disk: u64 = ids
        .iter()
        .map(|&id| {
            std::fs::metadata(segment_path(dir.path(), id))
                .unwrap()
                .len()
        })
        .sum();
    assert!(disk <= cfg.disk_budget, "disk {disk} over the budget");
    assert!(metrics.wal_kept_evicted.get() > 0);
    let seen = crate::pipeline::wal::inspect::inspect(dir.path()).unwrap();
    assert_eq!(seen.pending_records, 600);
    assert!(seen.kept_records < 600);
    // Restarting keeps what is kept, and with keep 0 it goes.
    wal.close();
    drop((wal, reader));
    let (wal, reader, _) = Wal::open(cfg.clone(), Metrics::new()).unwrap();
    wal.close();
    drop((wal, reader));
    assert_eq!(list_segments(dir.path()).unwrap().first(), ids.first());
    cfg.keep_delivered = Duration::ZERO;
    let (wal, _reader, _) = Wal::open(cfg, Metrics::new()).unwrap();
    let after = list_segments(dir.path()).unwrap();
    assert!(after.first() > ids.first(), "{after:?}");
    drop(wal);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs_and_a_lone_one_is_written_alone() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let (wal, mut reader, _) = Wal::open(config(dir.path()), metrics.clone()).unwrap();
    // 64 callers, each appending again as soon as the previous append is durable.
    let callers: Vec<_> = (0..64u32)
        .map(|c| {
            let wal = wal.clone();
            tokio::spawn(async move {
                for i in 0..50u32 {
                    wal.append([c.to_le_bytes(), i.to_le_bytes()].concat())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for c in callers {
        c.await.unwrap();
    }
    let fsyncs = metrics.wal_fsyncs.get();
    assert_eq!(metrics.queue_rows_pushed.get(), 64 * 50);
    // Group commit: the callers waiting on one fsync share it.
    assert!(
        fsyncs * 4 <= 64 * 50,
        "{fsyncs} fsyncs for {} appends",
        64 * 50
    );
    // Every append is in the log, once.
    let mut b = Batch::default();
    assert_eq!(reader.fill(&mut b, &limits(10_000)).unwrap(), 64 * 50);
    let mut seen: Vec<_> = rows_of(&b);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 64 * 50);
    // Idle again: a lone append is one group of its own, written at once.
    let before = metrics.wal_fsyncs.get();
    wal.append(vec![1]).await.unwrap();
    wal.append(vec![2]).await.unwrap();
    assert_eq!(metrics.wal_fsyncs.get(), before + 2);
    // Every group commit is timed: one observation per fsync, each of some time.
    let timed = &metrics.wal_fsync_duration;
    assert_eq!(timed.get_sample_count(), metrics.wal_fsyncs.get());
    assert!(timed.get_sample_sum() > 0.0);
}

#[test]
fn the_log_holds_no_more_than_its_disk_has_room_for() {
    let dir = tempfile::tempdir().unwrap();
    let free = super::free_bytes(dir.path()).unwrap();
    assert!(
        free > 2 * super::DISK_MARGIN,
        "the test needs some free disk"
    );
    // A budget the disk holds is the room.
    assert_eq!(super::room_in(dir.path(), 0, 1 << 20), 1 << 20);
    // A larger one is cut to what the log holds plus the free space, less the margin.
    let cut = super::room_in(dir.path(), 1 << 20, u64::MAX - 1);
    assert!(cut < u64::MAX - 1, "{cut}");
    assert!(cut >= 1 << 20, "{cut}: the log's own bytes count as room");
    let slack = 64 << 20; // other writers on the same disk meanwhile
    assert!(
        cut.abs_diff((1 << 20) + free - super::DISK_MARGIN) < slack,
        "{cut} vs {free}"
    );
    // A log that takes no appends (`replay`) is not cut.
    assert_eq!(
        super::room_in(dir.path(), 0, super::UNLIMITED),
        super::UNLIMITED
    );
}

#[tokio::test]
async fn a_log_that_cannot_be_written_refuses_and_is_not_ready_until_it_can_again() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("wal");
    let away = root.path().join("moved");
    std::fs::create_dir(&dir).unwrap();
    let metrics = Metrics::new();
    let cfg = WalConfig {
        segment_bytes: 4096,
        ..config(&dir)
    };
    let (wal, mut reader, _) = Wal::open(cfg.clone(), metrics.clone()).unwrap();
    let mut taken = Vec::new();
    for i in 0..3u8 {
        wal.append(vec![i; 1000]).await.unwrap();
        taken.push(vec![i; 1000]);
    }
    assert!(wal.usage().fault.is_none());
    // The directory goes away: the open segment could still be written, but nothing written
    // there from now on would be found at start-up, so nothing more is taken.
    std::fs::rename(&dir, &away).unwrap();
    for i in 3..6u8 {
        assert!(matches!(wal.append(vec![i; 1000]).await, Err(Refusal::Io)));
    }
    let usage = wal.usage();
    assert!(!usage.has_room(0), "{usage}");
    assert!(usage.to_string().contains("cannot be written"), "{usage}");
    assert_eq!(metrics.wal_unwritable.get(), 1);
    // Still failing when probed with nothing sent.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(wal.usage().fault.is_some());
    // The directory is back: the appender's probe finds it with nothing sent.
    std::fs::rename(&away, &dir).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while wal.usage().fault.is_some() {
        assert!(std::time::Instant::now() < deadline, "still failing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metrics.wal_unwritable.get(), 0);
    assert!(wal.usage().has_room(0));
    for i in 20..25u8 {
        wal.append(vec![i; 1000]).await.unwrap();
        taken.push(vec![i; 1000]);
    }
    // Exactly the appends that were answered Ok are in the log, in order.
    let mut b = Batch::default();
    while reader.fill(&mut b, &limits(100)).unwrap() > 0 {}
    assert_eq!(rows_of(&b), taken);
    wal.close();
}

#[tokio::test]
async fn a_deleted_log_takes_nothing_more_and_stays_failing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("wal");
    std::fs::create_dir(&dir).unwrap();
    // Small segments: the next append would start a new one, which must not revive the log.
    let cfg = WalConfig {
        segment_bytes: 150,
        ..config(&dir)
    };
    let (wal, _reader, _) = Wal::open(cfg, Metrics::new()).unwrap();
    wal.append(vec![1; 100]).await.unwrap();
    // Deleted (and made again, empty): what the open segment would still take, a restart would
    // not find. The helper filling the next segment may create its file while the directory is
    // being emptied (the deletion then finds it not empty): deleted again until it goes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while let Err(e) = std::fs::remove_dir_all(&dir) {
        assert!(std::time::Instant::now() < deadline, "{e}");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::create_dir(&dir).unwrap();
    assert!(matches!(wal.append(vec![2; 100]).await, Err(Refusal::Io)));
    let fault = wal.usage().fault.expect("a fault");
    assert!(fault.contains("was deleted"), "{fault}");
    // The probe finds the directory writable but the segment gone: still failing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(wal.usage().fault.is_some());
    assert!(matches!(wal.append(vec![3; 100]).await, Err(Refusal::Io)));
    wal.close();
}
