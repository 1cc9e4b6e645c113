//! An in-memory [`Store`] with fault injection: the twin used by unit tests of delivery.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use super::{Admin, ErrorClass, Reject, Rows, Store, StoreError};

/// Answers the twin gives to queries: `None` for a query it was not scripted for.
type Script = Box<dyn Fn(&str, &[Vec<u8>]) -> Option<Vec<Vec<String>>> + Send + Sync>;

#[derive(Default)]
pub struct TwinStore {
    state: Mutex<State>,
    /// Answers to queries, given the rows stored so far.
    script: Option<Script>,
}

#[derive(Default)]
struct State {
    rows: Vec<Vec<u8>>,
    tokens: HashSet<String>,
    /// Errors to return on the next inserts, in order.
    faults: VecDeque<StoreError>,
    /// Rows (exact bytes) whose presence in an insert fails it with a data error.
    poison: Vec<Vec<u8>>,
    /// Callback ids whose presence in an insert fails it with a data error (real rows).
    poison_ids: Vec<u64>,
    rejects: Vec<Reject>,
    inserts: usize,
    /// Refuse, as a modern server does, an insert touching more partitions (months of the
    /// rows' `event_date`) than this.
    max_partitions: Option<usize>,
    /// The rejects table cannot be written.
    rejects_broken: bool,
    /// The next inserts never answer.
    hang: usize,
    /// Tokens of the inserts stored, in order.
    stored_tokens: Vec<String>,
    /// Rows are rows of this crate's encoding (not the fixed-size test rows).
    real_rows: bool,
    /// Statements run through [`Admin::execute`], and queries through [`Admin::select`].
    statements: Vec<String>,
    queries: Vec<String>,
}

impl TwinStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A twin that stores rows of this crate's encoding and answers queries with `script`
    /// (called with the SQL and the rows stored so far).
    pub fn scripted(
        script: impl Fn(&str, &[Vec<u8>]) -> Option<Vec<Vec<String>>> + Send + Sync + 'static,
    ) -> Self {
        let twin = TwinStore {
            script: Some(Box::new(script)),
            ..Self::default()
        };
        twin.state.lock().unwrap().real_rows = true;
        twin
    }

    /// Refuse any insert holding a row with this callback id (a data error, as ClickHouse
    /// names a value it cannot take).
    pub fn poison_id(&self, callback_id: u64) {
        self.state.lock().unwrap().poison_ids.push(callback_id);
    }

    /// Statements run so far.
    pub fn statements(&self) -> Vec<String> {
        self.state.lock().unwrap().statements.clone()
    }

    /// Queries run so far.
    pub fn queries(&self) -> Vec<String> {
        self.state.lock().unwrap().queries.clone()
    }

    /// The next `n` inserts fail with `class`.
    pub fn fail_next(&self, n: usize, class: ErrorClass) {
        let mut s = self.state.lock().unwrap();
        for _ in 0..n {
            s.faults.push_back(StoreError::new(class, None, "injected"));
        }
    }

    /// The next `n` inserts fail with `error`.
    pub fn fail_next_with(&self, n: usize, error: StoreError) {
        let mut s = self.state.lock().unwrap();
        for _ in 0..n {
            s.faults.push_back(error.clone());
        }
    }

    /// Inserts touching more than `n` partitions fail as on a modern server.
    pub fn max_partitions(&self, n: usize) {
        self.state.lock().unwrap().max_partitions = Some(n);
    }

    /// Inserts into the rejects table fail.
    pub fn break_rejects(&self) {
        self.state.lock().unwrap().rejects_broken = true;
    }

    /// The next `n` inserts never answer.
    pub fn hang_next(&self, n: usize) {
        self.state.lock().unwrap().hang += n;
    }

    /// The tokens of the inserts that stored rows, in order.
    pub fn tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().stored_tokens.clone()
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
    async fn prepare(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn insert(&self, rows: &dyn Rows, token: &str) -> Result<(), StoreError> {
        let data = rows.to_bytes();
        let hang = {
            let mut s = self.state.lock().unwrap();
            s.inserts += 1;
            if s.hang > 0 {
                s.hang -= 1;
                true
            } else {
                false
            }
        };
        if hang {
            std::future::pending::<()>().await;
        }
        let mut s = self.state.lock().unwrap();
        if let Some(e) = s.faults.pop_front() {
            return Err(e);
        }
        let rows = if s.real_rows {
            crate::row::split_rows(&data)
                .map_err(|e| StoreError::new(ErrorClass::Data, Some(33), e.to_string()))?
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect()
        } else {
            split_rows(&data)
        };
        if rows
            .iter()
            .any(|r| crate::row::callback_id_of(r).is_some_and(|id| s.poison_ids.contains(&id)))
        {
            return Err(StoreError::new(
                ErrorClass::Data,
                Some(27),
                "Code: 27. poisoned row",
            ));
        }
        if let Some(max) = s.max_partitions {
            let mut months: Vec<Option<u32>> = rows
                .iter()
                .map(|r| crate::row::event_date_of(r).map(crate::pipeline::batch::month_of))
                .collect();
            months.sort_unstable();
            months.dedup();
            if months.len() > max {
                return Err(StoreError::new(
                    ErrorClass::Shape,
                    Some(252),
                    format!(
                        "Code: 252. DB::Exception: Too many partitions for single INSERT block \
                         (more than {max}). (TOO_MANY_PARTS)"
                    ),
                ));
            }
        }
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
        s.stored_tokens.push(token.to_string());
        Ok(())
    }

    async fn insert_rejects(&self, rejects: &[Reject]) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap();
        if s.rejects_broken {
            return Err(StoreError::new(
                ErrorClass::Transient,
                Some(242),
                "Code: 242. Table is in readonly mode",
            ));
        }
        s.rejects.extend_from_slice(rejects);
        Ok(())
    }
}

impl Admin for TwinStore {
    async fn select(&self, sql: &str) -> Result<Vec<Vec<String>>, StoreError> {
        let rows = {
            let mut s = self.state.lock().unwrap();
            s.queries.push(sql.to_string());
            s.rows.clone()
        };
        self.script
            .as_ref()
            .and_then(|answer| answer(sql, &rows))
            .ok_or_else(|| {
                StoreError::new(
                    ErrorClass::Unknown,
                    Some(62),
                    format!("the twin has no answer to {sql}"),
                )
            })
    }

    async fn execute(&self, sql: &str) -> Result<(), StoreError> {
        self.state.lock().unwrap().statements.push(sql.to_string());
        Ok(())
    }
}
