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
//! Lower layers never import higher ones (checked by `tests/layers.rs`):
//! - [`clock`], [`shutdown`], [`settings`] (what every settings section shares): leaves.
//! - [`adjust`]: the Adjust domain (placeholder catalog, the activity table, decoding, callback
//!   id).
//! - [`metrics`]: every Prometheus metric.
//! - [`row`]: [`row::build`], the one way a callback or an export row becomes a row; the
//!   columns and their types (two storage tiers), RowBinary, privacy; the Rows settings section.
//! - [`sink`]: the seams in front of the store: [`sink::Store`] (delivery) and [`sink::Admin`]
//!   (queries and statements), error classes, and an in-memory twin for unit tests.
//! - [`pipeline`]: the queue seam, batches, memory queue, write-ahead log, batcher and delivery;
//!   the Queue and delivery settings section and the one place a deliverer is assembled.
//! - [`http`]: callback and admin listeners, allowlist, callback token, TLS, edge limits; the
//!   Edge settings section.
//! - [`clickhouse`]: everything said to ClickHouse: server generations, type names, quoting,
//!   DDL, views and rollups, the store, migrate, layout moves, housekeeping (erasure,
//!   retention); the Connection, Target table and Housekeeping settings sections.
//! - [`callback_url`]: the callback URLs to paste into Adjust, from the catalog.
//! - [`cli`]: the commands, each flattening the sections it needs; [`commands`]: one module per
//!   command (`serve`, `migrate`, `schema`, `callback-url`, `replay`, `check`, `import`,
//!   `reconcile`).

pub mod adjust;
pub mod callback_url;
pub mod cli;
pub mod clickhouse;
pub mod clock;
pub mod commands;
pub mod http;
pub mod metrics;
pub mod pipeline;
pub mod row;
pub mod settings;
pub mod shutdown;
pub mod sink;

#[cfg(test)]
mod fuzzing;
