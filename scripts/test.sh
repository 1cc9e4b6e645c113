#!/usr/bin/env bash
# Runs every check and test of the project: formatting, clippy, the deploy kit
# (scripts/check-deploy.sh: Prometheus rules and their promtool tests, compose file, Grafana
# dashboard; scripts/check-kubernetes.sh: the Kubernetes manifests), unit tests, the smoke test
# of the local ClickHouse cluster (scripts/cluster-smoke.sh), and the end-to-end tests against a
# real local ClickHouse server (deploy/local/clickhouse.sh), the local cluster
# (deploy/local/cluster.sh) and the chDB engine (scripts/chdb-venv.sh).
#
# Usage: scripts/test.sh
#
# Exports for the tests:
#   ADJUST_SINK_TEST_CLICKHOUSE_URL  HTTP URL of the local ClickHouse server
#   ADJUST_SINK_TEST_CLUSTER=1       run the cluster end-to-end test (tests/e2e/cluster.rs)
#   ADJUST_SINK_TEST_CHDB_PYTHON     python of the virtualenv that has chDB
#   ADJUST_SINK_TEST_S3_ENDPOINT     S3 endpoint of SeaweedFS (scripts/seaweedfs.sh), for the
#                                    export follower's tests (tests/e2e/exports.rs)
# The cluster uses the ports of deploy/local/cluster.sh (base ADJUST_SINK_CLUSTER_BASE_PORT,
# default 18200: 18200-18242), apart from the single server's 18123 and 19000.
# The local ClickHouse server and cluster are stopped at the end only if this script started
# them.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

step() { echo "==> $*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y -q "$@"; then
        as_root apt-get update -q
        as_root apt-get install -y -q "$@"
    fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

step "system packages"
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
installed python3-venv || missing+=(python3-venv)
# The deploy kit checks: promtool, docker-compose (`config` needs no container engine), PyYAML.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# libfaketime: an end-to-end test sets a sink's clock back (rows received long ago).
installed libfaketime || missing+=(faketime)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt_install "${missing[@]}"
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo not found" >&2; exit 1; }

locked=()
[ -f Cargo.lock ] && locked=(--locked)

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets ${locked[*]} -- -D warnings"
cargo clippy --all-targets "${locked[@]}" -- -D warnings

step "deploy kit (scripts/check-deploy.sh)"
scripts/check-deploy.sh

step "Kubernetes manifests (scripts/check-kubernetes.sh)"
scripts/check-kubernetes.sh

step "local ClickHouse server"
started_clickhouse=0
started_cluster=0
started_seaweedfs=0
if ! deploy/local/clickhouse.sh status >/dev/null 2>&1; then
    started_clickhouse=1
fi
cleanup() {
    if [ "$started_clickhouse" = 1 ]; then
        started_clickhouse=0
        echo "==> stopping the local ClickHouse server"
        deploy/local/clickhouse.sh stop || true
    fi
    if [ "$started_seaweedfs" = 1 ]; then
        started_seaweedfs=0
        echo "==> stopping SeaweedFS"
        scripts/seaweedfs.sh stop || true
    fi
    if [ "$started_cluster" = 1 ]; then
        started_cluster=0
        echo "==> stopping the local ClickHouse cluster"
        deploy/local/cluster.sh stop || true
    fi
}
trap cleanup EXIT
deploy/local/clickhouse.sh start
ADJUST_SINK_TEST_CLICKHOUSE_URL="$(deploy/local/clickhouse.sh url)"
export ADJUST_SINK_TEST_CLICKHOUSE_URL
echo "ADJUST_SINK_TEST_CLICKHOUSE_URL=$ADJUST_SINK_TEST_CLICKHOUSE_URL"

step "local ClickHouse cluster"
# Stopped at the end only when none of it ran before.
# (Not `status | grep -q`: with pipefail, grep leaving early can fail the pipeline.)
cluster_state="$(deploy/local/cluster.sh status 2>/dev/null || true)"
if [[ "$cluster_state" != *' up '* ]]; then
    started_cluster=1
fi
deploy/local/cluster.sh start
export ADJUST_SINK_TEST_CLUSTER=1

step "cluster smoke test (scripts/cluster-smoke.sh)"
scripts/cluster-smoke.sh

step "chDB virtualenv"
ADJUST_SINK_TEST_CHDB_PYTHON="$(scripts/chdb-venv.sh)"
export ADJUST_SINK_TEST_CHDB_PYTHON
echo "ADJUST_SINK_TEST_CHDB_PYTHON=$ADJUST_SINK_TEST_CHDB_PYTHON"

step "SeaweedFS (S3-compatible store, scripts/seaweedfs.sh)"
if ! scripts/seaweedfs.sh status >/dev/null 2>&1; then
    started_seaweedfs=1
fi
ADJUST_SINK_TEST_S3_ENDPOINT="$(scripts/seaweedfs.sh start)"
export ADJUST_SINK_TEST_S3_ENDPOINT
echo "ADJUST_SINK_TEST_S3_ENDPOINT=$ADJUST_SINK_TEST_S3_ENDPOINT"

mkdir -p target
test_log="target/test-output.log"
: >"$test_log"

step "cargo test --all-targets ${locked[*]}"
cargo test --all-targets "${locked[@]}" 2>&1 | tee -a "$test_log"

# Doc tests exist only for a library target.
if [ -f src/lib.rs ] || grep -q '^\[lib\]' Cargo.toml; then
    step "cargo test --doc ${locked[*]}"
    cargo test --doc "${locked[@]}" 2>&1 | tee -a "$test_log"
fi

# Totals over every test binary ("test result: ok. N passed; M failed; K ignored; ...").
read -r passed failed ignored < <(awk '
    /^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i) ~ /^passed;?$/) p += $(i - 1)
            if ($(i) ~ /^failed;?$/) f += $(i - 1)
            if ($(i) ~ /^ignored;?$/) s += $(i - 1)
        }
    }
    END { printf "%d %d %d\n", p, f, s }' "$test_log")

# Stop the server and the cluster now (if this script started them) so the summary is the last
# output.
cleanup
trap - EXIT

echo "==> all checks passed: fmt, clippy, deploy kit, Kubernetes manifests, cluster smoke test, tests (ClickHouse $ADJUST_SINK_TEST_CLICKHOUSE_URL, local cluster, chDB, SeaweedFS)"
echo "tests: $passed passed, $failed failed, $ignored skipped"
