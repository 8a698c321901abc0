//! The TOML schema exactly as users write it (CONFIG.md): serde structs with
//! kebab-case keys, every table refusing unknown keys, and `Spanned` wherever a
//! later validation error must point at a value. No meaning is given here; that
//! is `resolve`'s job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    #[serde(default)]
    pub global: Option<Spanned<RawGlobal>>,
    #[serde(default)]
    pub defaults: Option<Spanned<RawProxy>>,
    #[serde(default)]
    pub frontend: Vec<Spanned<RawProxy>>,
    #[serde(default)]
    pub backend: Vec<Spanned<RawProxy>>,
    #[serde(default)]
    pub listen: Vec<Spanned<RawProxy>>,
    /// `userlist NAME` sections: their lines (`user ...`, `group ...`).
    #[serde(default)]
    pub userlist: Option<BTreeMap<String, Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawGlobal {
    pub maxconn: Option<Spanned<i64>>,
    pub shards: Option<Spanned<RawShards>>,
    pub pidfile: Option<String>,
    pub daemon: Option<bool>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub chroot: Option<String>,
    pub log: Option<Vec<Spanned<RawLogTarget>>>,
    pub hard_stop_after: Option<Spanned<RawDuration>>,
    pub admin_socket: Option<String>,
    /// `server-state-file`: where `show servers state` was saved before a
    /// reload, read at startup by backends that ask for it.
    pub server_state_file: Option<String>,
    pub expose_fd_listeners: Option<bool>,
    pub master_worker: Option<bool>,
    pub tune: Option<RawTune>,
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(untagged)]
pub enum RawShards {
    Count(i64),
    Word(String),
}

#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawTune {
    pub pipesize: Option<Spanned<i64>>,
    pub maxpipes: Option<Spanned<i64>>,
    pub bufsize: Option<Spanned<i64>>,
    pub splice: Option<bool>,
    pub ring_copy: Option<bool>,
    pub ring_buffers: Option<Spanned<i64>>,
    pub stats_counters: Option<bool>,
    /// `tune.http.maxhdr`: header lines a request or response may have.
    pub http_maxhdr: Option<Spanned<i64>>,
    /// `tune.maxrewrite`: room kept in a buffer for headers rules add.
    pub maxrewrite: Option<Spanned<i64>>,
    /// `tune.ssl.lifetime`: how long a TLS session ticket is honoured.
    pub ssl_lifetime: Option<Spanned<RawDuration>>,
    /// `tune.ssl.ktls`: hand TLS records to the kernel after the handshake.
    pub ssl_ktls: Option<bool>,
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawLogTarget {
    pub target: String,
    pub facility: Option<String>,
    pub level: Option<String>,
    pub min_level: Option<String>,
}

/// `log = "global"` or a list of targets.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(untagged)]
pub enum RawProxyLog {
    Word(String),
    Targets(Vec<RawLogTarget>),
}

/// A duration: a string with a unit, or an integer in milliseconds.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(untagged)]
pub enum RawDuration {
    Millis(i64),
    Text(String),
}

