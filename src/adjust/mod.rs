//! The Adjust domain: what a callback is, independent of HTTP and ClickHouse.
//!
//! - [`catalog`]: every placeholder Adjust can send, with its column type and every other fact
//!   about it (storage tier, device id family, identity, minimal URL set, skip index): the one
//!   source of truth.
//! - [`query`]: splitting and percent-decoding `key=value&…` without copying when possible.
//! - [`decode`]: a raw callback (query string, form or JSON body) → a [`decode::Callback`] with
//!   typed values, `extra` pairs and the decode problems found.
//! - [`activity`]: the activity kinds Adjust sends, with their triggers, placeholder scopes and
//!   views (the one table the callback URLs, views, rollups and metric labels derive from).
//! - [`identity`]: the `callback_id` dedup key.

pub mod activity;
pub mod catalog;
pub mod decode;
pub mod identity;
pub mod query;
pub mod value;

pub use decode::{Callback, DecodeOptions, Problem, ProblemKind};
