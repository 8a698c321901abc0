//! Warnings about a valid configuration that will misbehave, in HAProxy's words
//! where HAProxy warns too: a proxy without the timeouts that bound its sessions.
//! Printed by `check` and `run`; never an error.

use super::model::Config;

/// HAProxy's "missing timeouts" rule: a frontend needs `timeout client`; a
/// backend with servers needs `timeout connect` and `timeout server` (or
/// `timeout tunnel` in TCP mode). A timeout of 0 counts as missing.
pub fn warnings(cfg: &Config) -> Vec<String> {
    let advice = "While not properly invalid, you will certainly encounter various problems \
                  with such a configuration. To fix this, please ensure that all following \
                  timeouts are set to a non-zero value: 'client', 'connect', 'server'.";
    let mut out = Vec::new();
    if cfg.global.tune.ssl_ktls {
        out.push(crate::tls::ktls::unavailable_notice(
            &crate::tls::ktls::available_ulps(),
        ));
    }
    for fe in cfg.frontends.iter().filter(|f| !f.disabled) {
        for b in fe.binds.iter().filter_map(|b| b.tls.as_ref()) {
            out.extend(b.warnings.iter().cloned());
        }
        if fe.timeouts.client.is_none() {
            out.push(format!(
                "warning: missing timeouts for frontend '{}'. {advice}",
                fe.name
            ));
        }
    }
    for be in cfg
        .backends
        .iter()
        .filter(|b| !b.disabled && !b.servers.is_empty())
    {
        let t = &be.timeouts;
        let server_bounded =
            t.server.is_some() || (be.mode == super::model::Mode::Tcp && t.tunnel.is_some());
        if t.connect.is_none() || !server_bounded {
            out.push(format!(
                "warning: missing timeouts for backend '{}'. {advice}",
                be.name
            ));
        }
    }
    // HAProxy: "'http-request' rules ignored for proxy 'x' as they require
    // HTTP mode" (likewise http-response).
    let tcp = super::model::Mode::Tcp;
    for (kind, name, mode, req, res) in cfg
        .frontends
        .iter()
        .map(|f| {
            (
                "proxy",
                &f.name,
                f.mode,
                f.http_request.len(),
                f.http_response.len(),
            )
        })
        .chain(cfg.backends.iter().map(|b| {
            (
                "proxy",
                &b.name,
                b.mode,
                b.http_request.len(),
                b.http_response.len(),
            )
        }))
    {
        for (n, what) in [(req, "http-request"), (res, "http-response")] {
            if mode == tcp && n > 0 {
                out.push(format!(
                    "warning: '{what}' rules ignored for {kind} '{name}' as they require HTTP mode."
                ));
            }
        }
    }
    // A listen appears as a frontend and a backend: say it once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|w| seen.insert(w.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Config {
        crate::config::parse_str(text, std::path::Path::new("t.toml")).unwrap()
    }

    #[test]
    fn missing_or_zero_timeouts_warn_like_haproxy() {
        let cfg = load(
            r#"
[defaults]
timeout = { connect = 0, client = "0s", server = "5s" }
[[frontend]]
name = "f"
bind = ["127.0.0.1:1"]
default-backend = "b"
[[backend]]
name = "b"
servers = [{ name = "s", address = "127.0.0.1:2" }]
"#,
        );
        assert_eq!(cfg.frontends[0].timeouts.client, None, "0 means no timeout");
        assert_eq!(cfg.backends[0].timeouts.connect, None);
        let w = warnings(&cfg);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("warning: missing timeouts for frontend 'f'."));
        assert!(w[1].starts_with("warning: missing timeouts for backend 'b'."));
    }

    #[test]
    fn complete_timeouts_give_no_warning() {
        let cfg = load(
            r#"
[defaults]
timeout = { connect = "5s", client = "10s", server = "10s" }
[[listen]]
name = "l"
bind = ["127.0.0.1:1"]
servers = [{ name = "s", address = "127.0.0.1:2" }]
"#,
        );
        assert!(warnings(&cfg).is_empty(), "{:?}", warnings(&cfg));
    }

    #[test]
    fn http_rules_in_tcp_mode_are_ignored_with_a_warning() {
        let cfg = load(
            r#"
[defaults]
timeout = { connect = "5s", client = "10s", server = "10s" }
[[listen]]
name = "l"
bind = ["127.0.0.1:1"]
http-request = ["deny if { src 10.0.0.0/8 }"]
servers = [{ name = "s", address = "127.0.0.1:2" }]
"#,
        );
        assert_eq!(
            warnings(&cfg),
            ["warning: 'http-request' rules ignored for proxy 'l' as they require HTTP mode."]
        );
    }
}
