//! The one place integration tests build ringlb's TOML configuration (the
//! contract in /work/shared/CONFIG.md): `[global]`, `[defaults]`, and
//! `[[listen]]` / `[[frontend]]` / `[[backend]]` sections with their binds and
//! servers. Names, addresses, paths and durations are quoted and escaped here;
//! common keys have methods, any other key is one `key = value` line
//! (`Cfg::global`, `Cfg::defaults`, `Proxy::extra`), and `Cfg::raw` appends
//! whole sections. Not built here: haproxy.cfg text (fed to HAProxy or
//! `ringlb -f x.cfg`, HAProxy's syntax on purpose), shipped config files, and
//! the few configs whose exact layout a test pins (`FILE:LINE:COL` checks).
//!
//! ```ignore
//! let toml = Cfg::new()
//!     .mode("tcp")
//!     .timeouts("2s", "30s", "30s")
//!     .listen(Proxy::new("l").port(port).server("s1", addr).balance("leastconn"))
//!     .build();
//! ```

use std::fmt::{Display, Write as _};

/// `s` as a TOML basic string, quotes included.
pub fn q(s: impl Display) -> String {
    let s = s.to_string();
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `{ k = "v", ... }` with every value quoted (durations and the like).
fn inline_strings(pairs: &[(String, String)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k} = {}", q(v)))
        .collect();
    format!("{{ {} }}", body.join(", "))
}

/// `{ first, extra }`, or `{ first }` when `extra` is empty.
fn inline_table(first: String, extra: &str) -> String {
    if extra.trim().is_empty() {
        format!("{{ {first} }}")
    } else {
        format!("{{ {first}, {} }}", extra.trim())
    }
}

/// Sets `key` in an ordered list of pairs (replacing an earlier value).
fn set(pairs: &mut Vec<(String, String)>, key: &str, value: &str) {
    match pairs.iter_mut().find(|(k, _)| k == key) {
        Some(p) => p.1 = value.to_string(),
        None => pairs.push((key.to_string(), value.to_string())),
    }
}

/// A whole ringlb TOML configuration.
#[derive(Clone, Debug, Default)]
pub struct Cfg {
    global: Vec<String>,
    log: Vec<String>,
    defaults: Vec<String>,
    timeouts: Vec<(String, String)>,
    sections: Vec<String>,
    raw: Vec<String>,
}

impl Cfg {
    pub fn new() -> Cfg {
        Cfg::default()
    }

    /// One `key = value` line of `[global]` (empty lines are skipped).
    pub fn global(mut self, line: impl Display) -> Cfg {
        let line = line.to_string();
        if !line.trim().is_empty() {
            self.global.push(line);
        }
        self
    }

    /// `[global] admin-socket`: the runtime API's UNIX socket.
    pub fn admin_socket(self, path: impl Display) -> Cfg {
        self.global(format!("admin-socket = {}", q(path)))
    }

    /// A `[global]` `log` target (`"stdout"`, `"udp://H:P"`, a file path…).
    pub fn log(self, target: impl Display) -> Cfg {
        self.log_with(target, "")
    }

    /// A `[global]` `log` target with more keys, e.g.
    /// `facility = "local0", level = "info"`.
    pub fn log_with(mut self, target: impl Display, extra: &str) -> Cfg {
        self.log
            .push(inline_table(format!("target = {}", q(target)), extra));
        self
    }

    /// One `key = value` line of `[defaults]` (empty lines are skipped).
    pub fn defaults(mut self, line: impl Display) -> Cfg {
        let line = line.to_string();
        if !line.trim().is_empty() {
            self.defaults.push(line);
        }
        self
    }

    /// `[defaults] mode`.
    pub fn mode(self, mode: &str) -> Cfg {
        self.defaults(format!("mode = {}", q(mode)))
    }

    /// `[defaults] log-format` (`"tcplog"`, `"httplog"`…).
    pub fn log_format(self, format: &str) -> Cfg {
        self.defaults(format!("log-format = {}", q(format)))
    }

    /// `[defaults]` sessions logged to the global targets in `format`.
    pub fn log_global(self, format: &str) -> Cfg {
        self.defaults("log = \"global\"").log_format(format)
    }

    /// `[defaults] timeout`: exactly connect, client and server (any earlier
    /// timeouts are dropped; add more with [`Cfg::timeout`]).
    pub fn timeouts(mut self, connect: &str, client: &str, server: &str) -> Cfg {
        self.timeouts.clear();
        self.timeout("connect", connect)
            .timeout("client", client)
            .timeout("server", server)
    }

    /// One `[defaults] timeout` key (`"queue"`, `"http-request"`…), replacing
    /// an earlier value of the same key.
    pub fn timeout(mut self, key: &str, value: &str) -> Cfg {
        set(&mut self.timeouts, key, value);
        self
    }

    /// Whether any `[defaults]` timeout was set.
    pub fn has_timeouts(&self) -> bool {
        !self.timeouts.is_empty()
    }

    pub fn listen(self, p: Proxy) -> Cfg {
        self.section("listen", p)
    }

    pub fn frontend(self, p: Proxy) -> Cfg {
        self.section("frontend", p)
    }

    pub fn backend(self, p: Proxy) -> Cfg {
        self.section("backend", p)
    }

    fn section(mut self, kind: &str, p: Proxy) -> Cfg {
        self.sections.push(p.render(kind));
        self
    }

    /// Text appended as is after everything else (whole sections).
    pub fn raw(mut self, text: impl Display) -> Cfg {
        self.raw.push(text.to_string());
        self
    }

    pub fn build(&self) -> String {
        let mut out = String::new();
        if !self.global.is_empty() || !self.log.is_empty() {
            out.push_str("[global]\n");
            for l in &self.global {
                let _ = writeln!(out, "{l}");
            }
            if !self.log.is_empty() {
                let _ = writeln!(out, "log = [{}]", self.log.join(", "));
            }
            out.push('\n');
        }
        if !self.defaults.is_empty() || !self.timeouts.is_empty() {
            out.push_str("[defaults]\n");
            for l in &self.defaults {
                let _ = writeln!(out, "{l}");
            }
            if !self.timeouts.is_empty() {
                let _ = writeln!(out, "timeout = {}", inline_strings(&self.timeouts));
            }
            out.push('\n');
        }
        for s in &self.sections {
            out.push_str(s);
            out.push('\n');
        }
        for r in &self.raw {
            out.push_str(r);
            if !r.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

/// A `[[listen]]`, `[[frontend]]` or `[[backend]]` section (which one is said
/// by the [`Cfg`] method it is given to).
#[derive(Clone, Debug)]
pub struct Proxy {
    name: String,
    binds: Vec<String>,
    lines: Vec<String>,
    log: Vec<String>,
    timeouts: Vec<(String, String)>,
    servers: Vec<String>,
}

impl Proxy {
    pub fn new(name: &str) -> Proxy {
        Proxy {
            name: name.to_string(),
            binds: Vec::new(),
            lines: Vec::new(),
            log: Vec::new(),
            timeouts: Vec::new(),
            servers: Vec::new(),
        }
    }

    /// Binds `127.0.0.1:port`.
    pub fn port(self, port: u16) -> Proxy {
        self.bind(format!("127.0.0.1:{port}"))
    }

    /// Binds an address (`"127.0.0.1:80"`, `"[::1]:80"`, `"*:80"`).
    pub fn bind(mut self, addr: impl Display) -> Proxy {
        self.binds.push(q(addr));
        self
    }

    /// Binds an address with more keys, e.g. `accept-proxy = true`.
    pub fn bind_with(mut self, addr: impl Display, extra: &str) -> Proxy {
        self.binds
            .push(inline_table(format!("address = {}", q(addr)), extra));
        self
    }

    /// One `key = value` line of the section (empty lines are skipped).
    pub fn extra(mut self, line: impl Display) -> Proxy {
        let line = line.to_string();
        if !line.trim().is_empty() {
            self.lines.push(line);
        }
        self
    }

    pub fn default_backend(self, name: &str) -> Proxy {
        self.extra(format!("default-backend = {}", q(name)))
    }

    pub fn balance(self, algorithm: &str) -> Proxy {
        self.extra(format!("balance = {}", q(algorithm)))
    }

    pub fn mode(self, mode: &str) -> Proxy {
        self.extra(format!("mode = {}", q(mode)))
    }

    /// The section's stats page: `stats = { KEYS }`, e.g.
    /// `uri = "/stats", auth = ["admin:admin"]`.
    pub fn stats(self, keys: &str) -> Proxy {
        self.extra(format!("stats = {{ {} }}", keys.trim()))
    }

    /// The section's health check: `check = { KEYS }`, e.g.
    /// `type = "http", uri = "/"`.
    pub fn check(self, keys: &str) -> Proxy {
        self.extra(format!("check = {{ {} }}", keys.trim()))
    }

    /// A section `log` target (a file path, `"udp://H:P"`…).
    pub fn log(mut self, target: impl Display) -> Proxy {
        self.log
            .push(inline_table(format!("target = {}", q(target)), ""));
        self
    }

    /// One section `timeout` key, e.g. `("queue", "300ms")`.
    pub fn timeout(mut self, key: &str, value: &str) -> Proxy {
        set(&mut self.timeouts, key, value);
        self
    }

    /// A server `{ name, address }`.
    pub fn server(self, name: &str, addr: impl Display) -> Proxy {
        self.server_with(name, addr, "")
    }

    /// A server with more keys, e.g. `maxconn = 1, check = true`.
    pub fn server_with(mut self, name: &str, addr: impl Display, extra: &str) -> Proxy {
        self.servers.push(inline_table(
            format!("name = {}, address = {}", q(name), q(addr)),
            extra,
        ));
        self
    }

    fn render(&self, kind: &str) -> String {
        let mut out = format!("[[{kind}]]\nname = {}\n", q(&self.name));
        if !self.binds.is_empty() {
            let _ = writeln!(out, "bind = [{}]", self.binds.join(", "));
        }
        for l in &self.lines {
            let _ = writeln!(out, "{l}");
        }
        if !self.log.is_empty() {
            let _ = writeln!(out, "log = [{}]", self.log.join(", "));
        }
        if !self.timeouts.is_empty() {
            let _ = writeln!(out, "timeout = {}", inline_strings(&self.timeouts));
        }
        if !self.servers.is_empty() {
            let _ = writeln!(out, "servers = [{}]", self.servers.join(", "));
        }
        out
    }
}
