//! The closed label sets of the metrics ([`Label`]), and [`Counters`], one counter per label
//! value resolved once.

use prometheus::{IntCounter, IntCounterVec};

use crate::adjust::ProblemKind;

/// A closed set of label values: every value is known up front, so each series exists (at 0)
/// from the start and a label can never take an unbounded value.
pub trait Label: Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
}

/// Declares a label enum with its wire strings.
macro_rules! label {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl Label for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                Label::as_str(self)
            }
        }
    };
}

label!(
    /// Which callback route answered, the `route` label.
    Route { Global => "global", Trigger => "trigger" }
);
label!(
    /// Outcome of one callback request, the `outcome` label.
    Outcome {
        Accepted => "accepted",
        Forbidden => "forbidden",
        Shed => "shed",
        ShuttingDown => "shutting_down",
        BadToken => "bad_token",
        TooLarge => "too_large",
        Compressed => "compressed",
        BodyIncomplete => "body_incomplete",
    }
);
label!(
    /// Why the sink closed a callback connection without answering it, the `reason` label of
    /// `connections_refused_total`.
    ConnRefusal { Outside => "outside", PerSource => "per_source", HeldBytes => "held_bytes" }
);
label!(
    /// Why a batch was flushed, the `reason` label.
    FlushReason { Rows => "rows", Bytes => "bytes", Age => "age", Shutdown => "shutdown" }
);
label!(
    /// The result of one INSERT, the `result` label of the insert duration.
    InsertResult { Ok => "ok", Error => "error" }
);
label!(
    /// Whether a failed INSERT is retried, the `retriable` label.
    Retriable { Yes => "true", No => "false" }
);
label!(
    /// Why accepted rows will never reach ClickHouse, the `cause` label of `rows_dropped_total`.
    DropCause { ShutdownDeadline => "shutdown_deadline", RejectUnwritable => "reject_unwritable" }
);
label!(
    /// Why ClickHouse refused a row, the `reason` label of `rows_rejected_total`.
    RejectReason { Parse => "parse", Type => "type", Constraint => "constraint", Other => "other" }
);
label!(
    /// What kind of write-ahead log damage was found, the `kind` label of `wal_damaged_total`.
    WalDamage { TornTail => "torn_tail", Quarantined => "quarantined" }
);
label!(
    /// Why an erasure request was refused, the `reason` label of `erasures_refused_total`.
    ErasureRefusal { TooLong => "too_long", UnknownKind => "unknown_kind" }
);
label!(
    /// What became of an export file the follower took, the `state` label of
    /// `export_files_total`.
    ExportFileState { Loaded => "loaded", Failed => "failed" }
);
label!(
    /// What became of a row of an export file, the `outcome` label of `export_rows_total`: `new`
    /// rows are activities the callbacks missed.
    ExportRowOutcome { New => "new", Present => "present", Bad => "bad", Refused => "refused" }
);
label!(
    /// How a round of the export follower ended, the `outcome` label of `export_rounds_total`:
    /// `failed` when the listing, the manifest or ClickHouse failed (tried again next round).
    ExportRoundOutcome { Completed => "completed", Failed => "failed" }
);
label!(
    /// A housekeeping task, the `task` label of `housekeeping_rounds_total`.
    HousekeepingTask { Erasure => "erasure", Retention => "retention" }
);

impl Label for ProblemKind {
    const ALL: &'static [Self] = &ProblemKind::ALL;
    fn as_str(self) -> &'static str {
        ProblemKind::as_str(self)
    }
}

/// One counter per label value, resolved once (a label lookup takes a lock and a hash).
#[derive(Clone)]
pub struct Counters<L: Label> {
    by_value: Vec<IntCounter>,
    _label: std::marker::PhantomData<L>,
}

impl<L: Label + PartialEq> Counters<L> {
    pub(super) fn new(family: IntCounterVec) -> Self {
        let by_value = L::ALL
            .iter()
            .map(|l| family.with_label_values(&[l.as_str()]))
            .collect();
        Counters {
            by_value,
            _label: std::marker::PhantomData,
        }
    }

    fn index(l: L) -> usize {
        L::ALL.iter().position(|x| *x == l).expect("label in ALL")
    }

    pub fn inc(&self, l: L) {
        self.by_value[Self::index(l)].inc();
    }

    pub fn inc_by(&self, l: L, n: u64) {
        self.by_value[Self::index(l)].inc_by(n);
    }

    pub fn get(&self, l: L) -> u64 {
        self.by_value[Self::index(l)].get()
    }

    /// The sum over every label value.
    pub fn total(&self) -> u64 {
        self.by_value.iter().map(IntCounter::get).sum()
    }
}
