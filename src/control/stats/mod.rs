//! Statistics as HAProxy 2.6 shows them: one row per frontend, server and
//! backend, with HAProxy's column names and order (the CSV of `show stat` and
//! the stats page's `;csv`), built on the control shard from the shards'
//! summed counters, the exact gauges and the control shard's server table.
//! Columns ringlb has no value for stay empty, as HAProxy leaves them.

mod csv;
mod json;
mod page;
mod prom;

pub use csv::{csv, HEADER};
pub use json::json;
pub use page::{html, Page};
pub use prom::metrics;

use std::time::Instant;

use super::status::StatusTable;
use crate::config::model::{Balance, Config, Mode};
use crate::state::latency::PHASES;
use crate::state::{LatencyBook, Shared, Totals};

/// The percentiles shown: (quantile, label).
pub const QUANTILES: [(f64, &str); 4] =
    [(50.0, "p50"), (90.0, "p90"), (99.0, "p99"), (99.9, "p99.9")];

/// The row field holding a latency percentile.
pub fn lat_field(phase: &str, label: &str) -> &'static str {
    // A small closed set: leak-free static names.
    match (phase, label) {
        ("queue", "count") => "lat_queue_count",
        ("queue", "sum") => "lat_queue_sum",
        ("connect", "count") => "lat_connect_count",
        ("connect", "sum") => "lat_connect_sum",
        ("response", "count") => "lat_response_count",
        ("response", "sum") => "lat_response_sum",
        (_, "count") => "lat_total_count",
        (_, "sum") => "lat_total_sum",
        ("queue", "p50") => "lat_queue_p50",
        ("queue", "p90") => "lat_queue_p90",
        ("queue", "p99") => "lat_queue_p99",
        ("queue", _) => "lat_queue_p99.9",
        ("connect", "p50") => "lat_connect_p50",
        ("connect", "p90") => "lat_connect_p90",
        ("connect", "p99") => "lat_connect_p99",
        ("connect", _) => "lat_connect_p99.9",
        ("response", "p50") => "lat_response_p50",
        ("response", "p90") => "lat_response_p90",
        ("response", "p99") => "lat_response_p99",
        ("response", _) => "lat_response_p99.9",
        (_, "p50") => "lat_total_p50",
        (_, "p90") => "lat_total_p90",
        (_, "p99") => "lat_total_p99",
        _ => "lat_total_p99.9",
    }
}

/// One row: values by HAProxy field name (absent = empty).
#[derive(Debug, Default, Clone)]
pub struct Row {
    pub values: Vec<(&'static str, String)>,
}

impl Row {
    pub fn set(&mut self, field: &'static str, v: impl ToString) {
        self.values.push((field, v.to_string()));
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v.as_str())
    }
}

fn mode(m: Mode) -> &'static str {
    match m {
        Mode::Tcp => "tcp",
        Mode::Http => "http",
    }
}

fn algo(b: Balance) -> &'static str {
    match b {
        Balance::RoundRobin => "roundrobin",
        Balance::StaticRr => "static-rr",
        Balance::LeastConn => "leastconn",
        Balance::First => "first",
        Balance::Source => "source",
        Balance::Random => "random",
        Balance::Uri => "uri",
        Balance::UrlParam => "url_param",
        Balance::Hdr => "hdr",
    }
}

fn traffic(r: &mut Row, t: &Totals, http: bool) {
    r.set("bin", t.bytes_in);
    r.set("bout", t.bytes_out);
    if http {
        for (i, f) in [
            "hrsp_1xx",
            "hrsp_2xx",
            "hrsp_3xx",
            "hrsp_4xx",
            "hrsp_5xx",
            "hrsp_other",
        ]
        .iter()
        .enumerate()
        {
            r.set(f, t.hrsp[i]);
        }
    }
}

