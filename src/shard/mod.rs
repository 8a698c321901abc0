//! shard (in progress)
