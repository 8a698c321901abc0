//! The runtime API on `stats socket PATH` (TOML `global.admin-socket`), served by
//! the control shard in HAProxy's command syntax and output formats, so `socat`
//! scripts written for HAProxy work: `help`, `show info`, `show stat`,
//! `show servers state [BACKEND]`, `show backend`, `set server B/S state
//! ready|drain|maint`, `set server B/S weight N[%]`, `set weight`, `get weight`,
//! `disable|enable server`, `disable|enable health`, `shutdown sessions server`,
//! `show sess [ID|all]`, `shutdown session ID` (asked of the data shards, see
//! `sessions`), `show errors` (see `errors`), `clear counters [all]`; several commands per line
//! separated by `;`, and `prompt` mode. State and weight changes go through the
//! control shard's server table, which broadcasts them to every data shard; a bad
//! command or argument answers as HAProxy does and changes nothing.

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{UnixListener, UnixStream};

use super::errors;
use super::ops::Ops;
use super::sessions;
use super::stats;
use super::status::Admin;
use super::Table;
use crate::config::model::Config;
use crate::log::{level, Logger};
use crate::state::Shared;

/// Binds the socket (a stale file from an earlier run is replaced), mode 600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        let _ = std::fs::remove_file(path);
    }
    let l = UnixListener::bind(path).map_err(|e| {
        std::io::Error::other(format!("cannot bind stats socket {}: {e}", path.display()))
    })?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    Ok(l)
}

pub struct Api {
    pub config: Arc<Config>,
    pub shared: Arc<Shared>,
    pub logger: Logger,
    pub table: Table,
}

const HELP: &str = "The following commands are valid at this level:
  clear counters [all]                    : clear max statistics counters (or all counters)
  disable health <bk>/<srv>               : disable health checks
  disable server (DEPRECATED)             : disable a server for maintenance (use 'set server' instead)
  enable health <bk>/<srv>                : enable health checks
  enable server  (DEPRECATED)             : enable a disabled server (use 'set server' instead)
  get weight <bk>/<srv>                   : report a server's current weight
  help [<command>]                        : list matching or all commands
  prompt                                  : toggle interactive mode with prompt
  quit                                    : disconnect
  set server <bk>/<srv> [opts]            : change a server's state, weight, address
  set weight <bk>/<srv>  (DEPRECATED)     : change a server's weight (use 'set server' instead)
  shutdown session [id]                   : kill a specific session
  shutdown sessions server <bk>/<srv>     : kill sessions on a server
  show activity                           : show per-shard activity (ring rounds, waits, SQEs, CQEs, bytes by path)
  show backend                            : list backends in the current running config
  show errors [<px>] [request|response]   : report last request and/or response errors for each proxy
  show info                               : report information about the running process [json|typed]
  show sess [id]                          : report the list of current sessions or dump this exact session
  show servers state [<backend>]          : dump volatile server information (all or for a single backend)
  show stat [desc|json|no-maint|typed|up]*: report counters for each proxy and server
";

impl Api {
    pub async fn serve(self, listener: UnixListener) {
        let me = Rc::new(self);
        loop {
            let Ok(conn) = listener.accept().await else {
                continue;
            };
            let me = me.clone();
            glommio::spawn_local(async move { me.session(conn).await }).detach();
        }
    }

