//! Startup checks: what a configuration needs from the kernel, compared with what
//! the kernel allows, as warnings that name the numbers and the profile line in
//! `kernel-tuning/` that fixes them. Reads `/proc/sys` and `RLIMIT_NOFILE`; the
//! comparison itself is pure (`warnings`) so tests can feed it any facts.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::config::model::Config;
use crate::sys::process;

/// The kernel limits that matter to ringlb, as read at startup.
#[derive(Debug, Clone, Default)]
pub struct KernelFacts {
    pub somaxconn: Option<u64>,
    pub nr_open: Option<u64>,
    /// (soft, hard) `RLIMIT_NOFILE`.
    pub nofile: Option<(u64, u64)>,
    pub port_range: Option<(u64, u64)>,
    pub tcp_tw_reuse: Option<u64>,
}

fn read_sys(path: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{path}")).ok()
}

impl KernelFacts {
    pub fn read() -> KernelFacts {
        let num = |p: &str| read_sys(p).and_then(|s| s.trim().parse().ok());
        let port_range = read_sys("net/ipv4/ip_local_port_range").and_then(|s| {
            let mut it = s.split_whitespace().filter_map(|x| x.parse().ok());
            Some((it.next()?, it.next()?))
        });
        KernelFacts {
            somaxconn: num("net/core/somaxconn"),
            nr_open: num("fs/nr_open"),
            nofile: process::nofile_limit().ok(),
            port_range,
            tcp_tw_reuse: num("net/ipv4/tcp_tw_reuse"),
        }
    }
}

/// Warnings for `cfg` on the running kernel.
pub fn startup_warnings(cfg: &Config) -> Vec<String> {
    warnings(cfg, &KernelFacts::read())
}

/// Compares what `cfg` needs with `k`; one line per problem.
pub fn warnings(cfg: &Config, k: &KernelFacts) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(somax) = k.somaxconn {
        for fe in &cfg.frontends {
            for b in &fe.binds {
                if b.backlog as u64 > somax {
                    out.push(format!(
                        "warning: net.core.somaxconn is {somax} but frontend \"{}\" bind {} asks for backlog {}; \
                         the kernel caps the accept queue at {somax}, so bursts beyond it are dropped \
                         — apply kernel-tuning/ringlb-base.conf (net.core.somaxconn = 65535)",
                        fe.name, b.addr, b.backlog
                    ));
                }
            }
        }
    }
    let shards = cfg.global.shards.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let need = crate::run::fds_needed(cfg, shards);
    if let Some((_, hard)) = k.nofile {
        let ceiling = k.nr_open.unwrap_or(hard).max(hard);
        if need > ceiling {
            out.push(format!(
                "warning: global.maxconn {} needs {need} file descriptors but RLIMIT_NOFILE hard limit is {hard} \
                 and fs.nr_open is {}; raise them (LimitNOFILE= in the systemd unit, and \
                 kernel-tuning/ringlb-10g.conf: fs.nr_open = 2097152) or lower maxconn",
                cfg.global.maxconn,
                k.nr_open.map(|n| n.to_string()).unwrap_or_else(|| "unknown".into())
            ));
        }
    }
    if let Some((lo, hi)) = k.port_range {
        let ports = hi.saturating_sub(lo) + 1;
        let mut per_dest: HashMap<SocketAddr, u64> = HashMap::new();
        for b in &cfg.backends {
            for s in &b.servers {
                let m = if s.maxconn > 0 {
                    s.maxconn
                } else {
                    cfg.global.maxconn
                } as u64;
                *per_dest.entry(s.addr).or_default() += m;
            }
        }
        if let Some((addr, n)) = per_dest.iter().max_by_key(|(_, n)| **n) {
            if *n > ports {
                out.push(format!(
                    "warning: net.ipv4.ip_local_port_range {lo}-{hi} gives {ports} source ports but up to {n} \
                     connections may go to {addr}; connects will fail with EADDRNOTAVAIL — apply \
                     kernel-tuning/ringlb-base.conf (net.ipv4.ip_local_port_range = 1024 65535) or set server maxconn"
                ));
            }
        }
    }
    // 2 (the default since 5.17) reuses TIME_WAIT only for loopback connections.
    let remote = cfg
        .backends
        .iter()
        .flat_map(|b| &b.servers)
        .any(|s| !s.addr.ip().is_loopback());
    match k.tcp_tw_reuse {
        Some(0) => out.push(
            "warning: net.ipv4.tcp_tw_reuse is 0; under high connection rates to servers, TIME_WAIT sockets \
             exhaust source ports — apply kernel-tuning/ringlb-base.conf (net.ipv4.tcp_tw_reuse = 1)"
                .to_string(),
        ),
        Some(2) if remote => out.push(
            "warning: net.ipv4.tcp_tw_reuse is 2 (loopback only) but some servers are not on loopback; \
             under high connection rates their TIME_WAIT sockets exhaust source ports — apply \
             kernel-tuning/ringlb-base.conf (net.ipv4.tcp_tw_reuse = 1)"
                .to_string(),
        ),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(text: &str) -> Config {
        crate::config::parse_str(text, Path::new("t.toml")).unwrap()
    }

    const CFG: &str = r#"
[global]
maxconn = 30000
shards = 2
[[frontend]]
name = "tcp-in"
bind = ["*:9002"]
default-backend = "b"
[[backend]]
name = "b"
servers = [{ name = "a", address = "127.0.0.1:8000", maxconn = 40000 }]
"#;

    fn tuned() -> KernelFacts {
        KernelFacts {
            somaxconn: Some(65535),
            nr_open: Some(2_097_152),
            nofile: Some((1024, 1_048_576)),
            port_range: Some((1024, 65535)),
            tcp_tw_reuse: Some(1),
        }
    }

    #[test]
    fn loopback_only_tw_reuse_warns_only_for_remote_servers() {
        let k = KernelFacts {
            tcp_tw_reuse: Some(2),
            ..tuned()
        };
        assert!(warnings(&cfg(CFG), &k).is_empty(), "servers on loopback");
        let remote = CFG.replace("127.0.0.1:8000", "10.1.2.3:8000");
        let w = warnings(&cfg(&remote), &k);
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(w[0].contains("tcp_tw_reuse is 2 (loopback only)"));
    }

    #[test]
    fn a_tuned_kernel_gives_no_warning() {
        assert!(warnings(&cfg(CFG), &tuned()).is_empty());
    }

    #[test]
    fn each_shortfall_names_its_numbers_and_the_fix() {
        let k = KernelFacts {
            somaxconn: Some(4096),
            nr_open: Some(50_000),
            nofile: Some((1024, 50_000)),
            port_range: Some((32768, 60999)),
            tcp_tw_reuse: Some(0),
        };
        let w = warnings(&cfg(CFG), &k);
        assert_eq!(w.len(), 4, "{w:#?}");
        assert!(
            w[0].contains("net.core.somaxconn is 4096")
                && w[0].contains("backlog 30000")
                && w[0].contains("ringlb-base.conf")
        );
        assert!(
            w[1].contains("maxconn 30000 needs")
                && w[1].contains("hard limit is 50000")
                && w[1].contains("fs.nr_open")
        );
        assert!(w[2].contains("32768-60999 gives 28232 source ports but up to 40000"));
        assert!(w[3].contains("tcp_tw_reuse is 0"));
    }
}
