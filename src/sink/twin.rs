//! An in-memory [`Store`] with fault injection: the twin used by unit tests of delivery.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use super::{ErrorClass, Reject, Store, StoreError};

#[derive(Default)]
pub struct TwinStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    rows: Vec<Vec<u8>>,
    tokens: HashSet<String>,
    /// Errors to return on the next inserts, in order.
    faults: VecDeque<StoreError>,
    /// Rows (exact bytes) whose presence in an insert fails it with a data error.
    poison: Vec<Vec<u8>>,
    rejects: Vec<Reject>,
    inserts: usize,
}

impl TwinStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` inserts fail with `class`.
    pub fn fail_next(&self, n: usize, class: ErrorClass) {
        let mut s = self.state.lock().unwrap();
        for _ in 0..n {
            s.faults.push_back(StoreError::new(class, None, "injected"));
        }
    }

    /// Any insert containing this exact row fails with a data error.
    pub fn poison(&self, row: &[u8]) {
        self.state.lock().unwrap().poison.push(row.to_vec());
    }

    /// Rows stored so far, as inserted (split on the given row length).
    pub fn stored(&self) -> Vec<Vec<u8>> {
        self.state.lock().unwrap().rows.clone()
    }

    pub fn rejects(&self) -> Vec<Reject> {
        self.state.lock().unwrap().rejects.clone()
    }

    pub fn inserts(&self) -> usize {
        self.state.lock().unwrap().inserts
    }
}

/// Rows in the twin are fixed-size test rows: the first byte is the row length.
fn split_rows(data: &[u8]) -> Vec<Vec<u8>> {
    let mut rows = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let len = usize::from(data[i]).max(1);
        rows.push(data[i..(i + len).min(data.len())].to_vec());
        i += len;
    }
    rows
}

impl Store for TwinStore {
    async fn insert(
        &self,
        data: bytes::Bytes,
        _rows: usize,
        token: &str,
    ) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap();
        s.inserts += 1;
        if let Some(e) = s.faults.pop_front() {
            return Err(e);
        }
        let rows = split_rows(&data);
        if rows.iter().any(|r| s.poison.contains(r)) {
            return Err(StoreError::new(
                ErrorClass::Data,
                Some(27),
                "Code: 27. poisoned row",
            ));
        }
        if !s.tokens.insert(token.to_string()) {
            return Ok(()); // deduplicated, as a modern server does
        }
        s.rows.extend(rows);
        Ok(())
    }

    async fn insert_rejects(&self, rejects: &[Reject]) -> Result<(), StoreError> {
        self.state
            .lock()
            .unwrap()
            .rejects
            .extend_from_slice(rejects);
        Ok(())
    }
}
