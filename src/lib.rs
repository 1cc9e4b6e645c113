//! adjust-sink receives Adjust server callbacks and lands every one of them, typed and exactly
//! once, in ClickHouse.
//!
//! ```text
//! Adjust ─► http: allowlist ─► adjust::decode ─► row::encode ─► pipeline queue (memory | wal)
//!                                                                  │
//!           ClickHouse ◄─ sink::clickhouse ◄─ pipeline::deliver ◄─ pipeline::batcher
//! ```
//!
//! # Layout
//! - [`adjust`]: the Adjust domain (placeholder catalog, decoding, activity kinds, callback id).
//! - [`row`]: the table's columns and the RowBinary encoding of one callback.
//! - [`schema`]: the DDL for legacy (18.16) and modern ClickHouse.
//! - [`pipeline`]: memory queue, write-ahead log, batcher and delivery.
//! - [`sink`]: the store seam, the ClickHouse store, error classes, and an in-memory twin.
//! - [`http`]: callback and admin listeners, allowlist.
//! - [`metrics`]: every Prometheus metric.
//! - [`cli`], [`config`]: command line and validated settings.
//! - [`callback_url`]: the callback URLs to paste into Adjust (`callback-url`), from the catalog.
//! - [`replay`]: the `replay` and `check` commands.
//! - [`import`]: the `import` (backfill from Adjust's CSV exports) and `reconcile` commands.
//! - [`serve`]: start-up and shutdown; [`shutdown`]: the shared stop state.

pub mod adjust;
pub mod callback_url;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod import;
pub mod metrics;
pub mod pipeline;
pub mod replay;
pub mod row;
pub mod schema;
pub mod serve;
pub mod shutdown;
pub mod sink;
