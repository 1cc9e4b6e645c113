#!/usr/bin/env bash
# End-to-end throughput benchmark of adjust-sink against a local ClickHouse server.
#
# Usage: scripts/bench.sh
#
# One run measures, with the same load generator settings (examples/loadgen.rs):
#   (a) ceiling   the bare HTTP ceiling (examples/ceiling.rs), flat out
#   (b) memory    adjust-sink --durability memory into a fresh database, flat out; then waits for
#                 the sink to drain and checks that every acknowledged callback landed
#                 (ClickHouse's CPU per row is read once no merge runs in its database)
#   (c) wal       the same with --durability wal
#   (d) half      p50/p99/p99.9 at half of (c)'s rate, against the wal sink of (c), with how many
#                 of its group commits took over 5 and 25 ms, and the p99 split into service time
#                 (actual send to answer) and how late the sends went out
#   (d') half_memory the same rate and measures against a fresh memory sink (no fsync on the
#                 path: the difference in the tail is the log's and its disk's)
#   (d'') half_ceiling the same rate against the bare HTTP server of (a): what of the latency
#                 is the generator's and the host's, with no sink behind the answers
#   (c') wal_many the wal sink at BENCH_MANY_CONNECTIONS connections, against the ceiling there
#   (c'') wal_wide the wal sink with wide installs (every placeholder of the install callback's
#                 `standard` URL, ~175 values), against the ceiling with the same queries
#   (c''') wal_wide_one the same with one wide install repeated (a unique nonce per request, the
#                 rest of the URL the same, as one install's URL sent over and over), against the
#                 ceiling with the same query: values that repeat compress, random ones do not
#   (r) rollups   the wal sink four more times, alternately with and without the rollups'
#                 materialized views (`<rollup>_activities_mv` dropped from a fresh database):
#                 the rollups' upkeep is the difference in ClickHouse CPU per row and in rate
#                 (means of the two runs of each, run back to back so that the machine's
#                 drift falls on both alike)
#   (m) log cost  BENCH_LOG_PAIRS (default 3) more pairs of a memory and a wal sink flat out,
#                 each pair back to back (alternating which goes first): the median of the pairs'
#                 differences in sink CPU per callback, the log's cost with the drift between
#                 two runs spread over the pairs
#   (e) overload  a memory sink at twice (b)'s rate: 503 count, peak RSS, liveness, and whether
#                 a request right afterwards is answered 200
# and prints the figures; a machine-readable copy goes to target/bench/summary.txt.
#
# Environment:
#   BENCH_DURATION           length of each flat-out and half-rate run (default 15s)
#   BENCH_CONNECTIONS        load generator connections (default 64)
#   BENCH_MANY_CONNECTIONS   connections of the many-connections case (default 1024)
#   BENCH_OVERLOAD_DURATION  length of the overload run (default 10s)
#   BENCH_LOADGEN_THREADS    load generator threads (default 1)
#   BENCH_SINK_ARGS          extra flags for every sink (e.g. "--batch-max-rows 200000
#                            --batch-max-age 5s" to compare batch shapes)
#   BENCH_LOG_PAIRS          interleaved memory/wal pairs of (m) (default 3)
#   BENCH_BASELINE           path of another adjust-sink binary (e.g. an earlier release) to run
#                            as (b') with --durability wal in the same run, for comparison
#   BENCH_KEEP_DB=1          keep the bench_* databases and the sinks' data directories
#                            (dropped at the end otherwise)
#   BENCH_CLUSTER=1          instead of (a)-(e), the cluster mode: against the local cluster
#                            (deploy/local/cluster.sh: two shards of two replicas; started when it
#                            does not run, stopped at the end in that case), (1) one
#                            --durability wal sink writing through node 1, flat out, then (2) two
#                            such sinks (through nodes 1 and 3, each with its own data directory)
#                            with the connections split between them; each run checks that the
#                            rows in the Distributed table (FINAL) equal the acknowledged callbacks
#
# The local ClickHouse server (deploy/local/clickhouse.sh) is started when it does not run, and
# stopped at the end only in that case. Exits non-zero when a check fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

DURATION="${BENCH_DURATION:-15s}"
# The many-connections case opens over a thousand sockets in the generator and in each server.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
WIDE_CONNECTIONS="${BENCH_MANY_CONNECTIONS:-1024}"
OVERLOAD_DURATION="${BENCH_OVERLOAD_DURATION:-10s}"
THREADS="${BENCH_LOADGEN_THREADS:-1}"
OUT=target/bench
SINK=target/release/adjust-sink
LOADGEN=target/release/examples/loadgen
CEILING=target/release/examples/ceiling
DRAIN_TIMEOUT=60
SETTLE_TIMEOUT=120
TS="$(date -u +%Y%m%d_%H%M%S)"

step() { echo "==> $*" >&2; }
die() {
    echo "bench.sh: $*" >&2
    exit 1
}

# --- processes ------------------------------------------------------------------------

PIDS=()
STARTED_CLICKHOUSE=0
STARTED_CLUSTER=0
ON_CLUSTER=""
DATABASES=()
CH_URL=""