/// Every row, in HAProxy's order: each frontend (with its own backend half
/// right after it for a `listen`), then the remaining backends with their
/// servers before the BACKEND row.
/// `latency`: merged histograms, to add ringlb's per-server percentiles
/// (`lat_<phase>_p50|p90|p99|p99.9` fields, ms; not CSV columns).
pub fn rows(
    config: &Config,
    shared: &Shared,
    table: &StatusTable,
    latency: Option<&LatencyBook>,
) -> Vec<Row> {
    let now = Instant::now();
    let sum = |f: &dyn Fn(&crate::state::ShardCounters) -> &crate::state::Counters| {
        Totals::sum(shared.counters.iter().map(f))
    };
    let mut out = Vec::new();
    let mut done = vec![false; config.backends.len()];
    let backend_rows = |out: &mut Vec<Row>, bi: usize, iid: usize| {
        let b = &config.backends[bi];
        let bs = &shared.backends[bi];
        let http = b.mode == Mode::Http;
        let (mut act, mut bck, mut weight) = (0u32, 0u32, 0u32);
        let (mut econ, mut wretr, mut wredis) = (0u64, 0u64, 0u64);
        for (si, s) in b.servers.iter().enumerate() {
            let ss = &bs.servers[si];
            let st = &table.servers[bi][si];
            let t = sum(&|c| &c.servers[bi][si]);
            let ld =
                |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            let mut r = Row::default();
            r.set("pxname", &b.name);
            r.set("svname", &s.name);
            r.set("qcur", 0);
            r.set("qmax", 0);
            r.set("scur", ss.active.get());
            r.set(
                "smax",
                ss.max_active.load(std::sync::atomic::Ordering::Relaxed),
            );
            if s.maxconn > 0 {
                r.set("slim", s.maxconn);
            }
            r.set("stot", ld(&ss.total.0));
            traffic(&mut r, &t, http);
            r.set("dresp", t.denied_resp);
            r.set("econ", ld(&ss.connect_errors));
            r.set("eresp", t.resp_errors);
            r.set("wretr", ld(&ss.retries));
            r.set("wredis", ld(&ss.redispatches));
            econ += ld(&ss.connect_errors);
            wretr += ld(&ss.retries);
            wredis += ld(&ss.redispatches);
            r.set("status", st.status_text());
            r.set("weight", st.effective_weight());
            r.set("act", u8::from(!s.backup));
            r.set("bck", u8::from(s.backup));
            if st.checked {
                r.set("chkfail", st.check_failures);
                r.set("chkdown", st.check_downs);
            }
            r.set("lastchg", now.duration_since(st.last_change).as_secs());
            if st.checked {
                r.set("downtime", st.downtime(now));
            }
            if s.maxqueue > 0 {
                r.set("qlimit", s.maxqueue);
            }
            r.set("pid", 1);
            r.set("iid", iid);
            r.set("sid", si + 1);
            r.set("lbtot", ld(&ss.total.0));
            r.set("type", 2);
            let (rate, rate_max) = rates(shared.counters.iter().map(|c| &c.servers[bi][si]));
            r.set("rate", rate);
            r.set("rate_max", rate_max);
            r.set("cli_abrt", t.cli_aborts);
            r.set("srv_abrt", t.srv_aborts);
            r.set(
                "lastsess",
                if t.last_session == 0 {
                    -1
                } else {
                    (crate::control::stats::unix_now() - t.last_session as i64).max(0)
                },
            );
            if let Some(c) = st.last_check.as_ref().filter(|_| st.checked) {
                r.set("check_status", c.status.name());
                if let Some(code) = c.code {
                    r.set("check_code", code);
                }
                r.set("check_duration", c.duration.as_millis());
                r.set("last_chk", &c.info);
                r.set("check_desc", c.status.reason());
            }
            if st.checked {
                r.set("check_rise", s.rise);
                r.set("check_fall", s.fall);
            }
            r.set("addr", st.addr);
            if let Some(c) = &s.cookie {
                r.set("cookie", c);
            }
            r.set("mode", mode(b.mode));
            let sessions = t.sessions.max(1);
            r.set("ctime", t.connect_ms / sessions);
            r.set("ttime", t.total_ms / sessions);
            r.set("uweight", st.weight);
            if let Some(p) = latency
                .and_then(|l| l.servers.get(bi))
                .and_then(|v| v.get(si))
            {
                for (phase, name) in PHASES.iter().enumerate() {
                    for (q, label) in QUANTILES {
                        if let Some(v) = p.percentile(phase, q) {
                            r.values.push((lat_field(name, label), v.to_string()));
                        }
                    }
                    if p.count(phase) > 0 {
                        r.values
                            .push((lat_field(name, "count"), p.count(phase).to_string()));
                        r.values
                            .push((lat_field(name, "sum"), p.sum_ms(phase).to_string()));
                    }
                }
            }
            if matches!(
                st.effective(),
                crate::state::ServerState::Up | crate::state::ServerState::Drain
            ) {
                if s.backup {
                    bck += 1;
                } else {
                    act += 1;
                    weight += st.effective_weight();
                }
            }
            out.push(r);
        }
        let t = sum(&|c| &c.backends[bi]);
        let mut r = Row::default();
        r.set("pxname", &b.name);
        r.set("svname", "BACKEND");
        r.set(
            "qcur",
            bs.queued.0.load(std::sync::atomic::Ordering::Relaxed),
        );
        r.set(
            "qmax",
            bs.max_queued.load(std::sync::atomic::Ordering::Relaxed),
        );
        r.set("scur", bs.active.get());
        r.set(
            "smax",
            bs.max_active.load(std::sync::atomic::Ordering::Relaxed),
        );
        r.set("stot", bs.total.load(std::sync::atomic::Ordering::Relaxed));
        traffic(&mut r, &t, http);
        r.set("dreq", t.denied_req);
        r.set("dresp", t.denied_resp);
        r.set("econ", econ);
        r.set("eresp", t.resp_errors);
        r.set("wretr", wretr);
        r.set("wredis", wredis);
        // HAProxy: UP with usable weight, or with no server at all.
        let up = weight > 0 || bck > 0 || b.servers.is_empty();
        r.set("status", if up { "UP" } else { "DOWN" });
        r.set("weight", weight);
        r.set("act", act);
        r.set("bck", bck);
        r.set("lastchg", now.duration_since(table.started).as_secs());
        r.set("pid", 1);
        r.set("iid", iid);
        r.set("sid", 0);
        r.set("lbtot", bs.total.load(std::sync::atomic::Ordering::Relaxed));
        r.set("type", 1);
        let (rate, rate_max) = rates(shared.counters.iter().map(|c| &c.backends[bi]));
        r.set("rate", rate);
        r.set("rate_max", rate_max);
        r.set("cli_abrt", t.cli_aborts);
        r.set("srv_abrt", t.srv_aborts);
        r.set(
            "lastsess",
            if t.last_session == 0 {
                -1
            } else {
                (unix_now() - t.last_session as i64).max(0)
            },
        );
        let sessions = t.sessions.max(1);
        r.set("qtime", t.queue_ms / sessions);
        r.set("ctime", t.connect_ms / sessions);
        r.set("ttime", t.total_ms / sessions);
        r.set("mode", mode(b.mode));
        r.set("algo", algo(b.balance));
        r.set("uweight", weight);
        out.push(r);
    };
    for (fi, f) in config.frontends.iter().enumerate() {
        let fs = &shared.frontends[fi];
        let t = sum(&|c| &c.frontends[fi]);
        let mut r = Row::default();
        r.set("pxname", &f.name);
        r.set("svname", "FRONTEND");
        r.set("scur", fs.active.get());
        r.set(
            "smax",
            fs.max_active.load(std::sync::atomic::Ordering::Relaxed),
        );
        r.set(
            "slim",
            if f.maxconn > 0 {
                f.maxconn
            } else {
                config.global.maxconn
            },
        );
        r.set("stot", fs.total.load(std::sync::atomic::Ordering::Relaxed));
        traffic(&mut r, &t, f.mode == Mode::Http);
        r.set("dreq", t.denied_req);
        r.set("dresp", t.denied_resp);
        r.set("ereq", t.req_errors);
        r.set("status", if f.disabled { "STOP" } else { "OPEN" });
        r.set("pid", 1);
        r.set("iid", fi + 1);
        r.set("sid", 0);
        r.set("type", 0);
        let (rate, rate_max) = rates(shared.counters.iter().map(|c| &c.frontends[fi]));
        r.set("rate", rate);
        r.set("rate_max", rate_max);
        r.set("conn_rate", rate);
        r.set("conn_rate_max", rate_max);
        if f.mode == Mode::Http {
            r.set("req_tot", t.requests);
        }
        r.set("mode", mode(f.mode));
        r.set(
            "conn_tot",
            fs.total.load(std::sync::atomic::Ordering::Relaxed),
        );
        out.push(r);
        // A `listen` section's backend half comes right after its frontend.
        if let Some(bi) = config.backends.iter().position(|b| b.name == f.name) {
            if !done[bi] {
                done[bi] = true;
                backend_rows(&mut out, bi, fi + 1);
            }
        }
    }
    for (bi, _) in done.iter().enumerate().filter(|(_, d)| !**d) {
        backend_rows(&mut out, bi, config.frontends.len() + bi + 1);
    }
    out
}

