//! What the control shard and the data shards share, and nothing else: server
//! state events, the per-shard health replica they are applied to, the exact
//! limits and counters (cache-line-padded atomics), and each shard's inbox.
//!
//! `shard` and `control` both depend on this module and never on each other.
//! Nothing here does I/O beyond writing an inbox's eventfd.

pub mod counters;
pub mod errors;
pub mod event;
pub mod latency;
pub mod replica;
pub mod sessions;
pub mod shared;

pub use counters::{Counters, ShardCounters, Totals};
pub use event::{ServerEvent, ServerState};
pub use latency::{LatencyBook, SharedLatency};
pub use replica::{HealthReplica, ServerReplica};
pub use sessions::SessionInfo;
pub use shared::{Activity, Gauge, Inbox, Padded, ShardMsg, Shared, NO_TIMER};
