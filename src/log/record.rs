//! What one finished TCP session leaves for its log line: the fields of
//! HAProxy's `tcplog` format, filled in by the shard and formatted later, on the
//! writer thread.

use std::net::SocketAddr;
use std::time::SystemTime;

/// What ended the session, as HAProxy's two-letter termination state: who or what
/// ended it (C client, S server, c/s client/server timeout, D server marked down,
/// K killed) and in which phase (Q queue, C connect, D data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termination(pub [u8; 2]);

impl Termination {
    pub const NORMAL: Termination = Termination(*b"--");
    pub const NO_SERVER: Termination = Termination(*b"SC");
    pub const CONNECT_REFUSED: Termination = Termination(*b"SC");
    pub const CONNECT_TIMEOUT: Termination = Termination(*b"sC");
    pub const QUEUE_TIMEOUT: Termination = Termination(*b"sQ");
    pub const QUEUE_FULL: Termination = Termination(*b"sQ");
    pub const CLIENT_TIMEOUT: Termination = Termination(*b"cD");
    pub const SERVER_TIMEOUT: Termination = Termination(*b"sD");
    pub const CLIENT_ABORT: Termination = Termination(*b"CD");
    pub const SERVER_ABORT: Termination = Termination(*b"SD");
    pub const SERVER_DOWN_KILL: Termination = Termination(*b"DD");
    pub const HARD_STOP_KILL: Termination = Termination(*b"KD");
    /// Killed by `hard-stop-after` while waiting in the queue / connecting.
    pub const HARD_STOP_QUEUED: Termination = Termination(*b"KQ");
    pub const HARD_STOP_CONNECTING: Termination = Termination(*b"KC");
    /// The proxy ran out of a local resource (fds, memory, source ports) while
    /// connecting: HAProxy's `R` (resource) in the connect phase.
    pub const LOCAL_RESOURCE: Termination = Termination(*b"RC");
    /// A local failure (not the client's doing) while forwarding data.
    pub const LOCAL_DATA: Termination = Termination(*b"RD");

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// One finished session, with indexes into the configuration for names.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub frontend: usize,
    pub backend: Option<usize>,
    pub server: Option<usize>,
    pub client: SocketAddr,
    pub accept_time: SystemTime,
    /// Time waiting in queues, ms (-1 = never got that far).
    pub tw_ms: i64,
    /// Time to connect to the server, ms (-1 = never connected).
    pub tc_ms: i64,
    /// Total session time, ms.
    pub tt_ms: i64,
    /// Client → server bytes.
    pub bytes_up: u64,
    /// Server → client bytes (HAProxy's `%B`).
    pub bytes_down: u64,
    pub termination: Termination,
    pub retries: u32,
    /// A retry went to another server: HAProxy prints `+` before the retries.
    pub redispatched: bool,
    pub actconn: u32,
    pub feconn: u32,
    pub beconn: u32,
    pub srv_conn: u32,
    pub srv_queue: u32,
    pub backend_queue: u32,
}
