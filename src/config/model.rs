//! The resolved configuration: what the engine, the control shard and the logger
//! consume after parsing, inheritance (`defaults`, `default-server`) and validation.
//!
//! Everything here is plain data with no I/O. Names of other sections are already
//! resolved to indexes, durations to `Duration`, addresses to `SocketAddr`, so no
//! consumer ever re-validates. A `listen` section appears twice: once in
//! `frontends` (its binds) and once in `backends` (its servers), with the frontend's
//! `default_backend` pointing at its own backend half.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole configuration, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from (for messages).
    pub source: PathBuf,
    pub global: Global,
    /// `[[frontend]]` and the frontend half of `[[listen]]`, in file order.
    pub frontends: Vec<Frontend>,
    /// `[[backend]]` and the backend half of `[[listen]]`, in file order.
    pub backends: Vec<Backend>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// Process-wide session limit, exact across shards. HAProxy's default when
    /// unset is derived from the fd limit; ours is 4096 (HAProxy's DEFAULT_MAXCONN
    /// era value) unless configured.
    pub maxconn: u32,
    /// `None` = one data shard per CPU the process may run on.
    pub shards: Option<usize>,
    pub pidfile: Option<PathBuf>,
    pub daemon: bool,
    /// Who the process becomes once every socket and log is open (a name or
    /// a number), and the directory it is jailed in (`chroot`).
    pub user: Option<String>,
    pub group: Option<String>,
    pub chroot: Option<PathBuf>,
    pub log: Vec<LogTarget>,
    pub hard_stop_after: Option<Duration>,
    pub admin_socket: Option<PathBuf>,
    /// `server-state-file`: read at startup by the backends with
    /// `load-server-state-from-file global`.
    pub server_state_file: Option<PathBuf>,
    /// `stats socket ... expose-fd listeners`: a successor started with `-x`
    /// may take this process's listening sockets (served beside the admin
    /// socket, `crate::handover`).
    pub expose_fd_listeners: bool,
    /// `master-worker`: a master process holds the listeners and runs the
    /// proxy in a worker it replaces on SIGUSR2 (`crate::master`).
    pub master_worker: bool,
    pub tune: Tune,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tune {
    /// `F_SETPIPE_SZ` for every pooled pipe, bytes. Default: the kernel's (64 KiB).
    pub pipesize: usize,
    /// Most pipes the process may hold at once (each pipe is 2 fds), split evenly
    /// across shards. 0 = `global.maxconn / 4`, as HAProxy (at least 16 per shard).
    pub maxpipes: usize,
    /// Size of copy-path buffers, bytes. Default 16384, as HAProxy.
    pub bufsize: usize,
    /// `false` forces the copy path everywhere.
    pub splice: bool,
    /// Small messages move on io_uring proper: multishot recv into a per-shard
    /// provided-buffer ring, sends as SQEs (`false`: the poll + recv/send path).
    pub ring_copy: bool,
    /// Buffers (of `bufsize` bytes) in each shard's provided-buffer ring; a
    /// power of two. A session holds one only while bytes are in flight.
    pub ring_buffers: u16,
    /// `tune.stats-counters`: shards keep their traffic counters, session
    /// rates and latency histograms (the stats page, CSV and metrics read
    /// them). `false` leaves those at zero to measure what counting costs;
    /// limits, queues, gauges and logs are unaffected.
    pub stats_counters: bool,
    /// `tune.http.maxhdr`: most header lines in a message (HAProxy: 101).
    pub http_maxhdr: usize,
    /// `tune.maxrewrite`: part of `bufsize` a request head may not use, kept
    /// for what rules add (HAProxy: 1024).
    pub maxrewrite: usize,
    /// `tune.ssl.lifetime`, seconds: a TLS session ticket older than this is
    /// not resumed (HAProxy: 300).
    pub ssl_lifetime: u32,
    /// `tune.ssl.ktls on`: kernel TLS after the handshake, where the kernel
    /// offers the `tls` ULP (see `crate::tls::ktls`).
    pub ssl_ktls: bool,
}

