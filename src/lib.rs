//! adjust-sink: receives Adjust server callbacks and lands every one of them, typed and exactly
//! once, in ClickHouse.
pub mod adjust;
pub mod metrics;
pub mod pipeline;
pub mod row;
pub mod schema;
pub mod shutdown;
pub mod sink;
