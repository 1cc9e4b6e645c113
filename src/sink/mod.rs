//! The seam in front of ClickHouse.
//!
//! - [`Store`]: what delivery needs from a store (insert a batch, insert rejected rows).
//! - [`Admin`]: queries and statements for the commands and housekeeping.
//! - The real store is [`crate::clickhouse::store`].
//! - [`classify`]: which ClickHouse errors are retried and which are caused by the data, decided
//!   in one place.
//! - `twin` (unit tests only): an in-memory store with fault injection.

pub mod classify;
#[cfg(test)]
pub mod twin;

use std::future::Future;

pub use classify::ErrorClass;

/// A failed store request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub class: ErrorClass,
    /// The server's error code, when it gave one.
    pub code: Option<u32>,
    pub message: String,
}

impl StoreError {
    pub fn new(class: ErrorClass, code: Option<u32>, message: impl Into<String>) -> Self {
        StoreError {
            class,
            code,
            message: message.into(),
        }
    }
}

/// A row ClickHouse refused, with the reason, for the rejects table.
#[derive(Debug, Clone)]
pub struct Reject {
    pub rejected_at: u32,
    pub callback_id: u64,
    pub error: String,
    /// The row as JSON (column → value), readable without the sink.
    pub row_json: String,
    /// The row as encoded, to re-insert once the cause is fixed.
    pub row: Vec<u8>,
}

impl Reject {
    /// A refused encoded row, with what the row module can read back of it.
    pub fn new(row: &[u8], error: String, rejected_at: u32) -> Self {
        Reject {
            rejected_at,
            callback_id: crate::row::callback_id_of(row).unwrap_or(0),
            error,
            row_json: crate::row::to_json(row),
            row: row.to_vec(),
        }
    }
}

/// What the commands and housekeeping ask of the store besides inserts: read-only queries and
/// statements, as SQL text made by [`crate::clickhouse`]. The ClickHouse store implements it,
/// and so does the twin (from a script), so import's lookups, migrate's decisions and the
/// housekeeping rounds have unit tests without a server.
pub trait Admin: Send + Sync + 'static {
    /// Runs a read-only query; its rows, split into fields.
    fn select(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<Vec<Vec<String>>, StoreError>> + Send;

    /// Runs a statement.
    fn execute(&self, sql: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Encoded rows (concatenated RowBinary) handed to [`Store::insert`], read in blocks: a batch
/// whose rows are put in order as they are sent never holds a second, sorted copy of itself.
pub trait Rows: Sync {
    /// The rows' bytes in consecutive blocks of about `size` bytes (the last one shorter). A
    /// block may be a view or a fresh copy.
    fn blocks(&self, size: usize) -> Box<dyn Iterator<Item = bytes::Bytes> + Send + '_>;

    /// All the bytes in one block.
    fn to_bytes(&self) -> bytes::Bytes {
        self.blocks(usize::MAX).next().unwrap_or_default()
    }
}

/// Bytes that are already rows in order: blocks are views, cut at `size` bytes (rows may
/// straddle two blocks).
impl Rows for bytes::Bytes {
    fn blocks(&self, size: usize) -> Box<dyn Iterator<Item = bytes::Bytes> + Send + '_> {
        let size = size.max(1);
        Box::new(
            (0..self.len())
                .step_by(size)
                .map(move |at| self.slice(at..self.len().min(at.saturating_add(size)))),
        )
    }
}

/// What delivery needs from a store.
pub trait Store: Send + Sync + 'static {
    /// Inserts `rows`. `token` identifies the content for server-side deduplication where the
    /// server supports it.
    fn insert(
        &self,
        rows: &dyn Rows,
        token: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inserts rows the store refused into the rejects table.
    fn insert_rejects(
        &self,
        rejects: &[Reject],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Makes the store ready for inserts as the first insert would (ClickHouse: probes the
    /// server and, unless `--no-migrate`, creates or upgrades the tables).
    fn prepare(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
