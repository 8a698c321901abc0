//! Resolving `[global]`: process limits (`maxconn`, `shards`), `tune`, the log
//! targets, `hard-stop-after` and the plain keys, each value checked with its
//! position.

use super::error::Locator;
use super::model::*;
use super::resolve::{span, Resolver, R};
use super::schema::*;
use super::values;

use toml::Spanned;

pub(super) fn global(g: Option<&RawGlobal>, loc: &Locator) -> R<Global> {
    let gctx = "global";
    let int = |v: &Spanned<i64>, key: &str, min: i64, max: i64| -> R<u32> {
        let n = *v.get_ref();
        if n < min || n > max {
            return Err(loc.error(
                v.span(),
                gctx,
                format!("{key} {n} out of range {min}-{max}"),
            ));
        }
        Ok(n as u32)
    };
    let maxconn = match g.and_then(|g| g.maxconn.as_ref()) {
        Some(v) => int(v, "maxconn", 1, 10_000_000)?,
        None => 4096,
    };
    let shards = match g.and_then(|g| g.shards.as_ref()) {
        None => None,
        Some(s) => match s.get_ref() {
            RawShards::Word(w) if w == "auto" => None,
            RawShards::Count(n) if (1..=64).contains(n) => Some(*n as usize),
            _ => {
                return Err(loc.error(
                    s.span(),
                    gctx,
                    "shards: expected \"auto\" or a number from 1 to 64",
                ))
            }
        },
    };
    let mut tune = Tune::default();
    if let Some(t) = g.and_then(|g| g.tune.as_ref()) {
        if let Some(v) = &t.pipesize {
            tune.pipesize = int(v, "tune pipesize", 4096, 1 << 30)? as usize;
        }
        if let Some(v) = &t.maxpipes {
            tune.maxpipes = int(v, "tune maxpipes", 0, 10_000_000)? as usize;
        }
        if let Some(v) = &t.bufsize {
            tune.bufsize = int(v, "tune bufsize", 1024, 1 << 26)? as usize;
        }
        if let Some(s) = t.splice {
            tune.splice = s;
        }
        if let Some(s) = t.ring_copy {
            tune.ring_copy = s;
        }
        if let Some(s) = t.stats_counters {
            tune.stats_counters = s;
        }
        if let Some(v) = &t.http_maxhdr {
            // HAProxy's range.
            tune.http_maxhdr = int(v, "tune http-maxhdr", 1, 32767)? as usize;
        }
        if let Some(v) = &t.maxrewrite {
            tune.maxrewrite = int(v, "tune maxrewrite", 0, 1 << 25)? as usize;
        }
        if let Some(v) = &t.ssl_lifetime {
            let d = values::duration(v.get_ref())
                .map_err(|m| loc.error(v.span(), gctx, format!("tune ssl-lifetime: {m}")))?;
            // Whole seconds, as tickets carry them; TLS 1.3 caps a ticket at 7 days.
            if d.subsec_nanos() != 0 || !(1..=604_800).contains(&d.as_secs()) {
                return Err(loc.error(
                    v.span(),
                    gctx,
                    format!("tune ssl-lifetime {d:?}: expected whole seconds from 1s to 7d"),
                ));
            }
            tune.ssl_lifetime = d.as_secs() as u32;
        }
        if let Some(k) = t.ssl_ktls {
            tune.ssl_ktls = k;
        }
        if let Some(v) = &t.ring_buffers {
            let n = int(v, "tune ring-buffers", 16, 32768)?;
            if !n.is_power_of_two() {
                return Err(loc.error(
                    span(v),
                    "global",
                    format!("tune ring-buffers {n} must be a power of two"),
                ));
            }
            tune.ring_buffers = n as u16;
        }
    }
    let global_log = match g.and_then(|g| g.log.as_ref()) {
        None => Vec::new(),
        Some(list) => {
            let mut out = Vec::new();
            for t in list {
                let r = Resolver {
                    loc,
                    defaults: RawProxy::default(),
                    global_log: Vec::new(),
                    global_maxconn: maxconn,
                    bufsize: 0,
                    ssl_lifetime: tune.ssl_lifetime,
                };
                out.push(r.log_target(t.get_ref(), t.span(), gctx)?);
            }
            out
        }
    };
    let hard_stop_after = match g.and_then(|g| g.hard_stop_after.as_ref()) {
        Some(v) => Some(
            values::duration(v.get_ref())
                .map_err(|m| loc.error(v.span(), gctx, format!("hard-stop-after: {m}")))?,
        ),
        None => None,
    };
    Ok(Global {
        maxconn,
        shards,
        pidfile: g.and_then(|g| g.pidfile.clone()).map(Into::into),
        daemon: g.and_then(|g| g.daemon).unwrap_or(false),
        user: g.and_then(|g| g.user.clone()),
        group: g.and_then(|g| g.group.clone()),
        chroot: g.and_then(|g| g.chroot.clone()).map(Into::into),
        log: global_log,
        hard_stop_after,
        admin_socket: g.and_then(|g| g.admin_socket.clone()).map(Into::into),
        server_state_file: g.and_then(|g| g.server_state_file.clone()).map(Into::into),
        expose_fd_listeners: g.and_then(|g| g.expose_fd_listeners).unwrap_or(false),
        master_worker: g.and_then(|g| g.master_worker).unwrap_or(false),
        tune,
    })
}