/// A frontend's HAProxy proxy id (`iid`, `#N` in the stats page's forms).
pub fn frontend_iid(fi: usize) -> usize {
    fi + 1
}

/// A backend's proxy id: its `listen` section's, else numbered after every
/// frontend, as [`rows`] numbers them.
pub fn backend_iid(config: &Config, bi: usize) -> usize {
    let name = &config.backends[bi].name;
    match config.frontends.iter().position(|f| &f.name == name) {
        Some(fi) => frontend_iid(fi),
        None => config.frontends.len() + bi + 1,
    }
}

/// (current rate, max rate) of a counter summed over the shards.
fn rates<'a>(blocks: impl Iterator<Item = &'a crate::state::Counters>) -> (u64, u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (sec, frac) = (now.as_secs(), now.subsec_millis() as f64 / 1000.0);
    blocks.fold((0, 0), |(r, m), c| {
        (
            r + c.rate(sec, frac),
            m + c.rate_max.load(std::sync::atomic::Ordering::Relaxed),
        )
    })
}

/// io_uring worker threads (`iou-wrk-*`) of this process right now: ringlb
/// never hands work to io-wq, so this stays 0.
pub fn io_wq_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.starts_with("iou-wrk"))
                })
                .count()
        })
        .unwrap_or(0)
}