impl Default for Tune {
    fn default() -> Self {
        Tune {
            pipesize: 65536,
            maxpipes: 0,
            bufsize: 16384,
            splice: true,
            ring_copy: true,
            ring_buffers: 512,
            stats_counters: true,
            http_maxhdr: 101,
            maxrewrite: 1024,
            ssl_lifetime: crate::tls::DEFAULT_TICKET_LIFETIME,
            ssl_ktls: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub dest: LogDest,
    /// syslog facility number (local0 = 16 … local7 = 23, user = 1, daemon = 3 …).
    pub facility: u8,
    /// Most verbose level sent to this target (syslog numbering: 0 emerg … 7 debug).
    pub level: u8,
    /// Least verbose level sent (lines more severe than this are clamped to it),
    /// HAProxy's optional fourth `log` argument.
    pub min_level: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDest {
    Stdout,
    Stderr,
    /// RFC3164 syslog over UDP.
    Udp(SocketAddr),
    /// RFC3164 syslog over a unix datagram socket, e.g. `/dev/log`.
    Unix(PathBuf),
    /// Plain lines appended to a file.
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tcp,
    Http,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormat {
    /// HAProxy's `option tcplog`.
    Tcp,
    /// HAProxy's `option httplog`.
    Http,
    /// `log-format "..."`: HAProxy's variables and `%[...]` samples.
    Custom(std::sync::Arc<crate::log::LogFormat>),
    /// No per-session line (HAProxy logs only a minimal line without an option;
    /// we log none).
    None,
}

/// Every timeout a section may carry; `None` = not set (infinite, as HAProxy,
/// which warns about it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeouts {
    pub connect: Option<Duration>,
    pub client: Option<Duration>,
    pub server: Option<Duration>,
    pub tunnel: Option<Duration>,
    pub client_fin: Option<Duration>,
    pub server_fin: Option<Duration>,
    pub queue: Option<Duration>,
    pub check: Option<Duration>,
    pub http_request: Option<Duration>,
    pub http_keep_alive: Option<Duration>,
    /// How long `http-request tarpit` holds a request (HAProxy: `timeout
    /// connect` when unset).
    pub tarpit: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bind {
    pub addr: SocketAddr,
    /// listen(2) backlog; default = the frontend's maxconn (as HAProxy), capped by
    /// the kernel at somaxconn.
    pub backlog: u32,
    pub accept_proxy: bool,
    /// `freebind` / `transparent`: the address may be one this host does not
    /// hold yet (a keepalived virtual IP on the backup).
    pub freebind: bool,
    pub transparent: bool,
    /// `ssl crt ...`: TLS termination, certificates loaded.
    pub tls: Option<std::sync::Arc<crate::tls::BindTls>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Frontend {
    pub name: String,
    /// `errorfile`: responses sent instead of the built-in error pages.
    pub errorfiles: crate::config::errorfile::ErrorFiles,
    /// `capture request header` lines (`%hr`), in order.
    pub request_captures: Vec<crate::http::capture::HeaderCapture>,
    /// `capture response header` lines (`%hs`), in order.
    pub response_captures: Vec<crate::http::capture::HeaderCapture>,
    pub binds: Vec<Bind>,
    pub mode: Mode,
    /// 0 = only the global limit applies.
    pub maxconn: u32,
    /// Index into `Config::backends`.
    pub default_backend: Option<usize>,
    /// `use-backend` rules kept as HAProxy condition strings (evaluated by L7 code
    /// in a later issue); `backend` is an index into `Config::backends`.
    pub use_backend: Vec<UseBackend>,
    pub acl: Vec<(String, String)>,
    pub timeouts: Timeouts,
    /// Resolved targets (`log = "global"` copies the global list).
    pub log: Vec<LogTarget>,
    pub log_format: LogFormat,
    pub dontlognull: bool,
    pub disabled: bool,
    /// `option forwardfor [except NET] [header NAME] [if-none]`.
    pub forwardfor: Option<crate::http::rewrite::ForwardFor>,
    pub http_keep_alive: bool,
    pub httpclose: bool,
    /// `option http-server-close`: the client side stays persistent, the
    /// server connection closes after each response (`httpclose` wins).
    pub http_server_close: bool,
    pub http_request: Vec<String>,
    pub http_response: Vec<String>,
    /// `tcp-request inspect-delay`: how long `tcp-request content` rules may
    /// wait for the client's first bytes (`None`: they decide at once).
    pub tcp_inspect_delay: Option<Duration>,
    /// `tcp-request content accept|reject [if|unless COND]`, in order.
    pub tcp_content: Vec<String>,
    /// The statistics page, served by the control shard on this frontend's binds.
    pub stats: Option<StatsSpec>,
    /// `acl`, `use-backend`, `http-request`, `http-response` and
    /// `tcp-request content` compiled.
    pub rules: Rules,
}

/// A section's ACLs, routing and rules compiled at load (see
/// `http::rules::SectionRules`); empty for a section without any. Equality
/// ignores it: it is derived from the strings the model already holds.
#[derive(Clone, Default)]
pub struct Rules(pub Option<std::sync::Arc<crate::http::rules::SectionRules>>);

impl Rules {
    pub fn get(&self) -> Option<&crate::http::rules::SectionRules> {
        self.0.as_deref()
    }
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Rules(none)"),
            Some(r) => write!(
                f,
                "Rules({} acls, {} routes, {} request, {} response)",
                r.acls.len(),
                r.use_backend.len(),
                r.request.len(),
                r.response.len()
            ),
        }
    }
}

impl PartialEq for Rules {
    fn eq(&self, _: &Rules) -> bool {
        true
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatsSpec {
    pub uri: String,
    pub refresh: Option<Duration>,
    pub realm: Option<String>,
    /// `user:password` pairs.
    pub auth: Vec<String>,
    pub admin: Option<String>,
    /// `stats admin unless COND`: `admin` holds the condition, negated.
    pub admin_negate: bool,
    /// `stats hide-version`: the page does not show ringlb's version.
    pub hide_version: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseBackend {
    pub backend: usize,
    /// `if` or `unless` condition text; `negate` is true for `unless`.
    pub condition: String,
    pub negate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    StaticRr,
    LeastConn,
    First,
    Source,
    Random,
    Uri,
    UrlParam,
    Hdr,
}

impl Balance {
    /// Does choosing a server read the client's address? In TCP mode the
    /// hash-based algorithms all hash it (`uri`, `url_param` and `hdr` fall back
    /// to it, as HAProxy does without an HTTP request).
    pub fn hashes_client(self) -> bool {
        matches!(
            self,
            Balance::Source | Balance::Uri | Balance::UrlParam | Balance::Hdr
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashType {
    MapBased,
    Consistent,
}

/// HAProxy's `http-reuse` (mode http): when a request may be sent on an idle
/// server connection another request left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpReuse {
    /// Never: each client connection keeps its own server connection.
    Never,
    /// A client connection's first request gets a connection of its own; later
    /// ones may take any idle one (HAProxy's default).
    #[default]
    Safe,
    /// Any request may take an idle connection (`aggressive` means the same
    /// here: every parked connection has already carried a request).
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMarkedDown {
    Nothing,
    ShutdownSessions,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    pub name: String,
    pub mode: Mode,
    pub balance: Balance,
    /// Argument of `url_param(NAME)` / `hdr(NAME)`.
    pub balance_arg: Option<String>,
    /// Options after the algorithm (`uri len N depth N whole path-only`,
    /// `hdr(NAME) use_domain_only`).
    pub balance_opts: BalanceOptions,
    pub hash_type: HashType,
    pub servers: Vec<Server>,
    pub timeouts: Timeouts,
    /// Connect attempts after the first one fails (HAProxy default 3).
    pub retries: u32,
    /// `option redispatch`: the last retry may go to another server.
    pub redispatch: bool,
    /// `option persist`: a request whose persistence cookie (or `use-server`)
    /// names a DOWN server still goes to it (redispatched only if `redispatch`
    /// and the connection fails).
    pub persist: bool,
    pub check: CheckSpec,
    /// `http-reuse`: which requests may ride an idle server connection.
    /// `load-server-state-from-file global`: servers start as the global
    /// `server-state-file` saved them.
    pub load_server_state: bool,
    pub http_reuse: HttpReuse,
    pub disabled: bool,
    /// `option forwardfor` in the backend: used (its header name, its
    /// `except`) for requests routed here, else the frontend's applies.
    pub forwardfor: Option<crate::http::rewrite::ForwardFor>,
    /// `errorfile`: responses sent instead of the built-in error pages.
    pub errorfiles: crate::config::errorfile::ErrorFiles,
    pub cookie: Option<CookieSpec>,
    pub http_request: Vec<String>,
    pub http_response: Vec<String>,
    /// The backend's own `acl` and rules compiled (a `listen`'s are on its
    /// frontend half).
    pub rules: Rules,
}

/// What `balance uri` and `balance hdr(NAME)` take after the algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BalanceOptions {
    pub uri: crate::http::hashkey::UriOptions,
    pub use_domain_only: bool,
}

/// An explicit `pool-max-conn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMax {
    /// `-1`: no bound at all.
    Unlimited,
    /// Idle connections kept across shards.
    Max(u32),
}

/// A server's state as `show servers state` saved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedState {
    /// Operational state was running (HAProxy's `srv_op_state` 2).
    pub up: bool,
    /// Forced maintenance (`srv_admin_state` bit 0x01).
    pub maint: bool,
    /// Forced drain (`srv_admin_state` bit 0x08).
    pub drain: bool,
    /// `srv_uweight`.
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSpec {
    pub name: String,
    /// "insert", "rewrite" or "prefix".
    pub mode: String,
    pub indirect: bool,
    pub nocache: bool,
    pub postonly: bool,
    pub preserve: bool,
    pub httponly: bool,
    pub secure: bool,
    pub domain: Option<String>,
    pub maxidle: Option<Duration>,
    pub maxlife: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    V1,
    V2,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    /// 0..=256; 0 = takes no new sessions from load balancing.
    pub weight: u32,
    /// 0 = unlimited.
    pub maxconn: u32,
    /// 0 = unlimited queue.
    pub maxqueue: u32,
    pub check: bool,
    /// Health-check timing (HAProxy defaults: inter 2s, fastinter = inter,
    /// downinter = inter, rise 2, fall 3).
    pub inter: Duration,
    pub fastinter: Duration,
    pub downinter: Duration,
    pub rise: u32,
    pub fall: u32,
    /// Check port override (`port`).
    pub check_port: Option<u16>,
    /// Check address override (`addr`).
    pub check_addr: Option<std::net::IpAddr>,
    pub backup: bool,
    pub disabled: bool,
    pub cookie: Option<String>,
    pub send_proxy: Option<ProxyProtocol>,
    /// `ssl`: TLS to this server (client config built, CA loaded).
    pub ssl: Option<std::sync::Arc<crate::tls::ServerTls>>,
    /// What health checks speak TLS with (`check-ssl`, or `ssl` checked on
    /// the server's own address); `None`: plain TCP.
    pub check_tls: Option<std::sync::Arc<crate::tls::ServerTls>>,
    pub slowstart: Option<Duration>,
    /// `on-marked-down shutdown-sessions`: when this server is marked DOWN
    /// (or put in maintenance) its sessions are closed.
    pub on_marked_down: OnMarkedDown,
    /// `on-marked-up shutdown-backup-sessions`: when this (active) server comes
    /// back up, the sessions on the backend's backup servers are closed (their
    /// clients reconnect to the active ones).
    pub shutdown_backup_sessions: bool,
    /// The state `load-server-state-from-file` found for this server at
    /// startup (set by `server_state::apply`, never by the parser).
    pub saved: Option<SavedState>,
    /// `pool-max-conn`: idle HTTP connections kept for this server, across
    /// shards (`Some(0)`: none kept). `None` when not set: each shard then
    /// keeps at most `idle::DEFAULT_MAX_IDLE` per server, standing in for
    /// HAProxy's bound on idle connections (`tune.pool-high-fd-ratio`, a share
    /// of the fd limit); `pool-max-conn -1` lifts every bound.
    pub pool_max_conn: Option<PoolMax>,
    /// `pool-purge-delay`: each period, half of the server's idle connections
    /// are closed (HAProxy's default 5 s; zero: never).
    pub pool_purge_delay: Duration,
    /// `pool-low-conn`: accepted for HAProxy configs; shards never take each
    /// other's idle connections, so each already keeps its own.
    pub pool_low_conn: u32,
}

/// How a backend's servers are checked (`check = { ... }`); only servers with
/// `check = true` are checked at all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CheckSpec {
    /// Connect only (HAProxy's default when `check` is set without an option).
    #[default]
    Tcp,
    Http {
        method: String,
        uri: String,
        version: String,
        host: Option<String>,
        expect: HttpExpect,
    },
    /// `PING` → `+PONG` (option redis-check).
    Redis,
    /// option pgsql-check.
    Pgsql { user: String },
    /// option mysql-check.
    Mysql { user: Option<String> },
    /// Ordered tcp-check steps.
    TcpCheck { steps: Vec<TcpCheckStep> },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HttpExpect {
    /// HAProxy default: any 2xx or 3xx status.
    #[default]
    Status2xx3xx,
    Status(u16),
    /// Regex over the status code text.
    RStatus(Pattern),
    /// Substring of the body.
    String(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpCheckStep {
    Connect,
    /// Bytes to send (escapes like `\r\n` already decoded).
    Send(Vec<u8>),
    /// Hex already decoded.
    SendBinary(Vec<u8>),
    ExpectString(String),
    ExpectRString(Pattern),
    ExpectBinary(Vec<u8>),
}

/// A regular expression compiled once, when the configuration is loaded (a bad
/// one is a config error with its position), and kept with its source text for
/// messages and comparison.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    pub regex: regex::bytes::Regex,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Pattern, String> {
        regex::bytes::Regex::new(source)
            .map(|regex| Pattern {
                source: source.to_string(),
                regex,
            })
            .map_err(|e| format!("invalid regex \"{}\": {e}", super::values::excerpt(source)))
    }

    pub fn is_match(&self, hay: &[u8]) -> bool {
        self.regex.is_match(hay)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}