    async fn session(&self, mut conn: UnixStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut prompt = false;
        loop {
            // Commands end at a newline (or at EOF for the last one).
            let line = loop {
                if let Some(i) = buf.iter().position(|&b| b == b'\n') {
                    let l: Vec<u8> = buf.drain(..=i).collect();
                    break Some(l);
                }
                match conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => break (!buf.is_empty()).then(|| std::mem::take(&mut buf)),
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        if buf.len() > 64 << 10 {
                            return;
                        }
                    }
                }
            };
            let Some(line) = line else { return };
            let text = String::from_utf8_lossy(&line);
            if text.contains("show activity") {
                // Fresh figures from every shard first.
                super::web::fresh_latency(&self.config, &self.shared).await;
            }
            let mut out = String::new();
            let mut quit = false;
            for cmd in text.trim().split(';') {
                let words: Vec<&str> = cmd.split_whitespace().collect();
                match words.as_slice() {
                    [] => {}
                    ["prompt"] => prompt = !prompt,
                    ["quit"] => quit = true,
                    w => out.push_str(&self.run_async(w).await),
                }
            }
            if prompt {
                out.push_str("\n> ");
            }
            if conn.write_all(out.as_bytes()).await.is_err() || quit || !prompt {
                let _ = conn.flush().await;
                return;
            }
        }
    }

    /// Runs one command, asking the data shards when it is about their
    /// sessions; returns HAProxy's answer.
    async fn run_async(&self, w: &[&str]) -> String {
        match w {
            ["show", "sess"] => sessions::list(&self.config, &sessions::gather(&self.shared).await),
            ["show", "sess", "all"] => {
                let all = sessions::gather(&self.shared).await;
                all.iter()
                    .map(|s| sessions::detail(&self.config, s))
                    .collect::<String>()
                    + "\n"
            }
            ["show", "sess", id, ..] => {
                let all = sessions::gather(&self.shared).await;
                match sessions::parse_id(id).and_then(|id| all.iter().find(|s| s.id == id)) {
                    Some(s) => sessions::detail(&self.config, s) + "\n",
                    None => "Session not found.\n\n".into(),
                }
            }
            ["shutdown", "session", rest @ ..] => {
                let Some(id) = rest.first().and_then(|id| sessions::parse_id(id)) else {
                    return "Session pointer expected (use 'show sess').\n\n".into();
                };
                match sessions::kill(&self.shared, id).await {
                    Some(true) => "\n".into(),
                    _ => "No such session (use 'show sess').\n\n".into(),
                }
            }
            w => self.run(w),
        }
    }

    /// Runs one command; returns HAProxy's answer.
    pub fn run(&self, w: &[&str]) -> String {
        match w {
            ["help", ..] => HELP.to_string(),
            ["show", "stat", rest @ ..] => {
                let t = self.table.borrow();
                let rows = stats::rows(&self.config, &self.shared, &t, None);
                if rest.contains(&"json") {
                    stats::json(&rows)
                } else {
                    stats::csv(&rows) + "\n"
                }
            }
            ["show", "info", ..] => self.info(),
            ["show", "errors", args @ ..] => errors::show(&self.config, &self.shared.errors, args),
            ["show", "activity"] => stats::activity(&self.shared),
            ["show", "backend"] => {
                let mut s = "# name\n".to_string();
                for b in &self.config.backends {
                    s += &format!("{}\n", b.name);
                }
                s + "\n"
            }
            ["show", "servers", "state", rest @ ..] => self.servers_state(rest.first().copied()),
            ["set", "server", target, "state", st] => self.admin(
                target,
                match *st {
                    "ready" => Some(Admin::Ready),
                    "drain" => Some(Admin::Drain),
                    "maint" => Some(Admin::Maint),
                    _ => None,
                },
            ),
            ["set", "server", _, "state", ..] => {
                "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n".into()
            }
            ["set", "server", target, "weight", v] | ["set", "weight", target, v] => {
                self.weight(target, v)
            }
            ["get", "weight", target] => match self.find(target) {
                Err(e) => e,
                Ok((b, s)) => {
                    let cur = self.table.borrow().servers[b][s].weight;
                    let init = self.config.backends[b].servers[s].weight;
                    format!("{cur} (initial {init})\n\n")
                }
            },
            ["set", "server", target, "addr", ip, rest @ ..] => self.set_addr(target, ip, rest),
            ["shutdown", "sessions", "server", target] => match self.find(target) {
                Err(e) => e,
                Ok((backend, server)) => {
                    self.ops().kill_sessions(backend, server);
                    "\n".into()
                }
            },
            ["clear", "counters"] => {
                self.clear(false);
                "\n".into()
            }
            ["clear", "counters", "all"] => {
                self.clear(true);
                "\n".into()
            }
            // HAProxy's `disable|enable server` set or clear only the MAINT
            // flag: a drained server comes back drained.
            ["disable", "server", target] | ["enable", "server", target] => {
                match self.find(target) {
                    Err(e) => e,
                    Ok((b, s)) => {
                        self.ops().set_flags(b, s, Some(w[0] == "disable"), None);
                        "\n".into()
                    }
                }
            }
            ["disable", "health", target] | ["enable", "health", target] => {
                match self.find(target) {
                    Err(e) => e,
                    Ok((b, s)) => {
                        self.ops().set_checks(b, s, w[0] == "enable");
                        "\n".into()
                    }
                }
            }
            _ => format!(
                "Unknown command, but maybe one of the following ones is a better match:\n{}\n",
                HELP.lines().skip(1).take(3).collect::<Vec<_>>().join("\n")
            ),
        }
    }

    /// `set server B/S addr IP [port P]`: new connections (and checks) go to
    /// the new address on every shard; HAProxy's answer says what changed.
    fn set_addr(&self, target: &str, ip: &str, rest: &[&str]) -> String {
        let (b, s) = match self.find(target) {
            Ok(x) => x,
            Err(e) => return e,
        };
        let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
            return format!("Invalid addr '{ip}'\n\n");
        };
        let port = match rest {
            [] => None,
            ["port", p] => match p.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => return format!("Invalid port '{p}'\n\n"),
            },
            _ => {
                return "'set server <srv> addr' expects an IP and optionally 'port <port>'.\n\n"
                    .into()
            }
        };
        let mut table = self.table.borrow_mut();
        let old = table.servers[b][s].addr;
        let new = std::net::SocketAddr::new(ip, port.unwrap_or(old.port()));
        table.servers[b][s].addr = new;
        drop(table);
        for inbox in &self.shared.inboxes {
            inbox.send(crate::state::ShardMsg::ServerAddr {
                backend: b,
                server: s,
                addr: new,
            });
        }
        let mut msg = String::new();
        if old.ip() != new.ip() {
            msg += &format!("IP changed from '{}' to '{}'", old.ip(), new.ip());
        }
        if old.port() != new.port() {
            if !msg.is_empty() {
                msg += ", ";
            }
            msg += &format!("port changed from '{}' to '{}'", old.port(), new.port());
        }
        if msg.is_empty() {
            return "nothing changed\n\n".into();
        }
        let line = format!("{msg} by 'stats socket command'");
        let name = format!(
            "{}/{}",
            self.config.backends[b].name, self.config.backends[b].servers[s].name
        );
        self.logger
            .event(level::NOTICE, format!("{name} changed its {line}"));
        format!("{line}\n\n")
    }

    /// `clear counters`: the maxima (HAProxy's smax, qmax, rate_max); `all`:
    /// every counter.
    fn clear(&self, all: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let sh = &self.shared;
        for f in &sh.frontends {
            f.max_active.store(0, Relaxed);
        }
        for b in &sh.backends {
            b.max_active.store(0, Relaxed);
            b.max_queued.store(0, Relaxed);
            for s in &b.servers {
                s.max_active.store(0, Relaxed);
                if all {
                    s.total.0.store(0, Relaxed);
                    s.connect_errors.store(0, Relaxed);
                    s.retries.store(0, Relaxed);
                    s.redispatches.store(0, Relaxed);
                }
            }
            if all {
                b.total.store(0, Relaxed);
            }
        }
        for c in &sh.counters {
            for k in c
                .frontends
                .iter()
                .chain(&c.backends)
                .chain(c.servers.iter().flatten())
            {
                k.rate_max.store(0, Relaxed);
                if all {
                    k.clear_all();
                }
            }
        }
        if all {
            for f in &sh.frontends {
                f.total.store(0, Relaxed);
            }
        }
    }

    /// `BACKEND/SERVER` → indexes, or HAProxy's error text.
    fn find(&self, target: &str) -> Result<(usize, usize), String> {
        let Some((bn, sn)) = target.split_once('/') else {
            return Err("Require 'backend/server'.\n\n".into());
        };
        let Some(b) = self.config.backends.iter().position(|b| b.name == bn) else {
            return Err("No such backend.\n\n".into());
        };
        let Some(s) = self.config.backends[b]
            .servers
            .iter()
            .position(|s| s.name == sn)
        else {
            return Err("No such server.\n\n".into());
        };
        Ok((b, s))
    }

    fn ops(&self) -> Ops<'_> {
        Ops {
            config: &self.config,
            shared: &self.shared,
            table: &self.table,
            logger: &self.logger,
        }
    }

    fn admin(&self, target: &str, to: Option<Admin>) -> String {
        let Some(to) = to else {
            return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n".into();
        };
        match self.find(target) {
            Ok((b, s)) => {
                self.ops().set_admin(b, s, to);
                "\n".into()
            }
            Err(e) => e,
        }
    }

    fn weight(&self, target: &str, v: &str) -> String {
        let (b, s) = match self.find(target) {
            Ok(x) => x,
            Err(e) => return e,
        };
        let init = self.config.backends[b].servers[s].weight;
        let w = match v.strip_suffix('%') {
            Some(p) => p
                .parse::<u64>()
                .ok()
                .map(|p| (init as u64 * p / 100) as i64),
            None => v.parse::<i64>().ok(),
        };
        let Some(w) = w.filter(|w| (0..=256).contains(w)) else {
            return "Absolute weight can only be between 0 and 256 inclusive.\n\n".into();
        };
        self.table
            .borrow_mut()
            .set(&self.shared, b, s, |st| st.weight = w as u32);
        "\n".into()
    }

    fn servers_state(&self, only: Option<&str>) -> String {
        if let Some(n) = only {
            if !self.config.backends.iter().any(|b| b.name == n) {
                return format!("Can't find backend '{n}'.\n\n");
            }
        }
        let t = self.table.borrow();
        let now = std::time::Instant::now();
        let mut out = String::from(
            "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight \
             srv_iweight srv_time_since_last_change srv_check_status srv_check_result \
             srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id \
             srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr \
             srv_agent_addr srv_agent_port\n",
        );
        for (bi, b) in self.config.backends.iter().enumerate() {
            if only.is_some_and(|n| n != b.name) {
                continue;
            }
            for (si, s) in b.servers.iter().enumerate() {
                let st = &t.servers[bi][si];
                // HAProxy's SRV_ST_* (0 stopped, 2 running) and SRV_ADMF_* bits.
                let op = if st.up { 2 } else { 0 };
                let (maint, drain) = st.admin_flags();
                let admin = u8::from(maint) | (u8::from(drain) << 3);
                out += &format!(
                    "{} {} {} {} {} {op} {admin} {} {} {} {} {} {} {} 0 0 0 - {} - {} {} - - 0\n",
                    bi + 1,
                    b.name,
                    si + 1,
                    s.name,
                    st.addr.ip(),
                    st.weight,
                    s.weight,
                    now.duration_since(st.last_change).as_secs(),
                    if st.checked { 6 } else { 1 },
                    if st.up { 3 } else { 1 },
                    if st.up { s.rise + s.fall - 1 } else { 0 },
                    if st.checks_enabled { 6 } else { 0 },
                    st.addr.port(),
                    u8::from(s.ssl.is_some()),
                    s.check_port.map_or(0, |p| p),
                );
            }
        }
        out + "\n"
    }

    fn info(&self) -> String {
        let t = self.table.borrow();
        let up = t.started.elapsed().as_secs();
        let cum: u64 = self
            .shared
            .frontends
            .iter()
            .map(|f| f.total.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        format!(
            "Name: ringlb\nVersion: {}\nNbthread: {}\nNbproc: 1\nProcess_num: 1\nPid: {}\n\
             Uptime: {}d {}h{:02}m{:02}s\nUptime_sec: {up}\nMaxconn: {}\nHard_maxconn: {}\n\
             CurrConns: {}\nCumConns: {cum}\nStopping: {}\n\n",
            env!("CARGO_PKG_VERSION"),
            self.shared.inboxes.len(),
            std::process::id(),
            up / 86400,
            (up / 3600) % 24,
            (up / 60) % 60,
            up % 60,
            self.config.global.maxconn,
            self.config.global.maxconn,
            self.shared.actconn.get(),
            u8::from(
                self.shared
                    .stopping
                    .load(std::sync::atomic::Ordering::Relaxed)
            ),
        )
    }
}