#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawTimeouts {
    pub connect: Option<Spanned<RawDuration>>,
    pub client: Option<Spanned<RawDuration>>,
    pub server: Option<Spanned<RawDuration>>,
    pub tunnel: Option<Spanned<RawDuration>>,
    pub client_fin: Option<Spanned<RawDuration>>,
    pub server_fin: Option<Spanned<RawDuration>>,
    pub queue: Option<Spanned<RawDuration>>,
    pub check: Option<Spanned<RawDuration>>,
    pub http_request: Option<Spanned<RawDuration>>,
    pub http_keep_alive: Option<Spanned<RawDuration>>,
    pub tarpit: Option<Spanned<RawDuration>>,
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(untagged)]
pub enum RawBind {
    Address(String),
    Table(RawBindTable),
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawBindTable {
    pub address: String,
    pub ssl: Option<toml::Table>,
    pub accept_proxy: Option<bool>,
    pub backlog: Option<i64>,
    /// `freebind`: bind an address this host does not hold (yet): IP_FREEBIND.
    pub freebind: Option<bool>,
    /// `transparent`: IP_TRANSPARENT (needs CAP_NET_ADMIN); binds any address.
    pub transparent: Option<bool>,
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawUseBackend {
    pub backend: Spanned<String>,
    #[serde(rename = "if")]
    pub if_: Option<Spanned<String>>,
    pub unless: Option<Spanned<String>>,
}

/// `tcp-request = { inspect-delay = "5s", content = ["accept if COND",
/// "reject"] }` (a mode-tcp frontend's or listen's): HAProxy's
/// `tcp-request inspect-delay` and `tcp-request content accept|reject`.
#[derive(Debug, Deserialize, Serialize, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawTcpRequest {
    pub inspect_delay: Option<Spanned<RawDuration>>,
    pub content: Option<Vec<Spanned<String>>>,
}

/// `use-server = [{ server = "NAME", if = "COND" }]` (a backend's).
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawUseServer {
    pub server: Spanned<String>,
    #[serde(rename = "if")]
    pub if_: Option<Spanned<String>>,
    pub unless: Option<Spanned<String>>,
}

/// `capture request header NAME len N` / `capture response header ...`.
#[derive(Debug, Deserialize, Serialize, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCaptures {
    pub request: Option<Vec<Spanned<RawCapture>>>,
    pub response: Option<Vec<Spanned<RawCapture>>>,
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCapture {
    pub header: String,
    pub len: i64,
}

#[derive(Debug, Deserialize, Serialize, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCookie {
    pub name: String,
    pub mode: Option<Spanned<String>>,
    pub indirect: Option<bool>,
    pub nocache: Option<bool>,
    pub postonly: Option<bool>,
    pub preserve: Option<bool>,
    pub httponly: Option<bool>,
    pub secure: Option<bool>,
    pub domain: Option<String>,
    pub maxidle: Option<Spanned<RawDuration>>,
    pub maxlife: Option<Spanned<RawDuration>>,
}

#[derive(Debug, Deserialize, Serialize, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCheck {
    #[serde(rename = "type")]
    pub type_: Option<Spanned<String>>,
    pub method: Option<String>,
    pub uri: Option<String>,
    pub version: Option<String>,
    pub host: Option<String>,
    pub expect: Option<Spanned<String>>,
    pub user: Option<String>,
    pub steps: Option<Vec<Spanned<RawCheckStep>>>,
}

#[derive(Debug, Deserialize, Serialize, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCheckStep {
    pub connect: Option<bool>,
    pub send: Option<String>,
    pub send_binary: Option<String>,
    pub expect: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawStats {
    pub uri: Option<String>,
    pub refresh: Option<Spanned<RawDuration>>,
    pub realm: Option<String>,
    pub auth: Option<Vec<String>>,
    pub admin: Option<String>,
    /// `stats admin unless COND`.
    pub admin_unless: Option<String>,
    pub hide_version: Option<bool>,
}

/// A server line, or `default-server` (where `name` and `address` are absent).
#[derive(Debug, Deserialize, Serialize, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawServer {
    pub name: Option<Spanned<String>>,
    pub address: Option<Spanned<String>>,
    pub weight: Option<Spanned<i64>>,
    pub maxconn: Option<Spanned<i64>>,
    pub maxqueue: Option<Spanned<i64>>,
    pub check: Option<bool>,
    pub inter: Option<Spanned<RawDuration>>,
    pub fastinter: Option<Spanned<RawDuration>>,
    pub downinter: Option<Spanned<RawDuration>>,
    pub rise: Option<Spanned<i64>>,
    pub fall: Option<Spanned<i64>>,
    pub port: Option<Spanned<i64>>,
    pub addr: Option<Spanned<String>>,
    pub backup: Option<bool>,
    pub disabled: Option<bool>,
    pub cookie: Option<String>,
    pub send_proxy: Option<Spanned<String>>,
    pub ssl: Option<bool>,
    /// `check-ssl`: health checks over TLS (with this server's TLS options).
    pub check_ssl: Option<bool>,
    /// TLS to the server: `"required"` (the default) or `"none"`.
    pub verify: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
    /// `crl-file`: revocation lists the server's chain is checked against.
    pub crl_file: Option<Spanned<String>>,
    /// The name sent as SNI (and checked, with `verify = "required"`).
    pub sni: Option<Spanned<String>>,
    /// The name the certificate must carry, when it differs from `sni`.
    pub verifyhost: Option<Spanned<String>>,
    /// `crt`: the client certificate (PEM: certificate, chain, key) shown to
    /// a server that asks for one.
    pub crt: Option<Spanned<String>>,
    pub slowstart: Option<Spanned<RawDuration>>,
    /// Idle HTTP connections kept for the server (-1: no limit, 0: none).
    pub pool_max_conn: Option<Spanned<i64>>,
    /// How often half of the idle connections are closed (0: never).
    pub pool_purge_delay: Option<Spanned<RawDuration>>,
    pub pool_low_conn: Option<Spanned<i64>>,
    /// `on-marked-down shutdown-sessions` for this server (else the backend's).
    pub on_marked_down: Option<Spanned<String>>,
    /// `on-marked-up shutdown-backup-sessions` for this server (else the backend's).
    pub on_marked_up: Option<Spanned<String>>,
}

