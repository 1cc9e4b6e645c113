#!/usr/bin/env bash
# What ClickHouse pays per row for each table layout and batch shape, measured in isolation.
#
# Usage: scripts/bench-layouts.sh [ROWS]      (default 400000)
#
# 1. `examples/layouts.rs` encodes ROWS realistic callbacks exactly as the sink does.
# 2. ClickHouse 18.16 (deploy/local/clickhouse.sh): for each layout — "tiered" (the current DDL)
#    and "wide" (the first release's, every placeholder a column, tests/fixtures/
#    first_release_legacy.sql) — and each batch size (BENCH_LAYOUT_BATCHES, default
#    "50000 200000"), the rows are inserted batch by batch into a fresh table, and the server's
#    CPU time (/proc/<pid>/stat, user + system) is read from before the first INSERT until its
#    background merges have settled, divided by the rows. The wide rows are the same rows as that
#    table stores them, exported beforehand (not timed).
# 3. Modern engine (chDB, benches/chdb_layouts.py): the same rows, both layouts, 50k-row batches.
# Prints a table; a copy goes to target/bench/layouts.txt.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

ROWS="${1:-400000}"
BATCHES="${BENCH_LAYOUT_BATCHES:-50000 200000}"
OUT=target/bench/layouts
DB=bench_layouts
mkdir -p "$OUT"

step() { echo "==> $*" >&2; }

step "encoding $ROWS rows (cargo run --release --example layouts)"
cargo run -q --release --example layouts -- "$ROWS" "$OUT" >&2

STARTED=0
deploy/local/clickhouse.sh status >/dev/null 2>&1 || STARTED=1
CH="$(deploy/local/clickhouse.sh start)"
cleanup() {
    curl -sf "$CH/" --data-binary "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
    [ "$STARTED" = 1 ] && deploy/local/clickhouse.sh stop || true
}
trap cleanup EXIT
PID="$(cat "${ADJUST_SINK_CH_DIR:-target/clickhouse-local}/clickhouse-server.pid")"

urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
q() { curl -sS --fail-with-body "$CH/?allow_experimental_low_cardinality_type=1" --data-binary "$1"; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$PID/stat"; }
settle() { # waits until no merge runs on the database (at most 60 s)
    local i
    for i in $(seq 1 120); do
        [ "$(q "SELECT count() FROM system.merges WHERE database = '$DB'")" = 0 ] && return
        sleep 0.5
    done
}

# ddl LAYOUT TABLE: the CREATE TABLE of a layout, for $DB.TABLE.
ddl() {
    case "$1" in
    tiered) cargo run -q --release -- schema --profile legacy --database "$DB" --table "$2" ;;
    wide) sed "s/adjust\./$DB./g" tests/fixtures/first_release_legacy.sql ;;
    esac | awk -v a="$DB.$2" -v b="$DB.callbacks" '
        /^CREATE TABLE IF NOT EXISTS / && (index($0, a) || index($0, b)) { on = 1 }
        on { print } on && /;$/ { exit }' | sed "s/$DB\.callbacks\$/$DB.$2/; s/;$//"
}

q "DROP DATABASE IF EXISTS $DB" >/dev/null
q "CREATE DATABASE $DB" >/dev/null
step "staging: the tiered rows, and the same rows as the wide table stores them"
q "$(ddl tiered staging)" >/dev/null
q "$(ddl wide widecols)" >/dev/null
COLS="$(cat "$OUT/insert_columns.txt")"
curl -sS --fail-with-body "$CH/?query=$(urlencode "INSERT INTO $DB.staging ($COLS) FORMAT RowBinary")" \
    --data-binary @"$OUT/rows.bin" >/dev/null
WIDE_COLS="$(q "SELECT arrayStringConcat(groupArray(concat('\`', name, '\`')), ', ') FROM (SELECT name FROM system.columns WHERE database = '$DB' AND table = 'widecols' AND default_kind = '')")"
BASE=1404214700

declare -A R
for batch in $BATCHES; do
    n=$(((ROWS + batch - 1) / batch))
    for layout in tiered wide; do
        t="${layout}_$batch"
        q "$(ddl "$layout" "$t")" >/dev/null
        # The batches, written to files first (not timed).
        for i in $(seq 0 $((n - 1))); do
            lo=$((BASE + i * batch))
            hi=$((lo + batch))
            if [ "$layout" = tiered ]; then
                q "SELECT $COLS FROM $DB.staging WHERE received_at >= $lo AND received_at < $hi ORDER BY received_at FORMAT RowBinary" >"$OUT/b-$i.bin"
                echo "$COLS" >"$OUT/cols"
            else
                q "SELECT $WIDE_COLS FROM $DB.staging WHERE received_at >= $lo AND received_at < $hi ORDER BY received_at FORMAT RowBinary" >"$OUT/b-$i.bin"
                echo "$WIDE_COLS" >"$OUT/cols"
            fi
        done
        settle
        c0="$(cpu)"
        for i in $(seq 0 $((n - 1))); do
            curl -sS --fail-with-body "$CH/?allow_experimental_low_cardinality_type=1&query=$(urlencode "INSERT INTO $DB.$t ($(cat "$OUT/cols")) FORMAT RowBinary")" \
                --data-binary @"$OUT/b-$i.bin" >/dev/null
        done
        settle
        c1="$(cpu)"
        got="$(q "SELECT count() FROM $DB.$t")"
        [ "$got" = "$ROWS" ] || { echo "bench-layouts.sh: $t holds $got rows, not $ROWS" >&2; exit 1; }
        R[$t]="$(awk "BEGIN { printf \"%.1f\", ($c1 - $c0) * 1000000 / $ROWS }")"
        step "$layout, $batch-row batches: ${R[$t]} us of ClickHouse CPU per row"
        rm -f "$OUT"/b-*.bin
    done
done

MODERN=""
if PY="$(scripts/chdb-venv.sh 2>/dev/null)"; then
    step "modern engine (chDB)"
    MODERN="$("$PY" benches/chdb_layouts.py "$OUT" benches/first_release_modern.sql 50000)"
fi

{
    echo "ClickHouse CPU per row ($ROWS rows, ClickHouse $(q 'SELECT version()'), $(nproc) cores)"
    printf '%-14s %12s %12s %8s\n' "batch rows" "tiered us" "wide us" "ratio"
    for batch in $BATCHES; do
        printf '%-14s %12s %12s %8s\n' "$batch" "${R[tiered_$batch]}" "${R[wide_$batch]}" \
            "$(awk "BEGIN { printf \"%.2f\", ${R[tiered_$batch]} / ${R[wide_$batch]} }")"
    done
    [ -n "$MODERN" ] && echo "modern engine (chDB, 50k-row batches, insert CPU per row): $MODERN"
} | tee "$OUT/../layouts.txt"
