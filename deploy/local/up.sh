#!/usr/bin/env bash
# Brings up a local adjust-sink: starts the private ClickHouse (deploy/local/clickhouse.sh),
# builds the release binary, creates the tables and serves until Ctrl-C.
#
# Usage: deploy/local/up.sh [extra `adjust-sink serve` flags]
#
# Callbacks: http://127.0.0.1:8080/adjust (127.0.0.1 is allowed besides Adjust's ranges)
# Metrics:   http://127.0.0.1:9100/metrics
# Data dir:  target/local-data (write-ahead log, rejects file)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="$HOME/.cargo/bin:$PATH"

deploy/local/clickhouse.sh start >/dev/null
url="$(deploy/local/clickhouse.sh url)"
echo "==> building adjust-sink (release)"
cargo build --release --locked --quiet
echo "==> migrating $url"
target/release/adjust-sink migrate --clickhouse-url "$url"
echo "==> serving on http://127.0.0.1:8080/adjust (Ctrl-C to stop)"
exec target/release/adjust-sink serve \
    --clickhouse-url "$url" \
    --listen 127.0.0.1:8080 \
    --admin-listen 127.0.0.1:9100 \
    --allow 127.0.0.1/32 \
    --data-dir target/local-data \
    "$@"