stop_pid() { # pid [timeout seconds]
    local pid="$1" timeout="${2:-40}" deadline
    kill -0 "$pid" 2>/dev/null || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "bench.sh: pid $pid did not stop within ${timeout}s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? pid db
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid" 10
    done
    if [ -n "$CH_URL" ] && [ "${BENCH_KEEP_DB:-0}" != 1 ]; then
        for db in "${DATABASES[@]}"; do
            curl -sf --max-time 30 "$CH_URL/" --data-binary "DROP DATABASE IF EXISTS $db$ON_CLUSTER" \
                >/dev/null 2>&1 || true
        done
    fi
    if [ "${BENCH_KEEP_DB:-0}" != 1 ]; then
        rm -rf "$OUT"/data-*
    fi
    if [ "$STARTED_CLICKHOUSE" = 1 ]; then
        deploy/local/clickhouse.sh stop || true
    fi
    if [ "$STARTED_CLUSTER" = 1 ]; then
        deploy/local/cluster.sh stop || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() {
    local pid="$1" p keep=()
    for p in "${PIDS[@]}"; do
        [ "$p" = "$pid" ] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

# --- helpers --------------------------------------------------------------------------

# json_num KEY JSON: a number from the load generator's one-line report.
json_num() {
    printf '%s' "$2" | sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p"
}

# calc EXPR: floating point arithmetic (awk), printed with up to 3 decimals.
calc() {
    awk "BEGIN { v = $1; if (v == int(v)) printf \"%d\", v; else printf \"%.3f\", v }"
}

# probe MAIN: sends one callback with a fresh nonce; prints the HTTP status (000: no answer).
probe() {
    curl -s -o /dev/null --max-time 5 -w '%{http_code}' \
        "http://$1/adjust?activity_kind=click&app_token=4w565xzmb54d&adid=0123456789abcdef0123456789abcdef&created_at=$(date +%s)&nonce=probe$(date +%s%N)" ||
        true
}

# metrics ADMIN: the sink's metrics page (empty when the sink does not answer).
metrics() { curl -sf --max-time 5 "http://$1/metrics" || true; }

# metric ADMIN NAME: value of an unlabeled metric (0 when absent).
metric() {
    metrics "$1" | awk -v n="$2" '$1 == n { v = $2 } END { printf "%s", (v == "" ? 0 : v) }'
}

# cpu_ticks: "all steal" jiffies of every CPU so far (/proc/stat), for the share the host took.
cpu_ticks() {
    awk '$1 == "cpu" { for (i = 2; i <= NF; i++) t += $i; print t, $9 }' /proc/stat
}

# stolen_pct START: percent of the CPU time since START (a cpu_ticks line) that the hypervisor
# gave to other guests: on a shared machine, what makes two runs differ.
stolen_pct() {
    local t0 s0 t1 s1
    read -r t0 s0 <<<"$1"
    read -r t1 s1 <<<"$(cpu_ticks)"
    calc "$t1 > $t0 ? int(($s1 - $s0) * 1000 / ($t1 - $t0)) / 10 : 0"
}

# bucket ADMIN HISTOGRAM LE: a histogram's count of observations up to LE (as the sink writes it).
bucket() {
    metric "$1" "$2_bucket{le=\"$3\"}"
}

# answered_within ADMIN LE: accepted callbacks the sink answered within LE seconds, from the
# complete request to its answer (adjust_sink_request_duration_seconds).
answered_within() {
    metric "$1" "adjust_sink_request_duration_seconds_bucket{outcome=\"accepted\",route=\"global\",le=\"$2\"}"
}

# metric_sum ADMIN NAME: sum over every label set of a metric.
metric_sum() {
    metrics "$1" | awk -v n="$2" 'index($1, n "{") == 1 || $1 == n { s += $2 } END { if (s == int(s)) printf "%d", s; else printf "%.6f", s }'
}

clickhouse() { curl -sf --max-time 60 "$CH_URL/" --data-binary "$1"; }

# cpu_s PID: user + system CPU seconds PID has used so far (0 when it is gone).
cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null ||
        echo 0
}

# us_per_row PID CPU0 ROWS: PID's CPU since the reading CPU0 (cpu_s), in µs per row to one
# decimal (0 when ROWS is 0 or PID is empty).
us_per_row() {
    calc "$3 > 0 && \"$1\" != \"\" ? int(($(cpu_s "$1") - $2) * 1000000 / $3 * 10) / 10 : 0"
}

# The local ClickHouse server's pid (for its CPU time).
# ch_pid: the ClickHouse server's pid: from the pid file of deploy/local/clickhouse.sh, or else the
# process listening on the HTTP port (a server started from another checkout).
ch_pid() {
    cat "${ADJUST_SINK_CH_DIR:-target/clickhouse-local}/clickhouse-server.pid" 2>/dev/null && return
    ss -Hltnp "sport = :${CH_URL##*:}" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1
}

vm_hwm_mb() { # peak resident set size of PID in MB
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# loadgen NAME URL [args...]: runs the load generator, saves and prints the JSON report.
loadgen() {
    local name="$1" url="$2" report
    shift 2
    report="$("$LOADGEN" --url "$url" --connections "$CONNECTIONS" --threads "$THREADS" \
        --json ${LOADGEN_ARGS:-} "$@")" || die "loadgen ($name) failed"
    printf '%s\n' "$report" >"$OUT/loadgen-$name.json"
    printf '%s' "$report"
}

# start_sink MODE DATABASE [args...]: starts a sink ($SINK_BIN, default $SINK); sets SINK_PID,
# SINK_MAIN, SINK_ADMIN.
start_sink() {
    local mode="$1" db="$2" log="$OUT/sink-$1.log" line deadline
    shift 2
    rm -rf "$OUT/data-$mode"
    "${SINK_BIN:-$SINK}" serve \
        --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
        --clickhouse-url "$CH_URL" --database "$db" \
        --no-default-allow --allow 127.0.0.1/32 \
        --data-dir "$OUT/data-$mode" --durability "${DURABILITY:-$mode}" \
        ${BENCH_SINK_ARGS:-} "$@" </dev/null >"$log" 2>&1 &
    SINK_PID=$!
    PIDS+=("$SINK_PID")
    DATABASES+=("$db")
    deadline=$((SECONDS + 30))
    line=""
    while [ -z "$line" ]; do
        kill -0 "$SINK_PID" 2>/dev/null || {
            tail -n 20 "$log" >&2
            die "the $mode sink exited during startup (log: $log)"
        }
        [ "$SECONDS" -lt "$deadline" ] || die "the $mode sink did not start within 30 s"
        sleep 0.1
        line="$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -m1 'listening main=' || true)"
    done
    SINK_MAIN="$(printf '%s' "$line" | sed -n 's/.*listening main=\([^ ]*\).*/\1/p')"
    SINK_ADMIN="$(printf '%s' "$line" | sed -n 's/.* admin=\([^ ]*\).*/\1/p')"
    [ -n "$SINK_MAIN" ] && [ -n "$SINK_ADMIN" ] || die "cannot parse the listen line: $line"
    # Load starts once one callback went all the way (the table exists, ClickHouse answers);
    # that warm-up row counts among the rows expected in the database.
    local code
    code="$(probe "$SINK_MAIN")"
    [ "$code" = 200 ] || die "the $mode sink answered $code to the warm-up callback"
    SINK_EXTRA=1
    deadline=$((SECONDS + 30))
    until [ "$(metric "$SINK_ADMIN" adjust_sink_rows_written_total)" = 1 ]; do
        [ "$SECONDS" -lt "$deadline" ] ||
            die "the $mode sink did not deliver its warm-up callback in 30 s (log: $log)"
        sleep 0.1
    done
}

# drain ADMIN EXPECTED: waits until the sink wrote EXPECTED rows; prints the seconds it took.
drain() {
    local admin="$1" want="$2" start=$SECONDS written
    while :; do
        written="$(metric "$admin" adjust_sink_rows_written_total)"
        [ "${written%.*}" -ge "$want" ] && break
        if [ $((SECONDS - start)) -ge "$DRAIN_TIMEOUT" ]; then
            echo "bench.sh: drain timeout: $written of $want rows written after ${DRAIN_TIMEOUT}s" >&2
            break
        fi
        sleep 0.25
    done
    echo $((SECONDS - start))
}

# settle DATABASE: waits until ClickHouse runs no merge in DATABASE and the database's active
# parts have stayed the same for 3 s (at most SETTLE_TIMEOUT s); prints the seconds waited. Read
# after it, ClickHouse's CPU holds the merges running at the drain as well as the INSERTs (read at
# the drain, the next case paid for them); merges the server has not chosen yet are still left
# out (benches/README.md).
settle() {
    local db="$1" start=$SECONDS merges parts last="" same=0
    while [ $((SECONDS - start)) -lt "$SETTLE_TIMEOUT" ]; do
        merges="$(clickhouse "SELECT count() FROM system.merges WHERE database = '$db'")" || merges=1
        parts="$(clickhouse "SELECT count(), max(modification_time) FROM system.parts WHERE database = '$db' AND active FORMAT TSV")" || parts=""
        if [ "$merges" = 0 ] && [ -n "$parts" ] && [ "$parts" = "$last" ]; then
            same=$((same + 1))
            [ "$same" -ge 3 ] && break
        else
            same=0
        fi
        last="$parts"
        sleep 1
    done
    echo $((SECONDS - start))
}

# landed DATABASE: "count uniq" of the callbacks table after FINAL.
landed() {
    clickhouse "SELECT count(), uniqExact(callback_id) FROM $1.callbacks FINAL FORMAT TSV" |
        tr '\t' ' '
}

declare -A R # every figure, by name
CHECKS_FAILED=0

check() { # NAME OK(0/1) DETAIL
    if [ "$2" = 1 ]; then
        R[check_$1]=PASS
    else
        R[check_$1]=FAIL
        CHECKS_FAILED=1
    fi
    echo "    check $1: ${R[check_$1]} ($3)" >&2
}

# run_sink_phase MODE: (b)/(c): flat-out load, drain, verify; leaves the sink running.
run_sink_phase() {
    local mode="$1" db="bench_${TS}_$1" report ok want flushes0 flushes1 bsum0 bsum1 bcount0 bcount1
    local bbytes0 bbytes1 isum0 isum1 icount0 icount1 dur waited count uniq
    step "($mode) adjust-sink --durability $mode, database $db"
    start_sink "$mode" "$db"
    if [ "${NO_ROLLUPS:-0}" = 1 ]; then
        local mv
        for mv in installs_daily revenue_daily rejects_daily; do
            clickhouse "DROP TABLE IF EXISTS $db.${mv}_activities_mv" >/dev/null ||
                die "cannot drop $db.${mv}_activities_mv"
        done
    fi
    flushes0="$(metric_sum "$SINK_ADMIN" adjust_sink_flushes_total)"
    bsum0="$(metric "$SINK_ADMIN" adjust_sink_batch_rows_sum)"
    bbytes0="$(metric "$SINK_ADMIN" adjust_sink_batch_bytes_sum)"
    isum0="$(metric_sum "$SINK_ADMIN" adjust_sink_insert_duration_seconds_sum)"
    icount0="$(metric_sum "$SINK_ADMIN" adjust_sink_insert_duration_seconds_count)"
    bcount0="$(metric "$SINK_ADMIN" adjust_sink_batch_rows_count)"
    local written0 sink_cpu0 ch_cpu0 chpid fsyncs0 fsyncs1 pushed0 pushed1
    chpid="$(ch_pid)"
    written0="$(metric "$SINK_ADMIN" adjust_sink_rows_written_total)"
    fsyncs0="$(metric "$SINK_ADMIN" adjust_sink_wal_fsyncs_total)"
    pushed0="$(metric "$SINK_ADMIN" adjust_sink_queue_rows_pushed_total)"
    sink_cpu0="$(cpu_s "$SINK_PID")"
    ch_cpu0="$(cpu_s "$chpid")"
    report="$(loadgen "$mode" "http://$SINK_MAIN" --duration "$DURATION")"
    flushes1="$(metric_sum "$SINK_ADMIN" adjust_sink_flushes_total)"
    fsyncs1="$(metric "$SINK_ADMIN" adjust_sink_wal_fsyncs_total)"
    pushed1="$(metric "$SINK_ADMIN" adjust_sink_queue_rows_pushed_total)"
    echo "    $report" >&2
    ok="$(json_num ok "$report")"
    dur="$(json_num duration_s "$report")"
    # Group commit: fsyncs of the write-ahead log per second, and callbacks per fsync.
    R[${mode}_fsyncs_per_s]="$(calc "int(($fsyncs1 - $fsyncs0) / $dur)")"
    R[${mode}_callbacks_per_fsync]="$(calc "$fsyncs1 > $fsyncs0 ? int(($pushed1 - $pushed0) / ($fsyncs1 - $fsyncs0) * 10) / 10 : 0")"
    R[${mode}_rate]="$(json_num rate "$report")"
    R[${mode}_ok_rate]="$(json_num ok_rate "$report")"
    R[${mode}_requests]="$(json_num requests "$report")"
    R[${mode}_acknowledged]="$ok"
    R[${mode}_status_503]="$(json_num status_503 "$report")"
    R[${mode}_errors]="$(json_num errors "$report")"
    R[${mode}_p50_ms]="$(json_num p50_ms "$report")"
    R[${mode}_p99_ms]="$(json_num p99_ms "$report")"
    R[${mode}_p999_ms]="$(json_num p999_ms "$report")"
    R[${mode}_inserts_per_s]="$(calc "($flushes1 - $flushes0) / $dur")"
    want=$((ok + SINK_EXTRA))
    waited="$(drain "$SINK_ADMIN" "$want")"
    R[${mode}_drain_s]="$waited"
    # CPU per row, from /proc of each process: the sink's over the load and the drain, and the
    # ClickHouse server's over those and until the merges they set off are done (settle).
    local written1 rows
    written1="$(metric "$SINK_ADMIN" adjust_sink_rows_written_total)"
    rows="$(calc "${written1%.*} - ${written0%.*}")"
    R[${mode}_sink_cpu_us_per_row]="$(us_per_row "$SINK_PID" "$sink_cpu0" "$rows")"
    R[${mode}_settle_s]="$(settle "$db")"
    R[${mode}_clickhouse_cpu_us_per_row]="$(us_per_row "$chpid" "$ch_cpu0" "$rows")"
    R[${mode}_rows_written]="$(metric "$SINK_ADMIN" adjust_sink_rows_written_total)"
    # Batches of the load only (the warm-up batch is left out).
    bsum1="$(metric "$SINK_ADMIN" adjust_sink_batch_rows_sum)"
    bcount1="$(metric "$SINK_ADMIN" adjust_sink_batch_rows_count)"
    R[${mode}_batches]="$(calc "$bcount1 - $bcount0")"
    R[${mode}_avg_batch_rows]="$(calc "$bcount1 > $bcount0 ? ($bsum1 - $bsum0) / ($bcount1 - $bcount0) : 0")"
    bbytes1="$(metric "$SINK_ADMIN" adjust_sink_batch_bytes_sum)"
    R[${mode}_avg_row_bytes]="$(calc "$bsum1 > $bsum0 ? int(($bbytes1 - $bbytes0) / ($bsum1 - $bsum0)) : 0")"
    isum1="$(metric_sum "$SINK_ADMIN" adjust_sink_insert_duration_seconds_sum)"
    icount1="$(metric_sum "$SINK_ADMIN" adjust_sink_insert_duration_seconds_count)"
    R[${mode}_avg_insert_ms]="$(calc "$icount1 > $icount0 ? int(($isum1 - $isum0) / ($icount1 - $icount0) * 1000) : 0")"
    R[${mode}_flushes]="$(metric_sum "$SINK_ADMIN" adjust_sink_flushes_total)"
    R[${mode}_peak_rss_mb]="$(vm_hwm_mb "$SINK_PID")"
    read -r count uniq <<<"$(landed "$db")"
    R[${mode}_rows_landed]="$count"
    R[${mode}_rows_unique]="$uniq"
    check "${mode}_landed" "$([ "$count" = "$want" ] && [ "$uniq" = "$want" ] && echo 1 || echo 0)" \
        "acknowledged $want (1 warm-up), landed $count, unique callback_id $uniq"
}

# --- build and ClickHouse -------------------------------------------------------------

mkdir -p "$OUT"
step "building (release): adjust-sink, examples loadgen and ceiling"
cargo build --release --bin adjust-sink --example loadgen --example ceiling

# --- cluster mode ---------------------------------------------------------------------

# landed_when DATABASE WANT: "count uniq" after FINAL once it equals WANT, or after 60 s
# (replicas fetch each other's parts asynchronously, and reads may go to either replica).
landed_when() {
    local got deadline=$((SECONDS + 60))
    while :; do
        got="$(landed "$1")"
        if [ "$got" = "$2 $2" ] || [ "$SECONDS" -ge "$deadline" ]; then
            break
        fi
        sleep 0.5
    done
    printf '%s' "$got"
}

if [ "${BENCH_CLUSTER:-0}" = 1 ]; then
    step "local ClickHouse cluster"
    # (Not `status | grep -q`: with pipefail, grep leaving early can fail the pipeline.)
    cluster_state="$(deploy/local/cluster.sh status 2>/dev/null || true)"
    if [[ "$cluster_state" != *' up '* ]]; then
        STARTED_CLUSTER=1
    fi
    deploy/local/cluster.sh start >/dev/null
    mapfile -t NODES < <(deploy/local/cluster.sh urls)
    CH_URL="${NODES[0]}"
    ON_CLUSTER=" ON CLUSTER adjust_local"
    CH_VERSION="$(clickhouse 'SELECT version()')"
    echo "    ${NODES[*]} (ClickHouse $CH_VERSION, cluster adjust_local)" >&2
    R[loadavg_start]="$(cut -d' ' -f1-3 /proc/loadavg)"
    TICKS_START="$(cpu_ticks)"

    # (1) one sink through node 1.
    db="bench_${TS}_cluster1"
    step "(1) one wal sink through node 1, database $db"
    DURABILITY=wal start_sink cl1 "$db" --cluster adjust_local
    A_ADMIN="$SINK_ADMIN"
    A_PID="$SINK_PID"
    cpu0="$(cpu_s "$A_PID")"
    report="$(loadgen cl1 "http://$SINK_MAIN" --duration "$DURATION")"
    echo "    $report" >&2
    ok1="$(json_num ok "$report")"
    R[one_ok_rate]="$(json_num ok_rate "$report")"
    R[one_p99_ms]="$(json_num p99_ms "$report")"
    R[one_status_503]="$(json_num status_503 "$report")"
    want1=$((ok1 + 1))
    R[one_drain_s]="$(drain "$A_ADMIN" "$want1")"
    R[one_sink_cpu_us_per_row]="$(us_per_row "$A_PID" "$cpu0" "$want1")"
    read -r count uniq <<<"$(landed_when "$db" "$want1")"
    R[one_acknowledged]="$want1"
    R[one_landed]="$count"
    check cluster_one_landed "$([ "$count" = "$want1" ] && [ "$uniq" = "$want1" ] && echo 1 || echo 0)" \
        "acknowledged $want1 (1 warm-up), landed $count, unique callback_id $uniq"
    stop_pid "$A_PID"
    forget_pid "$A_PID"

    # (2) two sinks, through node 1 and node 3, the connections split between them.
    db="bench_${TS}_cluster2"
    step "(2) two wal sinks through node 1 and node 3, database $db"
    DURABILITY=wal start_sink cl2a "$db" --cluster adjust_local
    A_MAIN="$SINK_MAIN"
    A_ADMIN="$SINK_ADMIN"
    A_PID="$SINK_PID"
    DURABILITY=wal start_sink cl2b "$db" --cluster adjust_local --clickhouse-url "${NODES[2]}"
    B_MAIN="$SINK_MAIN"
    B_ADMIN="$SINK_ADMIN"
    B_PID="$SINK_PID"
    cpu0="$(calc "$(cpu_s "$A_PID") + $(cpu_s "$B_PID")")"
    full="$CONNECTIONS"
    CONNECTIONS=$(((full + 1) / 2))
    loadgen cl2a "http://$A_MAIN" --duration "$DURATION" >/dev/null &
    LA=$!
    loadgen cl2b "http://$B_MAIN" --duration "$DURATION" >/dev/null &
    LB=$!
    wait "$LA" || die "loadgen (cl2a) failed"
    wait "$LB" || die "loadgen (cl2b) failed"
    CONNECTIONS="$full"
    ra="$(cat "$OUT/loadgen-cl2a.json")"
    rb="$(cat "$OUT/loadgen-cl2b.json")"
    echo "    A: $ra" >&2
    echo "    B: $rb" >&2
    oka="$(json_num ok "$ra")"
    okb="$(json_num ok "$rb")"
    pa="$(json_num p99_ms "$ra")"
    pb="$(json_num p99_ms "$rb")"
    R[two_ok_rate]="$(calc "$(json_num ok_rate "$ra") + $(json_num ok_rate "$rb")")"
    R[two_p99_ms]="$(calc "$pa > $pb ? $pa : $pb")"
    R[two_status_503]="$(calc "$(json_num status_503 "$ra") + $(json_num status_503 "$rb")")"
    drain "$A_ADMIN" $((oka + 1)) >/dev/null
    drain "$B_ADMIN" $((okb + 1)) >/dev/null
    want2=$((oka + okb + 2))
    cpu1="$(calc "$(cpu_s "$A_PID") + $(cpu_s "$B_PID")")"
    R[two_sink_cpu_us_per_row]="$(calc "int(($cpu1 - $cpu0) * 1000000 / $want2 * 10) / 10")"
    read -r count uniq <<<"$(landed_when "$db" "$want2")"
    R[two_acknowledged]="$want2"
    R[two_landed]="$count"
    check cluster_two_landed "$([ "$count" = "$want2" ] && [ "$uniq" = "$want2" ] && echo 1 || echo 0)" \
        "acknowledged $want2 (2 warm-ups), landed $count, unique callback_id $uniq"
    shard1="$(curl -sf "${NODES[0]}/" --data-binary "SELECT count() FROM $db.callbacks_local")"
    shard2="$(curl -sf "${NODES[2]}/" --data-binary "SELECT count() FROM $db.callbacks_local")"
    R[loadavg_end]="$(cut -d' ' -f1-3 /proc/loadavg)"
    R[cpu_stolen_pct]="$(stolen_pct "$TICKS_START")"
    {
        echo "# scripts/bench.sh (BENCH_CLUSTER=1) $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        for k in "${!R[@]}"; do
            echo "$k=${R[$k]}"
        done | sort
    } >"$OUT/summary-cluster.txt"

    cat <<EOF

adjust-sink cluster benchmark ($(nproc) cores; ClickHouse $CH_VERSION, cluster adjust_local:
2 shards x 2 replicas and ZooKeeper on the same machine)
loadgen: $CONNECTIONS connections in all, $THREADS thread(s) per generator, $DURATION per run, --durability wal
load average before/after: ${R[loadavg_start]} / ${R[loadavg_end]}; CPU time taken by the host (steal): ${R[cpu_stolen_pct]} %

                              acked/s   p99 ms    503  sink CPU/row us  acknowledged  landed (FINAL)
  (1) one sink (node 1)     $(printf '%9s %8s %6s %16s %13s %15s' "${R[one_ok_rate]}" "${R[one_p99_ms]}" "${R[one_status_503]}" "${R[one_sink_cpu_us_per_row]}" "${R[one_acknowledged]}" "${R[one_landed]}")
  (2) two sinks (nodes 1+3) $(printf '%9s %8s %6s %16s %13s %15s' "${R[two_ok_rate]}" "${R[two_p99_ms]}" "${R[two_status_503]}" "${R[two_sink_cpu_us_per_row]}" "${R[two_acknowledged]}" "${R[two_landed]}")
  rows per shard after (2): shard 1 $shard1, shard 2 $shard2

checks
  one sink: rows landed == acknowledged     ${R[check_cluster_one_landed]}
  two sinks: rows landed == acknowledged    ${R[check_cluster_two_landed]}

summary: $OUT/summary-cluster.txt
EOF
    exit "$CHECKS_FAILED"
fi

step "local ClickHouse"
if ! deploy/local/clickhouse.sh status >/dev/null 2>&1; then
    STARTED_CLICKHOUSE=1
fi
CH_URL="$(deploy/local/clickhouse.sh start)"
CH_VERSION="$(clickhouse 'SELECT version()')"
echo "    $CH_URL (ClickHouse $CH_VERSION)" >&2

R[machine_nproc]="$(nproc)"
R[machine_cpu]="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1 | tr ' ' '_')"
R[clickhouse_version]="$CH_VERSION"
R[duration]="$DURATION"
R[connections]="$CONNECTIONS"
R[loadgen_threads]="$THREADS"
R[loadavg_start]="$(cut -d' ' -f1-3 /proc/loadavg)"
TICKS_START="$(cpu_ticks)"

# --- (a) ceiling ----------------------------------------------------------------------

# start_ceiling: starts the bare HTTP server; sets CEILING_PID and CEILING_ADDR.
start_ceiling() {
    local deadline
    "$CEILING" --listen 127.0.0.1:0 >"$OUT/ceiling.out" 2>"$OUT/ceiling.log" </dev/null &
    CEILING_PID=$!
    PIDS+=("$CEILING_PID")
    deadline=$((SECONDS + 20))
    until grep -q '^listening ' "$OUT/ceiling.out" 2>/dev/null; do
        kill -0 "$CEILING_PID" 2>/dev/null || die "the ceiling server exited (log: $OUT/ceiling.log)"
        [ "$SECONDS" -lt "$deadline" ] || die "the ceiling server did not start within 20 s"
        sleep 0.1
    done
    CEILING_ADDR="$(awk '/^listening / { print $2; exit }' "$OUT/ceiling.out")"
}

step "(a) bare HTTP ceiling"
start_ceiling
report="$(loadgen ceiling "http://$CEILING_ADDR" --duration "$DURATION")"
echo "    $report" >&2
R[ceiling_rate]="$(json_num rate "$report")"
R[ceiling_ok_rate]="$(json_num ok_rate "$report")"
R[ceiling_p50_ms]="$(json_num p50_ms "$report")"
R[ceiling_p99_ms]="$(json_num p99_ms "$report")"
R[ceiling_p999_ms]="$(json_num p999_ms "$report")"
# The standard cases beside the ~1 KB callback at $CONNECTIONS connections: the same at
# $WIDE_CONNECTIONS connections, and wide installs (~175 values, every placeholder of the install's
# `standard` URL) at $CONNECTIONS.
report="$(CONNECTIONS=$WIDE_CONNECTIONS loadgen ceiling_many "http://$CEILING_ADDR" --duration "$DURATION")"
echo "    $report" >&2
R[ceiling_many_ok_rate]="$(json_num ok_rate "$report")"
R[ceiling_many_p99_ms]="$(json_num p99_ms "$report")"
report="$(LOADGEN_ARGS=--wide loadgen ceiling_wide "http://$CEILING_ADDR" --duration "$DURATION")"
echo "    $report" >&2
R[ceiling_wide_ok_rate]="$(json_num ok_rate "$report")"
R[ceiling_wide_p99_ms]="$(json_num p99_ms "$report")"
R[wide_query_bytes]="$(json_num avg_query_bytes "$report")"
report="$(LOADGEN_ARGS='--wide --pool 1' loadgen ceiling_wide_one "http://$CEILING_ADDR" --duration "$DURATION")"
echo "    $report" >&2
R[ceiling_wide_one_ok_rate]="$(json_num ok_rate "$report")"
R[ceiling_wide_one_p99_ms]="$(json_num p99_ms "$report")"
R[wide_one_query_bytes]="$(json_num avg_query_bytes "$report")"
stop_pid "$CEILING_PID" 10
forget_pid "$CEILING_PID"

# --- (b) memory -----------------------------------------------------------------------

run_sink_phase memory
stop_pid "$SINK_PID"
forget_pid "$SINK_PID"

# --- (b') baseline --------------------------------------------------------------------

if [ -n "${BENCH_BASELINE:-}" ]; then
    [ -x "$BENCH_BASELINE" ] || die "BENCH_BASELINE=$BENCH_BASELINE is not an executable"
    DURABILITY=wal SINK_BIN="$BENCH_BASELINE" run_sink_phase baseline
    stop_pid "$SINK_PID"
    forget_pid "$SINK_PID"
fi

# --- (c) wal, (d) half rate -----------------------------------------------------------

run_sink_phase wal
WAL_DB="bench_${TS}_wal"

HALF_RATE="$(awk "BEGIN { printf \"%.0f\", ${R[wal_ok_rate]} / 2 }")"
step "(d) wal sink at half its maximum rate: $HALF_RATE req/s"
FSYNC=adjust_sink_wal_fsync_duration_seconds
commits0="$(metric "$SINK_ADMIN" "${FSYNC}_count")"
le5ms0="$(bucket "$SINK_ADMIN" "$FSYNC" 0.005)"
le25ms0="$(bucket "$SINK_ADMIN" "$FSYNC" 0.025)"
# The sink's own answer times of the accepted callbacks: what the generator measures beyond them
# (it counts from each request's scheduled send) is spent outside the handler, by a connection's
# next request waiting behind a late answer or by a thread waiting for a core.
inside0="$(answered_within "$SINK_ADMIN" +Inf)"
inside5ms0="$(answered_within "$SINK_ADMIN" 0.005)"
inside10ms0="$(answered_within "$SINK_ADMIN" 0.01)"
sink_cpu0="$(cpu_s "$SINK_PID")"
report="$(loadgen half "http://$SINK_MAIN" --duration "$DURATION" --rate "$HALF_RATE")"
echo "    $report" >&2
ok_half="$(json_num ok "$report")"
R[half_sink_cpu_us_per_row]="$(us_per_row "$SINK_PID" "$sink_cpu0" "$ok_half")"
# Group commits during (d), and how many took longer than 5 and 25 ms: a callback waits for its
# group's commit, so slow ones (a disk shared with ClickHouse's parts) show in the tail.
commits1="$(metric "$SINK_ADMIN" "${FSYNC}_count")"
R[half_fsyncs]="$(calc "$commits1 - $commits0")"
R[half_fsyncs_over_5ms]="$(calc "$commits1 - $commits0 - ($(bucket "$SINK_ADMIN" "$FSYNC" 0.005) - $le5ms0)")"
R[half_fsyncs_over_25ms]="$(calc "$commits1 - $commits0 - ($(bucket "$SINK_ADMIN" "$FSYNC" 0.025) - $le25ms0)")"
inside1="$(answered_within "$SINK_ADMIN" +Inf)"
R[half_inside]="$(calc "$inside1 - $inside0")"
R[half_inside_over_5ms]="$(calc "$inside1 - $inside0 - ($(answered_within "$SINK_ADMIN" 0.005) - $inside5ms0)")"
R[half_inside_over_10ms]="$(calc "$inside1 - $inside0 - ($(answered_within "$SINK_ADMIN" 0.01) - $inside10ms0)")"
R[half_target_rate]="$HALF_RATE"
R[half_rate]="$(json_num rate "$report")"
R[half_acknowledged]="$ok_half"
R[half_p50_ms]="$(json_num p50_ms "$report")"
R[half_p99_ms]="$(json_num p99_ms "$report")"
R[half_p999_ms]="$(json_num p999_ms "$report")"
R[half_max_ms]="$(json_num max_ms "$report")"
R[half_service_p99_ms]="$(json_num service_p99_ms "$report")"
R[half_service_max_ms]="$(json_num service_max_ms "$report")"
R[half_late_p99_ms]="$(json_num late_p99_ms "$report")"
R[half_late_max_ms]="$(json_num late_max_ms "$report")"
R[half_status_503]="$(json_num status_503 "$report")"
want=$((R[wal_acknowledged] + ok_half + SINK_EXTRA))
drain "$SINK_ADMIN" "$want" >/dev/null
read -r count uniq <<<"$(landed "$WAL_DB")"
check half_landed "$([ "$count" = "$want" ] && [ "$uniq" = "$want" ] && echo 1 || echo 0)" \
    "acknowledged (c)+(d) $want (1 warm-up), landed $count, unique callback_id $uniq"
stop_pid "$SINK_PID"
forget_pid "$SINK_PID"

step "(d') memory sink at the same rate: $HALF_RATE req/s"
DURABILITY=memory start_sink half_memory "bench_${TS}_half_memory"
sink_cpu0="$(cpu_s "$SINK_PID")"
report="$(loadgen half_memory "http://$SINK_MAIN" --duration "$DURATION" --rate "$HALF_RATE")"
echo "    $report" >&2
ok_half="$(json_num ok "$report")"
R[half_memory_sink_cpu_us_per_row]="$(us_per_row "$SINK_PID" "$sink_cpu0" "$ok_half")"
R[half_memory_rate]="$(json_num rate "$report")"
R[half_memory_p50_ms]="$(json_num p50_ms "$report")"
R[half_memory_p99_ms]="$(json_num p99_ms "$report")"
R[half_memory_p999_ms]="$(json_num p999_ms "$report")"
R[half_memory_max_ms]="$(json_num max_ms "$report")"
R[half_memory_service_p99_ms]="$(json_num service_p99_ms "$report")"
R[half_memory_late_p99_ms]="$(json_num late_p99_ms "$report")"
want=$((ok_half + SINK_EXTRA))
drain "$SINK_ADMIN" "$want" >/dev/null
read -r count uniq <<<"$(landed "bench_${TS}_half_memory")"
check half_memory_landed "$([ "$count" = "$want" ] && [ "$uniq" = "$want" ] && echo 1 || echo 0)" \
    "acknowledged (d') $want (1 warm-up), landed $count, unique callback_id $uniq"
stop_pid "$SINK_PID"
forget_pid "$SINK_PID"

step "(d'') bare HTTP server at the same rate: $HALF_RATE req/s"
start_ceiling
report="$(loadgen half_ceiling "http://$CEILING_ADDR" --duration "$DURATION" --rate "$HALF_RATE")"
echo "    $report" >&2
R[half_ceiling_p50_ms]="$(json_num p50_ms "$report")"
R[half_ceiling_p99_ms]="$(json_num p99_ms "$report")"
R[half_ceiling_p999_ms]="$(json_num p999_ms "$report")"
R[half_ceiling_max_ms]="$(json_num max_ms "$report")"
stop_pid "$CEILING_PID" 10
forget_pid "$CEILING_PID"

# --- (c') wal at many connections, (c'') wal with wide installs -----------------------

DURABILITY=wal CONNECTIONS=$WIDE_CONNECTIONS run_sink_phase wal_many
stop_pid "$SINK_PID"
forget_pid "$SINK_PID"
DURABILITY=wal LOADGEN_ARGS=--wide run_sink_phase wal_wide
stop_pid "$SINK_PID"
forget_pid "$SINK_PID"
DURABILITY=wal LOADGEN_ARGS='--wide --pool 1' run_sink_phase wal_wide_one
stop_pid "$SINK_PID"
forget_pid "$SINK_PID"

# --- (r) the wal sink with and without the rollups' materialized views ----------------

for round in 1 2; do
    DURABILITY=wal run_sink_phase "rollups_on_$round"
    stop_pid "$SINK_PID"
    forget_pid "$SINK_PID"
    DURABILITY=wal NO_ROLLUPS=1 run_sink_phase "rollups_off_$round"
    stop_pid "$SINK_PID"
    forget_pid "$SINK_PID"
done
for k in ok_rate clickhouse_cpu_us_per_row sink_cpu_us_per_row p99_ms; do
    R[rollups_on_$k]="$(calc "(${R[rollups_on_1_$k]} + ${R[rollups_on_2_$k]}) / 2")"
    R[rollups_off_$k]="$(calc "(${R[rollups_off_1_$k]} + ${R[rollups_off_2_$k]}) / 2")"
done

# --- (m) the log's cost: interleaved memory and wal runs ------------------------------

# One memory run and one wal run give one difference, which this host's drift between two runs
# can move by several µs: BENCH_LOG_PAIRS more pairs, each run back to back with its partner
# (alternating which goes first), and the median of their differences.
LOG_PAIRS="${BENCH_LOG_PAIRS:-3}"
diffs=()
for pair in $(seq 1 "$LOG_PAIRS"); do
    order=(memory wal)
    [ $((pair % 2)) = 0 ] && order=(wal memory)
    for mode in "${order[@]}"; do
        DURABILITY=$mode run_sink_phase "pair_${mode}_$pair"
        stop_pid "$SINK_PID"
        forget_pid "$SINK_PID"
    done
    diffs+=("$(calc "${R[pair_wal_${pair}_sink_cpu_us_per_row]} - ${R[pair_memory_${pair}_sink_cpu_us_per_row]}")")
done
R[log_cost_pairs_us]="$(IFS=/; echo "${diffs[*]}")"
R[log_cost_median_us]="$(printf '%s\n' "${diffs[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"

# --- (e) overload ---------------------------------------------------------------------

OVER_RATE="$(awk "BEGIN { printf \"%.0f\", ${R[memory_ok_rate]} * 2 }")"
step "(e) overload: memory sink at twice its maximum rate ($OVER_RATE req/s) for $OVERLOAD_DURATION"
DURABILITY=memory start_sink overload "bench_${TS}_overload"
report="$(loadgen overload "http://$SINK_MAIN" --duration "$OVERLOAD_DURATION" --rate "$OVER_RATE")"
echo "    $report" >&2
ok_over="$(json_num ok "$report")"
R[overload_target_rate]="$OVER_RATE"
R[overload_rate]="$(json_num rate "$report")"
R[overload_acknowledged]="$ok_over"
R[overload_status_503]="$(json_num status_503 "$report")"
R[overload_errors]="$(json_num errors "$report")"
R[overload_p99_ms]="$(json_num p99_ms "$report")"
R[overload_shed]="$(metrics "$SINK_ADMIN" |
    awk '/^adjust_sink_requests_total\{/ && /outcome="shed"/ { s += $2 } END { printf "%.0f", s }')"
R[overload_peak_rss_mb]="$(vm_hwm_mb "$SINK_PID")"
alive=0
kill -0 "$SINK_PID" 2>/dev/null && alive=1
check overload_alive "$alive" "sink process still running after the overload"
probe="$(probe "$SINK_MAIN")"
R[overload_probe_status]="$probe"
check overload_recovers "$([ "$probe" = 200 ] && echo 1 || echo 0)" \
    "request right after the overload answered $probe"
want=$((ok_over + SINK_EXTRA + (probe == 200 ? 1 : 0)))
drain "$SINK_ADMIN" "$want" >/dev/null
read -r count uniq <<<"$(landed "bench_${TS}_overload")"
check overload_landed "$([ "$count" = "$want" ] && [ "$uniq" = "$want" ] && echo 1 || echo 0)" \
    "acknowledged $want (warm-up and probe included), landed $count, unique callback_id $uniq"
stop_pid "$SINK_PID"
forget_pid "$SINK_PID"

# --- report ---------------------------------------------------------------------------

# A sink's rate is the rate of acknowledged callbacks (a 503 is not a callback taken).
R[ratio_memory_ceiling]="$(calc "${R[memory_ok_rate]} / ${R[ceiling_ok_rate]}")"
R[ratio_wal_ceiling]="$(calc "${R[wal_ok_rate]} / ${R[ceiling_ok_rate]}")"
R[ratio_wal_many_ceiling]="$(calc "${R[wal_many_ok_rate]} / ${R[ceiling_many_ok_rate]}")"
R[ratio_wal_wide_ceiling]="$(calc "${R[wal_wide_ok_rate]} / ${R[ceiling_wide_ok_rate]}")"
R[ratio_wal_wide_one_ceiling]="$(calc "${R[wal_wide_one_ok_rate]} / ${R[ceiling_wide_one_ok_rate]}")"
R[ratio_wal_memory]="$(calc "${R[wal_ok_rate]} / ${R[memory_ok_rate]}")"
# What the log costs the sink per callback: the wal run's CPU per callback less the memory run's.
R[wal_minus_memory_sink_cpu_us]="$(calc "${R[wal_sink_cpu_us_per_row]} - ${R[memory_sink_cpu_us_per_row]}")"
# The same at one rate (half the wal sink's, (d) and (d')): flat out the memory sink runs faster,
# and a busier server takes more requests per wake-up, so the difference above is the log's cost
# and the gain of the higher rate together.
R[half_wal_minus_memory_sink_cpu_us]="$(calc "${R[half_sink_cpu_us_per_row]} - ${R[half_memory_sink_cpu_us_per_row]}")"
# Rollup upkeep: the rate with the rollups over the rate without them, and the share of
# ClickHouse's CPU per row that the rollups' materialized views take.
R[ratio_rollups_rate]="$(calc "${R[rollups_on_ok_rate]} / ${R[rollups_off_ok_rate]}")"
R[rollups_clickhouse_cpu_us_per_row]="$(calc "${R[rollups_on_clickhouse_cpu_us_per_row]} - ${R[rollups_off_clickhouse_cpu_us_per_row]}")"
R[rollups_clickhouse_cpu_share]="$(calc "${R[rollups_on_clickhouse_cpu_us_per_row]} > 0 ? (${R[rollups_on_clickhouse_cpu_us_per_row]} - ${R[rollups_off_clickhouse_cpu_us_per_row]}) / ${R[rollups_on_clickhouse_cpu_us_per_row]} : 0")"
baseline_lines=""
if [ -n "${BENCH_BASELINE:-}" ]; then
    R[ratio_clickhouse_cpu_wal_baseline]="$(calc "${R[baseline_clickhouse_cpu_us_per_row]} > 0 ? ${R[wal_clickhouse_cpu_us_per_row]} / ${R[baseline_clickhouse_cpu_us_per_row]} : 0")"
    R[ratio_baseline_ceiling]="$(calc "${R[baseline_ok_rate]} / ${R[ceiling_ok_rate]}")"
    baseline_lines="
baseline ((b'): $BENCH_BASELINE, --durability wal)
  acknowledged/s ${R[baseline_ok_rate]} (${R[ratio_baseline_ceiling]} of the ceiling), p99 ${R[baseline_p99_ms]} ms, encoded bytes per row ${R[baseline_avg_row_bytes]}
  sink CPU per row ${R[baseline_sink_cpu_us_per_row]} us, ClickHouse CPU per row ${R[baseline_clickhouse_cpu_us_per_row]} us
  ClickHouse CPU per row, wal sink / baseline: ${R[ratio_clickhouse_cpu_wal_baseline]}; rows landed == acknowledged: ${R[check_baseline_landed]}
"
fi
R[loadavg_end]="$(cut -d' ' -f1-3 /proc/loadavg)"
R[cpu_stolen_pct]="$(stolen_pct "$TICKS_START")"

summary="$OUT/summary.txt"
{
    echo "# scripts/bench.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    for k in "${!R[@]}"; do
        echo "$k=${R[$k]}"
    done | sort
} >"$summary"

cat <<EOF

adjust-sink benchmark ($(nproc) cores, ${R[machine_cpu]//_/ }; ClickHouse $CH_VERSION)
loadgen: $CONNECTIONS connections, $THREADS thread(s), $DURATION per run, ~1 KB callbacks

load average before/after: ${R[loadavg_start]} / ${R[loadavg_end]}; CPU time taken by the host (steal): ${R[cpu_stolen_pct]} %

throughput (flat out)              answers/s  200 (acked)/s   p50 ms   p99 ms  p99.9 ms
  (a) bare HTTP ceiling           $(printf '%11s %14s %8s %8s %9s' "${R[ceiling_rate]}" "${R[ceiling_ok_rate]}" "${R[ceiling_p50_ms]}" "${R[ceiling_p99_ms]}" "${R[ceiling_p999_ms]}")
  (b) sink, --durability memory   $(printf '%11s %14s %8s %8s %9s' "${R[memory_rate]}" "${R[memory_ok_rate]}" "${R[memory_p50_ms]}" "${R[memory_p99_ms]}" "${R[memory_p999_ms]}")
  (c) sink, --durability wal      $(printf '%11s %14s %8s %8s %9s' "${R[wal_rate]}" "${R[wal_ok_rate]}" "${R[wal_p50_ms]}" "${R[wal_p99_ms]}" "${R[wal_p999_ms]}")
  ratios of acknowledged rates: memory/ceiling ${R[ratio_memory_ceiling]}, wal/ceiling ${R[ratio_wal_ceiling]}, wal/memory ${R[ratio_wal_memory]}
  sink CPU per callback: memory ${R[memory_sink_cpu_us_per_row]} us, wal ${R[wal_sink_cpu_us_per_row]} us (wal - memory ${R[wal_minus_memory_sink_cpu_us]} us)
  the log's cost ((m): $LOG_PAIRS interleaved pairs, wal - memory sink CPU per callback): ${R[log_cost_pairs_us]} us, median ${R[log_cost_median_us]} us

standard cases, --durability wal      ceiling 200/s   wal 200/s  ratio  p99 ms  sink us/cb  CH us/row  fsyncs/s  cb/fsync  RSS MB
  ~1 KB, $CONNECTIONS connections       $(printf '%14s %11s %6s %7s %11s %10s %9s %9s %7s' "${R[ceiling_ok_rate]}" "${R[wal_ok_rate]}" "${R[ratio_wal_ceiling]}" "${R[wal_p99_ms]}" "${R[wal_sink_cpu_us_per_row]}" "${R[wal_clickhouse_cpu_us_per_row]}" "${R[wal_fsyncs_per_s]}" "${R[wal_callbacks_per_fsync]}" "${R[wal_peak_rss_mb]}")
  ~1 KB, $WIDE_CONNECTIONS connections     $(printf '%14s %11s %6s %7s %11s %10s %9s %9s %7s' "${R[ceiling_many_ok_rate]}" "${R[wal_many_ok_rate]}" "${R[ratio_wal_many_ceiling]}" "${R[wal_many_p99_ms]}" "${R[wal_many_sink_cpu_us_per_row]}" "${R[wal_many_clickhouse_cpu_us_per_row]}" "${R[wal_many_fsyncs_per_s]}" "${R[wal_many_callbacks_per_fsync]}" "${R[wal_many_peak_rss_mb]}")
  wide (${R[wide_query_bytes]} B), $CONNECTIONS connections $(printf '%14s %11s %6s %7s %11s %10s %9s %9s %7s' "${R[ceiling_wide_ok_rate]}" "${R[wal_wide_ok_rate]}" "${R[ratio_wal_wide_ceiling]}" "${R[wal_wide_p99_ms]}" "${R[wal_wide_sink_cpu_us_per_row]}" "${R[wal_wide_clickhouse_cpu_us_per_row]}" "${R[wal_wide_fsyncs_per_s]}" "${R[wal_wide_callbacks_per_fsync]}" "${R[wal_wide_peak_rss_mb]}")
  wide, one URL (${R[wide_one_query_bytes]} B)   $(printf '%14s %11s %6s %7s %11s %10s %9s %9s %7s' "${R[ceiling_wide_one_ok_rate]}" "${R[wal_wide_one_ok_rate]}" "${R[ratio_wal_wide_one_ceiling]}" "${R[wal_wide_one_p99_ms]}" "${R[wal_wide_one_sink_cpu_us_per_row]}" "${R[wal_wide_one_clickhouse_cpu_us_per_row]}" "${R[wal_wide_one_fsyncs_per_s]}" "${R[wal_wide_one_callbacks_per_fsync]}" "${R[wal_wide_one_peak_rss_mb]}")

rollup upkeep ((r): wal sink, with / without the rollups' materialized views, alternately, 2 runs each)
  acknowledged/s: with ${R[rollups_on_1_ok_rate]} ${R[rollups_on_2_ok_rate]}, without ${R[rollups_off_1_ok_rate]} ${R[rollups_off_2_ok_rate]}; ratio of the means ${R[ratio_rollups_rate]}
  ClickHouse CPU per row: with ${R[rollups_on_clickhouse_cpu_us_per_row]} us, without ${R[rollups_off_clickhouse_cpu_us_per_row]} us (means); rollups ${R[rollups_clickhouse_cpu_us_per_row]} us (${R[rollups_clickhouse_cpu_share]} of ClickHouse's CPU per row)
  sink CPU per row: with ${R[rollups_on_sink_cpu_us_per_row]} us, without ${R[rollups_off_sink_cpu_us_per_row]} us; p99 with ${R[rollups_on_p99_ms]} ms, without ${R[rollups_off_p99_ms]} ms

latency at half the wal sink's acknowledged rate ((d): target ${R[half_target_rate]} req/s, achieved ${R[half_rate]})
  p50 ${R[half_p50_ms]} ms, p99 ${R[half_p99_ms]} ms, p99.9 ${R[half_p999_ms]} ms, max ${R[half_max_ms]} ms
  of which: service (actual send to answer) p99 ${R[half_service_p99_ms]} ms, max ${R[half_service_max_ms]} ms; sent late (a connection still waiting at its scheduled time) p99 ${R[half_late_p99_ms]} ms, max ${R[half_late_max_ms]} ms
  group commits ${R[half_fsyncs]}: ${R[half_fsyncs_over_5ms]} took over 5 ms, ${R[half_fsyncs_over_25ms]} over 25 ms
  answered inside the sink (complete request to answer): ${R[half_inside_over_5ms]} of ${R[half_inside]} over 5 ms, ${R[half_inside_over_10ms]} over 10 ms
  sink CPU per callback over the run: wal ${R[half_sink_cpu_us_per_row]} us, memory ((d')) ${R[half_memory_sink_cpu_us_per_row]} us (wal - memory ${R[half_wal_minus_memory_sink_cpu_us]} us)
  memory sink at the same rate ((d'), achieved ${R[half_memory_rate]}): p50 ${R[half_memory_p50_ms]} ms, p99 ${R[half_memory_p99_ms]} ms, p99.9 ${R[half_memory_p999_ms]} ms, max ${R[half_memory_max_ms]} ms (service p99 ${R[half_memory_service_p99_ms]} ms, sent late p99 ${R[half_memory_late_p99_ms]} ms)
  bare HTTP server at the same rate ((d''), the generator's and the host's share): p50 ${R[half_ceiling_p50_ms]} ms, p99 ${R[half_ceiling_p99_ms]} ms, p99.9 ${R[half_ceiling_p999_ms]} ms, max ${R[half_ceiling_max_ms]} ms

delivery                                  memory        wal
  acknowledged (200)                $(printf '%10s %10s' "${R[memory_acknowledged]}" "${R[wal_acknowledged]}")
  rows landed (FINAL; +1 warm-up)   $(printf '%10s %10s' "${R[memory_rows_landed]}" "${R[wal_rows_landed]}")
  inserts per second (during load)  $(printf '%10s %10s' "${R[memory_inserts_per_s]}" "${R[wal_inserts_per_s]}")
  batches / average batch rows      $(printf '%10s %10s' "${R[memory_batches]}/${R[memory_avg_batch_rows]}" "${R[wal_batches]}/${R[wal_avg_batch_rows]}")
  encoded bytes per row             $(printf '%10s %10s' "${R[memory_avg_row_bytes]}" "${R[wal_avg_row_bytes]}")
  average INSERT duration (ms)      $(printf '%10s %10s' "${R[memory_avg_insert_ms]}" "${R[wal_avg_insert_ms]}")
  drain after load (s)              $(printf '%10s %10s' "${R[memory_drain_s]}" "${R[wal_drain_s]}")
  merges settled after drain (s)    $(printf '%10s %10s' "${R[memory_settle_s]}" "${R[wal_settle_s]}")
  peak RSS (MB)                     $(printf '%10s %10s' "${R[memory_peak_rss_mb]}" "${R[wal_peak_rss_mb]}")
  sink CPU per row (us)             $(printf '%10s %10s' "${R[memory_sink_cpu_us_per_row]}" "${R[wal_sink_cpu_us_per_row]}")
  ClickHouse CPU per row (us)       $(printf '%10s %10s' "${R[memory_clickhouse_cpu_us_per_row]}" "${R[wal_clickhouse_cpu_us_per_row]}")
  503 / errors during load          $(printf '%10s %10s' "${R[memory_status_503]}/${R[memory_errors]}" "${R[wal_status_503]}/${R[wal_errors]}")

${baseline_lines}
overload ((e): memory sink at twice its acknowledged rate, target ${R[overload_target_rate]} req/s for $OVERLOAD_DURATION, achieved ${R[overload_rate]})
  200: ${R[overload_acknowledged]}, 503: ${R[overload_status_503]} (sink counted ${R[overload_shed]} shed), errors: ${R[overload_errors]}, p99 ${R[overload_p99_ms]} ms
  peak RSS ${R[overload_peak_rss_mb]} MB, probe right after: ${R[overload_probe_status]}

checks
  memory: rows landed == acknowledged       ${R[check_memory_landed]}
  wal: rows landed == acknowledged          ${R[check_wal_landed]}
  wal + half rate: rows landed == acked     ${R[check_half_landed]}
  memory, half rate: landed == acked        ${R[check_half_memory_landed]}
  wal, many connections: landed == acked    ${R[check_wal_many_landed]}
  wal, wide installs: landed == acked       ${R[check_wal_wide_landed]}
  wal, one wide install: landed == acked    ${R[check_wal_wide_one_landed]}
  rollups on/off (4 runs): landed == acked  ${R[check_rollups_on_1_landed]} ${R[check_rollups_off_1_landed]} ${R[check_rollups_on_2_landed]} ${R[check_rollups_off_2_landed]}
  log cost pairs: landed == acked           $(for k in "${!R[@]}"; do case "$k" in check_pair_*) printf '%s ' "${R[$k]}" ;; esac; done)
  overload: sink alive                      ${R[check_overload_alive]}
  overload: next request answered 200       ${R[check_overload_recovers]}
  overload: rows landed == acknowledged     ${R[check_overload_landed]}

summary: $summary
EOF

exit "$CHECKS_FAILED"
