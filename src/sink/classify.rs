//! Which store errors are retried, and which are caused by the data. One place, one table.

/// How delivery treats an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The store or the path to it is unwell (network, timeouts, too many parts, memory,
    /// missing table, authentication): keep the batch and retry with backoff.
    Transient,
    /// Caused by the rows themselves (parse or type errors, a constraint): split the batch to
    /// isolate the offending rows and send those to the rejects table.
    Data,
    /// The batch's shape is refused, not its rows (more partitions than one INSERT may touch):
    /// cut the batch into parts that each touch fewer partitions, and land every part.
    Shape,
    /// Not known: retried with backoff like a transient error. Rows go to the rejects only when
    /// ClickHouse names a data error.
    Unknown,
}

/// Whether ClickHouse refused who the sink is (unknown user, wrong or missing password).
pub fn is_credentials(code: u32) -> bool {
    matches!(code, 192..=194 | 516)
}

impl ErrorClass {
    pub fn is_retriable(self) -> bool {
        !matches!(self, ErrorClass::Data | ErrorClass::Shape)
    }
}

/// ClickHouse error codes caused by the content of the inserted rows.
const DATA_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,  // ATTEMPT_TO_READ_AFTER_EOF
    33,  // CANNOT_READ_ALL_DATA
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    190, // SIZES_OF_ARRAYS_DOESNT_MATCH
    395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
    469, // VIOLATED_CONSTRAINT
];

/// ClickHouse error codes of a store that is unwell or misconfigured, never of the data.
const TRANSIENT_CODES: &[u32] = &[
    3,   // UNEXPECTED_END_OF_FILE (connection cut)
    16,  // NO_SUCH_COLUMN_IN_TABLE (schema not migrated yet)
    60,  // UNKNOWN_TABLE
    81,  // UNKNOWN_DATABASE
    159, // TIMEOUT_EXCEEDED
    164, // READONLY
    192, // UNKNOWN_USER
    193, // WRONG_PASSWORD
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    279, // ALL_CONNECTION_TRIES_FAILED (a whole shard of a cluster down)
    225, // NO_ZOOKEEPER (a replicated table without its coordination)
    285, // TOO_FEW_LIVE_REPLICAS (insert_quorum: a replica of the shard is down)
    286, // UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE (an earlier quorum insert not yet replicated)
    289, // REPLICA_IS_NOT_IN_QUORUM
    319, // UNKNOWN_STATUS_OF_INSERT (quorum timeout: the block may be written; retried with
    //      the same rows, which block deduplication and callback_id make harmless)
    425, // SYSTEM_ERROR
    497, // ACCESS_DENIED
    516, // AUTHENTICATION_FAILED
    999, // KEEPER_EXCEPTION (ZooKeeper session lost, …)
];

/// ClickHouse error codes of a user who may not run the statement (no DDL rights, read-only).
const PRIVILEGE_CODES: &[u32] = &[
    164, // READONLY
    392, // QUERY_IS_PROHIBITED (allow_ddl = 0)
    497, // ACCESS_DENIED (also "Not enough privileges")
];

/// Whether the code says the user lacks the rights for the statement.
pub fn is_privilege_code(code: u32) -> bool {
    PRIVILEGE_CODES.contains(&code)
}

/// What a modern server says (code 252, like "Too many parts") when one INSERT touches more
/// partitions than `max_partitions_per_insert_block` allows.
const TOO_MANY_PARTITIONS: &str = "Too many partitions for single INSERT block";

/// Classifies a ClickHouse error by its code and message.
pub fn classify(code: u32, message: &str) -> ErrorClass {
    if code == 252 && message.contains(TOO_MANY_PARTITIONS) {
        ErrorClass::Shape
    } else {
        classify_code(code)
    }
}

