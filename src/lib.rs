//! adjust-sink receives Adjust server callbacks and lands every one of them, typed and exactly
//! once, in ClickHouse.
//!
//! ```text
//! Adjust ─► http: allowlist ─► row::build ─► pipeline::queue::Producer (memory | wal)
//!                              (adjust::decode, identity, encode)      │
//!           ClickHouse ◄─ sink::clickhouse ◄─ pipeline::deliver ◄─ pipeline::batcher ◄─ Consumer
//! ```
//!
//! # Layout
//! - [`adjust`]: the Adjust domain (placeholder catalog and its hot tier, the activity table,
//!   decoding, callback id).
//! - [`row`]: [`row::build`], the one way a callback becomes a row; the table's columns (two
//!   storage tiers), each placeholder type's behaviour ([`row::ty`]), RowBinary, and the privacy
//!   settings applied while a row is built.
//! - [`schema`]: the DDL for legacy (18.16) and modern ClickHouse, views, rollups, and the move from
//!   the first release's layout, erasure requests.
//! - [`pipeline`]: the queue seam ([`pipeline::queue`]), batches, memory queue, write-ahead log,
//!   batcher and delivery.
//! - [`sink`]: the store seam, the ClickHouse store (HTTPS, credentials, migrate), error classes,
//!   and the housekeeping beside delivery (erasure, retention).
//! - [`clock`]: the one wall clock.
//! - [`http`]: callback and admin listeners, allowlist, callback token, TLS, edge limits.
//! - [`metrics`]: every Prometheus metric.
//! - [`cli`], [`config`]: command line and validated settings.
//! - [`callback_url`]: the callback URLs to paste into Adjust (`callback-url`), from the catalog.
//! - [`replay`]: the `replay` and `check` commands.
//! - [`import`]: the `import` (backfill from Adjust's CSV exports) and `reconcile` commands.
//! - [`serve`]: start-up and shutdown; [`shutdown`]: the shared stop state.

pub mod adjust;
pub mod callback_url;
pub mod cli;
pub mod clickhouse;
pub mod clock;
pub mod config;
pub mod http;
pub mod import;
pub mod metrics;
pub mod pipeline;
pub mod replay;
pub mod row;
pub mod serve;
pub mod shutdown;
pub mod sink;

#[cfg(test)]
mod fuzzing;