type ActivityField = fn(&crate::state::Activity) -> &std::sync::atomic::AtomicU64;

/// The per-shard activity figures: `show activity` name, metric name, metric
/// type, help, and where the figure is.
const ACTIVITY: [(&str, &str, &str, &str, ActivityField); 7] = [
    (
        "loops",
        "ringlb_shard_loops_total",
        "counter",
        "Executor rounds of the shard's ring.",
        |a| &a.loops,
    ),
    (
        "poll_io",
        "ringlb_shard_waits_total",
        "counter",
        "Rounds that slept in io_uring_enter.",
        |a| &a.waits,
    ),
    (
        "ring_sqes",
        "ringlb_shard_ring_submissions_total",
        "counter",
        "SQEs queued on the shard's ring.",
        |a| &a.sqes,
    ),
    (
        "ring_cqes",
        "ringlb_shard_ring_completions_total",
        "counter",
        "CQEs reaped from the shard's ring.",
        |a| &a.cqes,
    ),
    (
        "pipes_used",
        "ringlb_shard_pipes_in_use",
        "gauge",
        "Splice pipes holding bytes in flight.",
        |a| &a.pipes_used,
    ),
    (
        "ring_copy_bytes",
        "ringlb_shard_ring_copy_bytes_total",
        "counter",
        "Bytes forwarded on the io_uring copy path.",
        |a| &a.ring_bytes,
    ),
    (
        "splice_path_bytes",
        "ringlb_shard_splice_path_bytes_total",
        "counter",
        "Bytes forwarded on the poll + splice path.",
        |a| &a.poll_bytes,
    ),
];

/// Per-shard activity in `show activity`'s form (`name: total [ per shard ]`),
/// from what the shards last published.
pub fn activity(shared: &Shared) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let n = shared.activity.len();
    let mut out = format!("thread_id: 0 (1..{n})\ndate_now: {}\n", unix_now());
    for (name, _, _, _, f) in ACTIVITY {
        let v: Vec<u64> = shared.activity.iter().map(|a| f(a).load(Relaxed)).collect();
        let per: Vec<String> = v.iter().map(u64::to_string).collect();
        out += &format!("{name}: {} [ {} ]\n", v.iter().sum::<u64>(), per.join(" "));
    }
    // The timeout of each shard's last sleep: no sum (it is not a count).
    let waits: Vec<String> = shared
        .activity
        .iter()
        .map(|a| match a.last_wait_ms.load(Relaxed) {
            crate::state::NO_TIMER => "none".to_string(),
            ms => ms.to_string(),
        })
        .collect();
    out += &format!("last_wait_ms: [ {} ]\n", waits.join(" "));
    // Answered on the control shard: when its nearest own timer is due.
    let next = crate::control::timers::next_due()
        .map_or("none".to_string(), |d| d.as_millis().to_string());
    out += &format!("control_next_timer_ms: {next}\n");
    out += &format!("iou_wrk_threads: {}\n\n", io_wq_threads());
    out
}

/// The same figures as Prometheus samples labelled by shard.
pub fn activity_metrics(shared: &Shared) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::new();
    for (_, name, kind, help, f) in ACTIVITY {
        out += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for (i, a) in shared.activity.iter().enumerate() {
            out += &format!("{name}{{shard=\"{i}\"}} {}\n", f(a).load(Relaxed));
        }
    }
    out += "# HELP ringlb_shard_last_wait_seconds How long the shard's last sleep in \
            io_uring_enter could last: its next timer (+Inf: none, woken only by I/O).\n\
            # TYPE ringlb_shard_last_wait_seconds gauge\n";
    for (i, a) in shared.activity.iter().enumerate() {
        let v = match a.last_wait_ms.load(Relaxed) {
            crate::state::NO_TIMER => "+Inf".to_string(),
            ms => format!("{:.3}", ms as f64 / 1000.0),
        };
        out += &format!("ringlb_shard_last_wait_seconds{{shard=\"{i}\"}} {v}\n");
    }
    out += &format!(
        "# HELP ringlb_io_wq_threads io_uring worker threads (ringlb hands no work to io-wq).\n\
         # TYPE ringlb_io_wq_threads gauge\nringlb_io_wq_threads {}\n",
        io_wq_threads()
    );
    out
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
