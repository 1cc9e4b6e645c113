#!/usr/bin/env bash
# Smoke test of the local ClickHouse cluster (deploy/local/cluster.sh): the DDL and insert
# shapes a sharded, replicated deployment relies on, checked end to end.
#
# Usage: scripts/cluster-smoke.sh
#
# Uses the running cluster, or starts one and stops it at the end. In a database of its own
# (dropped at the end) it creates ON CLUSTER a ReplicatedReplacingMergeTree table and a
# Distributed table over it, inserts RowBinary through node 1 with
# insert_distributed_sync=1, inserts changed copies of some keys through node 3, and
# reads through node 4: both shards and all four replicas hold rows, and FINAL on the
# Distributed table collapses the copies. Prints PASS/FAIL lines; exits 1 on a failure.
#
# Environment: ADJUST_SINK_CLUSTER_BASE_PORT and ADJUST_SINK_CLUSTER_DIR, as for
# deploy/local/cluster.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CLUSTER=adjust_local
DB="cluster_smoke_$$"
ROWS=1000
COPIES=100
# Replicas fetch each other's parts asynchronously: reads poll this long for them.
CATCH_UP_TIMEOUT=60

failures=0
pass() { echo "PASS $*"; }
fail() {
    echo "FAIL $*"
    failures=$((failures + 1))
}

started=0
created=0
cleanup() {
    if [ "$created" = 1 ]; then
        created=0
        if ddl "DROP DATABASE IF EXISTS $DB ON CLUSTER $CLUSTER" >/dev/null; then
            pass "drop database $DB on cluster"
        else
            fail "drop database $DB on cluster"
        fi
    fi
    if [ "$started" = 1 ]; then
        started=0
        echo "==> stopping the local cluster"
        deploy/local/cluster.sh stop || true
    fi
}
trap cleanup EXIT

echo "==> local ClickHouse cluster"
if ! deploy/local/cluster.sh status >/dev/null 2>&1; then
    # Stopped at the end only when nothing of it ran before.
    # (Not `status | grep -q`: with pipefail, grep leaving early can fail the pipeline.)
    cluster_state="$(deploy/local/cluster.sh status 2>/dev/null || true)"
    if [[ "$cluster_state" != *' up '* ]]; then
        started=1
    fi
    deploy/local/cluster.sh start >/dev/null
fi
mapfile -t URLS < <(deploy/local/cluster.sh urls)
echo "nodes: ${URLS[*]}"

# query N SQL [URL parameters]: runs SQL on node N (1-4); fails on an HTTP error.
query() {
    curl -sS --fail-with-body --max-time 120 "${URLS[$1 - 1]}/?${3:-}" --data-binary "$2"
}

# ddl SQL: runs an ON CLUSTER statement through node 1 and waits for every node.
ddl() { query 1 "$1" "distributed_ddl_task_timeout=60"; }

# check NAME EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then
        pass "$1 ($3)"
    else
        fail "$1: expected $2, got $3"
    fi
}

# poll N SQL EXPECTED: runs SQL on node N until it returns EXPECTED or the catch-up
# timeout passes; prints the last result.
poll() {
    local deadline=$((SECONDS + CATCH_UP_TIMEOUT)) got
    while :; do
        got="$(query "$1" "$2" 2>&1)" || true
        if [ "$got" = "$3" ] || [ "$SECONDS" -ge "$deadline" ]; then
            echo "$got"
            return 0
        fi
        sleep 0.5
    done
}

step_ddl() {
    local out
    if out="$(ddl "$2" 2>&1)"; then
        pass "$1"
    else
        fail "$1: $out"
        exit 1
    fi
}

echo "==> DDL ON CLUSTER $CLUSTER (database $DB)"
created=1
step_ddl "create database on cluster" "CREATE DATABASE IF NOT EXISTS $DB ON CLUSTER $CLUSTER"
step_ddl "create replicated local table on cluster" \
    "CREATE TABLE IF NOT EXISTS $DB.events_local ON CLUSTER $CLUSTER (
        id UInt64,
        received_at DateTime('UTC'),
        kind String,
        extra Nested(key String, value String)
    ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/$DB/events_local', '{replica}')
    PARTITION BY toYYYYMM(received_at)
    ORDER BY id"
