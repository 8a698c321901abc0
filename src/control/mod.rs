//! The control shard: health checks, server state changes broadcast to the data
//! shards.

pub mod event;