/// Any proxy section (`defaults`, `frontend`, `backend`, `listen`); which keys a
/// kind may use is checked in `resolve`, so the schema is written once.
#[derive(Debug, Deserialize, Serialize, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawProxy {
    pub name: Option<Spanned<String>>,
    pub bind: Option<Vec<Spanned<RawBind>>>,
    pub mode: Option<Spanned<String>>,
    pub maxconn: Option<Spanned<i64>>,
    pub acl: Option<BTreeMap<String, Spanned<String>>>,
    pub use_backend: Option<Vec<RawUseBackend>>,
    pub use_server: Option<Vec<RawUseServer>>,
    pub default_backend: Option<Spanned<String>>,
    pub http_request: Option<Vec<Spanned<String>>>,
    pub http_response: Option<Vec<Spanned<String>>>,
    pub tcp_request: Option<Spanned<RawTcpRequest>>,
    /// `capture request|response header NAME len N`, in declaration order.
    pub capture: Option<RawCaptures>,
    /// `errorfile CODE FILE`: status code (as written) to the file's path.
    pub errorfile: Option<BTreeMap<String, Spanned<String>>>,
    pub timeout: Option<RawTimeouts>,
    pub log: Option<Spanned<RawProxyLog>>,
    pub disabled: Option<bool>,
    pub forwardfor: Option<bool>,
    /// `option forwardfor header NAME`.
    pub forwardfor_header: Option<Spanned<String>>,
    /// `option forwardfor except NET`.
    pub forwardfor_except: Option<Spanned<String>>,
    /// `option forwardfor if-none`.
    pub forwardfor_if_none: Option<bool>,
    pub http_keep_alive: Option<bool>,
    pub httpclose: Option<bool>,
    pub http_server_close: Option<bool>,
    pub log_format: Option<Spanned<String>>,
    pub dontlognull: Option<bool>,
    pub balance: Option<Spanned<String>>,
    pub hash_type: Option<Spanned<String>>,
    pub cookie: Option<RawCookie>,
    pub check: Option<RawCheck>,
    pub default_server: Option<RawServer>,
    pub servers: Option<Vec<Spanned<RawServer>>>,
    pub retries: Option<Spanned<i64>>,
    pub redispatch: Option<bool>,
    /// `option persist`: a persistence cookie still sticks to a DOWN server.
    pub persist: Option<bool>,
    pub on_marked_down: Option<Spanned<String>>,
    /// `on-marked-up shutdown-backup-sessions`.
    pub on_marked_up: Option<Spanned<String>>,
    pub http_reuse: Option<Spanned<String>>,
    /// `load-server-state-from-file global|none`.
    pub load_server_state_from_file: Option<Spanned<String>>,
    pub stats: Option<RawStats>,
    /// haproxy.cfg only: the source span of each word of each ACL's text (in
    /// token order, across every line that defined it), so an error in a
    /// later `acl` line points at that line.
    #[serde(skip)]
    pub acl_words: BTreeMap<String, Vec<std::ops::Range<usize>>>,
}