/// The partition limit a "Too many partitions" error names (`… (more than 100)`).
pub fn partition_limit(message: &str) -> Option<usize> {
    let rest = &message[message.find(TOO_MANY_PARTITIONS)?..];
    let rest = &rest[rest.find("more than ")? + 10..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Classifies a ClickHouse error code.
pub fn classify_code(code: u32) -> ErrorClass {
    if DATA_CODES.contains(&code) {
        ErrorClass::Data
    } else if TRANSIENT_CODES.contains(&code) {
        ErrorClass::Transient
    } else {
        ErrorClass::Unknown
    }
}

/// The `reason` label of `rows_rejected_total` for a refused row's error code.
pub fn reject_reason(code: Option<u32>) -> RejectReason {
    match code {
        Some(6 | 26 | 27 | 32 | 33 | 38 | 41 | 72) => RejectReason::Parse,
        Some(53 | 69 | 70 | 117 | 131 | 190) => RejectReason::Type,
        Some(395 | 469) => RejectReason::Constraint,
        _ => RejectReason::Other,
    }
}

/// The `Code: N` of a ClickHouse error message, if it has one.
pub fn code_of(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + 6..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

use crate::metrics::RejectReason;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_from_messages() {
        assert_eq!(
            code_of("Code: 60, e.displayText() = DB::Exception: Table x.y doesn't exist."),
            Some(60)
        );
        assert_eq!(
            code_of("Code: 395. DB::Exception: Value passed to 'throwIf'"),
            Some(395)
        );
        assert_eq!(code_of("503 Service Unavailable"), None);
    }

    #[test]
    fn classes() {
        assert_eq!(classify_code(27), ErrorClass::Data);
        assert_eq!(classify_code(252), ErrorClass::Transient);
        assert_eq!(classify_code(60), ErrorClass::Transient);
        assert_eq!(classify_code(99999), ErrorClass::Unknown);
        // A cluster: a whole shard down during a synchronous distributed insert, and ON CLUSTER
        // DDL that a node did not finish in time (as 18.16 words them).
        for message in [
            "Code: 279, e.displayText() = DB::NetException: All connection tries failed. Log: \n\nCode: 210, e.displayText() = DB::NetException: Connection refused (127.0.0.1:18231)",
            "Code: 159, e.displayText() = DB::Exception: Watching task /clickhouse/task_queue/ddl/query-0000000020 is executing longer than distributed_ddl_task_timeout (=5) seconds.",
            // insert_quorum: a replica down, the quorum not reached in time, an earlier quorum
            // insert still replicating.
            "Code: 285, e.displayText() = DB::Exception: Number of alive replicas (1) is less than requested quorum (2).",
            "Code: 319, e.displayText() = DB::Exception: Unknown status, client must retry. Reason: Timeout while waiting for quorum",
            "Code: 286, e.displayText() = DB::Exception: Quorum for previous write has not been satisfied yet.",
        ] {
            let code = code_of(message).unwrap();
            assert_eq!(classify_code(code), ErrorClass::Transient, "{message}");
        }
        assert!(ErrorClass::Unknown.is_retriable());
        assert!(!ErrorClass::Data.is_retriable());
        assert!(!ErrorClass::Shape.is_retriable());
    }

    /// The message of ClickHouse 26.9 (chDB) for an INSERT spanning 150 months.
    const PARTITIONS: &str = "Code: 252. DB::Exception: Too many partitions for single INSERT \
        block (more than 100). The limit is controlled by 'max_partitions_per_insert_block' \
        setting. Large number of partitions is a common misconception. (TOO_MANY_PARTS)";

    #[test]
    fn too_many_partitions_is_a_shape_error_and_too_many_parts_is_not() {
        assert_eq!(classify(252, PARTITIONS), ErrorClass::Shape);
        assert_eq!(partition_limit(PARTITIONS), Some(100));
        let parts = "Code: 252. DB::Exception: Too many parts (300). Merges are processing \
                     significantly slower than inserts. (TOO_MANY_PARTS)";
        assert_eq!(classify(252, parts), ErrorClass::Transient);
        assert_eq!(partition_limit(parts), None);
        assert_eq!(classify(27, "Code: 27. Cannot parse"), ErrorClass::Data);
    }
}
