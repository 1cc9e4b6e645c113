#!/usr/bin/env bash
# Python virtualenv with chDB (the `chdb-core` package: ClickHouse 26.x as an in-process
# engine), used by the tests to run the modern DDL and read encoded batches back.
#
# Usage: scripts/chdb-venv.sh
#   Creates target/chdb-venv if needed (idempotent) and prints the path of its python.
#   Environment: PYTHON  interpreter used to create the venv (default python3)
#
# Using it (the import name is `chdb`):
#
#   One-off query, in memory:
#     import chdb
#     print(chdb.query("SELECT version()", "TabSeparated"))   # -> 26.9.2.1
#
#   Persistent session: the state (databases, tables, parts) lives in a directory and
#   survives the process. Several ;-separated statements may go in one query() call.
#     from chdb import session
#     s = session.Session("/path/to/dbdir")
#     s.query("CREATE DATABASE IF NOT EXISTS adjust; "
#             "CREATE TABLE IF NOT EXISTS adjust.t (a LowCardinality(String), n UInt64) "
#             "ENGINE = MergeTree ORDER BY a")
#     print(s.query("SELECT * FROM adjust.t ORDER BY a", "TabSeparated"))  # or "JSONEachRow", "CSV"
#     s.close()
#   Only one database path per process: a second Session with another path (even
#   ":memory:") fails while the first is open. Errors raise chdb.ChdbError (a RuntimeError
#   subclass) carrying the ClickHouse message. `allow_experimental_low_cardinality_type`
#   is rejected as an unknown setting.
#
#   RowBinary rows from a file (any of these):
#     s.query("INSERT INTO adjust.t FROM INFILE '/path/rows.bin' FORMAT RowBinary")
#     s.query("INSERT INTO adjust.t SELECT * FROM "
#             "file('/path/rows.bin', RowBinary, 'a String, n UInt64')")
#   RowBinary rows from bytes in memory:
#     with s.send_insert("INSERT INTO adjust.t (a, n)", "RowBinary") as ins:
#         ins.append(data)
#         print(ins.finish().rows_written)
#
#   From a shell: target/chdb-venv/bin/python -m chdb "SELECT version()" TabSeparated
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
VENV="$ROOT/target/chdb-venv"
PACKAGE="chdb-core"
VERSION="26.9.0"
PY="${PYTHON:-python3}"

log() { echo "chdb-venv.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root (or sudo) to run: $*"
        exit 1
    fi
}

ready() {
    [ -x "$VENV/bin/python" ] &&
        "$VENV/bin/python" - "$PACKAGE" "$VERSION" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import version
assert version(sys.argv[1]) == sys.argv[2]
import chdb
EOF
}

if ready; then
    echo "$VENV/bin/python"
    exit 0
fi

# Debian ships the venv module (and ensurepip) separately, in python3-venv.
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    log "installing python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y -q python3-venv >&2; then
        as_root apt-get update -q >&2
        as_root apt-get install -y -q python3-venv >&2
    fi
fi

log "creating $VENV with $PACKAGE==$VERSION"
mkdir -p "$ROOT/target"
"$PY" -m venv --clear "$VENV" >&2
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PACKAGE==$VERSION" >&2

if ! ready; then
    log "$PACKAGE is installed in $VENV but 'import chdb' fails"
    exit 1
fi
echo "$VENV/bin/python"