step_ddl "create distributed table on cluster" \
    "CREATE TABLE IF NOT EXISTS $DB.events ON CLUSTER $CLUSTER AS $DB.events_local
    ENGINE = Distributed($CLUSTER, $DB, events_local, id)"

# How a check finds a node that lacks a table on 18.16 (no clusterAllReplicas): remote()
# over every replica address of the cluster, each address its own shard.
addresses="$(query 1 "SELECT arrayStringConcat(groupArray(concat(host_address, ':', toString(port))), ',')
    FROM system.clusters WHERE cluster = '$CLUSTER'")"
check "both tables on every node" "events	4
events_local	4" "$(query 1 "SELECT name, count() FROM remote('$addresses', system.tables)
    WHERE database = '$DB' GROUP BY name ORDER BY name" 2>&1)"

echo "==> inserts through the Distributed table (insert_distributed_sync=1)"
# RowBinary produced by the server itself, the shape adjust-sink sends.
rows="$(mktemp)"
copies="$(mktemp)"
trap 'rm -f "$rows" "$copies"; cleanup' EXIT
query 1 "SELECT number AS id, toDateTime('2024-01-01 00:00:00', 'UTC') + number * 3600 AS received_at,
    'install' AS kind, ['k'] AS extra_key, [toString(number)] AS extra_value
    FROM system.numbers LIMIT $ROWS FORMAT RowBinary" >"$rows"
query 1 "SELECT number * 7 AS id, toDateTime('2024-01-01 00:00:00', 'UTC') + number * 7 * 3600 AS received_at,
    'copy' AS kind, emptyArrayString() AS extra_key, emptyArrayString() AS extra_value
    FROM system.numbers LIMIT $COPIES FORMAT RowBinary" >"$copies"

insert() {
    local out
    if out="$(curl -sS --fail-with-body --max-time 120 \
        "${URLS[$1 - 1]}/?insert_distributed_sync=1&query=INSERT%20INTO%20$DB.events%20FORMAT%20RowBinary" \
        --data-binary "@$2" 2>&1)"; then
        pass "$3"
    else
        fail "$3: $out"
        exit 1
    fi
}
insert 1 "$rows" "insert $ROWS rows through node 1"
insert 3 "$copies" "insert $COPIES changed copies through node 3"

echo "==> reads"
total=$((ROWS + COPIES))
# Node 4 reads shard 2 locally and shard 1 from a replica of its choice; replicas catch up
# asynchronously, hence the polling.
check "rows through node 4" "$total" "$(poll 4 "SELECT count() FROM $DB.events" "$total")"
# Rows are sharded by `id`: shard 1 holds the even keys, shard 2 the odd ones. Both
# replicas of a shard end up with the same rows.
for n in 1 2 3 4; do
    shard=$(((n + 1) / 2))
    expected="$(query 1 "SELECT count() FROM $DB.events WHERE id % 2 = $((shard - 1))")"
    got="$(poll "$n" "SELECT count() FROM $DB.events_local" "$expected")"
    stray="$(query "$n" "SELECT count() FROM $DB.events_local WHERE id % 2 != $((shard - 1))")"
    if [ "$got" = "$expected" ] && [ "$got" -gt 0 ] && [ "$stray" = 0 ]; then
        pass "node $n (shard $shard) holds exactly its shard's rows ($got)"
    else
        fail "node $n (shard $shard): expected $expected rows and no other shard's, got $got and $stray"
    fi
done
check "FINAL through node 2 collapses the copies" "$ROWS" \
    "$(query 2 "SELECT count() FROM $DB.events FINAL")"
check "FINAL keeps the last copy of each key" "$COPIES" \
    "$(query 4 "SELECT countIf(kind = 'copy') FROM $DB.events FINAL")"
check "Nested column read back" "['k']	['1']" \
    "$(query 3 "SELECT extra.key, extra.value FROM $DB.events FINAL WHERE id = 1")"

cleanup
trap - EXIT
rm -f "$rows" "$copies"
if [ "$failures" -gt 0 ]; then
    echo "==> cluster smoke test: $failures check(s) FAILED"
    exit 1
fi
echo "==> cluster smoke test passed"
