//! Everything the sink says to ClickHouse, in one home.
//!
//! - [`types`]: the server generations ([`Profile`]), what each calls a column type, and the one
//!   SQL quoting rule.
//! - [`schema`]: the DDL of both generations (table, views, rollups, erasure requests, cluster
//!   objects) and the move from the first release's layout.
//! - [`store`]: the client (RowBinary inserts with dedup tokens, queries, `migrate`, the layout
//!   move), which implements the delivery seam [`crate::sink::Store`] and the admin seam
//!   [`crate::sink::Admin`].
//! - [`connect`]: HTTP(S) (rustls; system roots or `--clickhouse-ca`) and connection errors
//!   explained; [`credentials`]: passwords and URLs that never print their secret.
//! - [`housekeeping`]: erasure requests and `--retention`, beside delivery.
//! - [`settings`]: the connection and target-table sections of the command line.

pub mod connect;
pub mod credentials;
pub mod housekeeping;
pub mod schema;
pub mod settings;
pub mod store;
pub mod types;

pub use types::{Profile, quote};
