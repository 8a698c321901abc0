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

/// `SessionRecord::server` of a request the stats page answered (no
/// backend): HAProxy logs it `<proxy>/<STATS>`.
pub const STATS_APPLET: usize = usize::MAX;
/// Likewise for the Prometheus exporter (`/metrics`): `<proxy>/<PROMEX>`.
pub const PROMEX_APPLET: usize = usize::MAX - 1;

/// One finished session, with indexes into the configuration for names.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub frontend: usize,
    pub backend: Option<usize>,
    /// An index into the backend's servers, or with no backend one of the
    /// applets (`STATS_APPLET`, `PROMEX_APPLET`) that answered instead.
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
    /// The client's TLS version and suite, HAProxy's names (`%sslv`,
    /// `%sslc`); `None` for a plain connection.
    pub ssl: Option<(&'static str, &'static str)>,
}

/// The termination states an HTTP session adds (HAProxy's letters).
impl Termination {
    /// The proxy refused the request (bad request, deny): `PR`.
    pub const PROXY_REQUEST: Termination = Termination(*b"PR");
    /// The proxy refused the server's response (malformed): `PH`.
    pub const PROXY_HEADERS: Termination = Termination(*b"PH");
    /// `http-request tarpit`: held, then refused.
    pub const PROXY_TARPIT: Termination = Termination(*b"PT");
    /// `redirect` or `return`: answered by the proxy itself.
    pub const LOCAL_REQUEST: Termination = Termination(*b"LR");
    /// `timeout http-request` before a complete request head: `cR`.
    pub const CLIENT_REQUEST_TIMEOUT: Termination = Termination(*b"cR");
    /// The client closed before sending a complete request head: `CR`.
    pub const CLIENT_REQUEST_ABORT: Termination = Termination(*b"CR");
    /// `timeout server` before the response head: `sH`.
    pub const SERVER_HEADERS_TIMEOUT: Termination = Termination(*b"sH");
    /// The server closed or reset before a complete response head: `SH`.
    pub const SERVER_HEADERS_ABORT: Termination = Termination(*b"SH");
}

/// One finished HTTP request, for HAProxy's `option httplog` line: the session's
/// fields plus the request's own timers, status, captures and request line.
#[derive(Debug, Clone)]
pub struct HttpRecord {
    /// Client, names, `Tw`, `Tc`, bytes to the client (`%B`), termination state,
    /// connection counts and queues. `tt_ms` is not part of the line.
    pub session: SessionRecord,
    /// When the request began (`%tr`): the accept date for a connection's first
    /// request, the end of the idle time for the next ones.
    pub request_time: SystemTime,
    /// `%TR`: time to receive the whole request head, ms (-1 = never complete).
    pub tr_request_ms: i64,
    /// `%Tr`: time from sending the request to the response head, ms (-1 = no
    /// response).
    pub tr_response_ms: i64,
    /// `%Ta`: active time, from the request's start to the end of the response.
    pub ta_ms: i64,
    /// `%ST`: the status sent to the client (0 when none was).
    pub status: u16,
    /// `%r`: "METHOD URI VERSION" as received (None: `<BADREQ>`).
    pub request_line: Option<Box<[u8]>>,
    /// `capture request header`: one slot per declared capture, empty when the
    /// header was absent; no slots, no `{}` block.
    pub request_captures: Vec<Box<[u8]>>,
    /// `capture response header`, likewise.
    pub response_captures: Vec<Box<[u8]>>,
    /// The persistence cookie's flags (`%tsc`'s last two characters): what
    /// the request's cookie said and what was done to the response's, `--`
    /// when the backend has no `cookie`.
    pub persistence: [u8; 2],
    /// `http-request set-log-level`: the syslog level of this line (8:
    /// `silent`, no line); `None`: info.
    pub log_level: Option<u8>,
    /// The values of the frontend's `log-format` `%[...]` samples, in order.
    pub samples: Vec<Box<[u8]>>,
}
