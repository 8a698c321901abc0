//! What a data shard tells the control shard about its live sessions when
//! asked (`show sess`, `shutdown session`): plain data sent back on a channel
//! that came with the question, so no session is shared or locked while it
//! runs. Session ids carry their shard in their low bits, so a command about
//! one session asks one shard only.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// The low bits of a session id that name its shard (`global.shards` ≤ 64).
pub const SHARD_BITS: u32 = 6;

/// The id of the `seq`-th session of shard `shard`.
pub fn session_id(shard: usize, seq: u64) -> u64 {
    (seq << SHARD_BITS) | shard as u64
}

/// The shard a session id belongs to.
pub fn shard_of(id: u64) -> usize {
    (id & ((1 << SHARD_BITS) - 1)) as usize
}

/// One live session as its shard sees it at the moment of the question.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: u64,
    pub frontend: usize,
    /// The backend it is routed to (a frontend's default until routed).
    pub backend: Option<usize>,
    /// The server it is using now, if any.
    pub server: Option<usize>,
    /// The server's current address (`set server addr` may move it).
    pub server_addr: Option<SocketAddr>,
    /// The client (the PROXY header's when there was one), and the address
    /// it connected to; `None` when the socket no longer says.
    pub client: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    pub accepted: SystemTime,
    pub age: Duration,
    /// The client socket's descriptor (HAProxy's `scf=[…,fd=N]`).
    pub fd: i32,
}
