//! End-to-end tests: the real binary on port 0, the real ClickHouse started by
//! `deploy/local/clickhouse.sh` (URL in `ADJUST_SINK_TEST_CLICKHOUSE_URL`), a fresh database per
//! test, and private ClickHouse servers for outage tests. Compiled as one test binary to keep
//! link time down.

mod support;

mod analyst;
mod backfill;
mod callback_url;
mod cluster;
mod corpus;
mod durability;
mod edge;
mod erased;
mod exports;
mod fixtures;
mod lifecycle;
mod monitoring;
mod privacy;
mod receive;
mod rollups;
mod schema;
mod tls;
mod upgrade;
mod wedge;
