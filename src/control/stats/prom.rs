//! The Prometheus exporter with HAProxy 2.6's metric names, types and help texts
//! (`haproxy_frontend_*`, `haproxy_backend_*`, `haproxy_server_*`, the
//! `status` and `check_status` gauges per state label), so dashboards built
//! for HAProxy's exporter work, plus ringlb's own `ringlb_*` figures. Built from
//! the same rows as the CSV.

use std::fmt::Write;

use super::Row;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Frontend,
    Backend,
    Server,
}

struct Metric {
    level: Level,
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// The CSV field it comes from.
    field: &'static str,
    /// The CSV has milliseconds; the metric is seconds.
    millis: bool,
}

const METRICS: &[Metric] = &[
    Metric { level: Level::Frontend, name: "haproxy_frontend_current_sessions", kind: "gauge", help: "Number of current sessions on the frontend, backend or server", field: "scur", millis: false },
    Metric { level: Level::Frontend, name: "haproxy_frontend_max_sessions", kind: "gauge", help: "Highest value of current sessions encountered since process started", field: "smax", millis: false },
    Metric { level: Level::Frontend, name: "haproxy_frontend_limit_sessions", kind: "gauge", help: "Frontend/listener/server's maxconn, backend's fullconn", field: "slim", millis: false },
    Metric { level: Level::Frontend, name: "haproxy_frontend_sessions_total", kind: "counter", help: "Total number of sessions since process started", field: "stot", millis: false },
    Metric { level: Level::Frontend, name: "haproxy_frontend_bytes_in_total", kind: "counter", help: "Total number of request bytes since process started", field: "bin", millis: false },
    Metric { level: Level::Frontend, name: "haproxy_frontend_bytes_out_total", kind: "counter", help: "Total number of response bytes since process started", field: "bout", millis: false },
    Metric { level: Level::Frontend, name: "haproxy_frontend_requests_denied_total", kind: "counter", help: "Total number of denied requests since process started", field: "dreq", millis: false },
    Metric { level: Level::Frontend, name: "haproxy_frontend_responses_denied_total", kind: "counter", help: "Total number of denied responses since process started", field: "dresp", millis: false },
    Metric { level: Level::Frontend, name: "haproxy_frontend_request_errors_total", kind: "counter", help: "Total number of invalid requests since process started", field: "ereq", millis: false },
    Metric { level: Level::Frontend, name: "haproxy_frontend_connections_total", kind: "counter", help: "Total number of new connections accepted on this frontend since the worker process started", field: "conn_tot", millis: false },
    Metric { level: Level::Frontend, name: "haproxy_frontend_http_requests_total", kind: "counter", help: "Total number of HTTP requests processed by this object since the worker process started", field: "req_tot", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_current_queue", kind: "gauge", help: "Number of current queued connections", field: "qcur", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_max_queue", kind: "gauge", help: "Highest value of queued connections encountered since process started", field: "qmax", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_current_sessions", kind: "gauge", help: "Number of current sessions on the frontend, backend or server", field: "scur", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_max_sessions", kind: "gauge", help: "Highest value of current sessions encountered since process started", field: "smax", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_sessions_total", kind: "counter", help: "Total number of sessions since process started", field: "stot", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_bytes_in_total", kind: "counter", help: "Total number of request bytes since process started", field: "bin", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_bytes_out_total", kind: "counter", help: "Total number of response bytes since process started", field: "bout", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_requests_denied_total", kind: "counter", help: "Total number of denied requests since process started", field: "dreq", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_responses_denied_total", kind: "counter", help: "Total number of denied responses since process started", field: "dresp", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_connection_errors_total", kind: "counter", help: "Total number of failed connections to server since the worker process started", field: "econ", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_response_errors_total", kind: "counter", help: "Total number of invalid responses since the worker process started", field: "eresp", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_retry_warnings_total", kind: "counter", help: "Total number of server connection retries since the worker process started", field: "wretr", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_redispatch_warnings_total", kind: "counter", help: "Total number of server redispatches due to connection failures since the worker process started", field: "wredis", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_weight", kind: "gauge", help: "Server's effective weight, or sum of active servers' effective weights for a backend", field: "weight", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_active_servers", kind: "gauge", help: "Total number of active UP servers with a non-zero weight", field: "act", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_backup_servers", kind: "gauge", help: "Total number of backup UP servers with a non-zero weight", field: "bck", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_loadbalanced_total", kind: "counter", help: "Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)", field: "lbtot", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_client_aborts_total", kind: "counter", help: "Total number of requests or connections aborted by the client since the worker process started", field: "cli_abrt", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_server_aborts_total", kind: "counter", help: "Total number of requests or connections aborted by the server since the worker process started", field: "srv_abrt", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_last_session_seconds", kind: "gauge", help: "How long ago some traffic was seen on this object on this worker process, in seconds", field: "lastsess", millis: false },
    Metric { level: Level::Backend, name: "haproxy_backend_queue_time_average_seconds", kind: "gauge", help: "Avg. queue time for last 1024 successful connections.", field: "qtime", millis: true },
    Metric { level: Level::Backend, name: "haproxy_backend_connect_time_average_seconds", kind: "gauge", help: "Avg. connect time for last 1024 successful connections.", field: "ctime", millis: true },
    Metric { level: Level::Backend, name: "haproxy_backend_total_time_average_seconds", kind: "gauge", help: "Avg. total time for last 1024 successful connections.", field: "ttime", millis: true },
    Metric { level: Level::Server, name: "haproxy_server_current_queue", kind: "gauge", help: "Number of current queued connections", field: "qcur", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_max_queue", kind: "gauge", help: "Highest value of queued connections encountered since process started", field: "qmax", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_current_sessions", kind: "gauge", help: "Number of current sessions on the frontend, backend or server", field: "scur", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_max_sessions", kind: "gauge", help: "Highest value of current sessions encountered since process started", field: "smax", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_limit_sessions", kind: "gauge", help: "Frontend/listener/server's maxconn, backend's fullconn", field: "slim", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_sessions_total", kind: "counter", help: "Total number of sessions since process started", field: "stot", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_bytes_in_total", kind: "counter", help: "Total number of request bytes since process started", field: "bin", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_bytes_out_total", kind: "counter", help: "Total number of response bytes since process started", field: "bout", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_responses_denied_total", kind: "counter", help: "Total number of denied responses since process started", field: "dresp", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_connection_errors_total", kind: "counter", help: "Total number of failed connections to server since the worker process started", field: "econ", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_response_errors_total", kind: "counter", help: "Total number of invalid responses since the worker process started", field: "eresp", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_retry_warnings_total", kind: "counter", help: "Total number of server connection retries since the worker process started", field: "wretr", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_redispatch_warnings_total", kind: "counter", help: "Total number of server redispatches due to connection failures since the worker process started", field: "wredis", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_weight", kind: "gauge", help: "Server's effective weight, or sum of active servers' effective weights for a backend", field: "weight", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_check_failures_total", kind: "counter", help: "Total number of failed individual health checks per server/backend, since the worker process started", field: "chkfail", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_check_up_down_total", kind: "counter", help: "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started", field: "chkdown", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_check_last_change_seconds", kind: "gauge", help: "How long ago the last server state changed, in seconds", field: "lastchg", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_downtime_seconds_total", kind: "counter", help: "Total time spent in DOWN state, for server or backend", field: "downtime", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_queue_limit", kind: "gauge", help: "Limit on the number of connections in queue, for servers only (maxqueue argument)", field: "qlimit", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_loadbalanced_total", kind: "counter", help: "Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)", field: "lbtot", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_client_aborts_total", kind: "counter", help: "Total number of requests or connections aborted by the client since the worker process started", field: "cli_abrt", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_server_aborts_total", kind: "counter", help: "Total number of requests or connections aborted by the server since the worker process started", field: "srv_abrt", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_last_session_seconds", kind: "gauge", help: "How long ago some traffic was seen on this object on this worker process, in seconds", field: "lastsess", millis: false },
    Metric { level: Level::Server, name: "haproxy_server_connect_time_average_seconds", kind: "gauge", help: "Avg. connect time for last 1024 successful connections.", field: "ctime", millis: true },
    Metric { level: Level::Server, name: "haproxy_server_total_time_average_seconds", kind: "gauge", help: "Avg. total time for last 1024 successful connections.", field: "ttime", millis: true },
];

const SERVER_STATES: [&str; 5] = ["DOWN", "UP", "MAINT", "DRAIN", "NOLB"];
const CHECK_STATES: [&str; 12] = [
    "HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP", "L7OK", "L7OKC",
    "L7TOUT", "L7RSP",
];

fn level(r: &Row) -> Level {
    match r.get("svname") {
        Some("FRONTEND") => Level::Frontend,
        Some("BACKEND") => Level::Backend,
        _ => Level::Server,
    }
}

fn labels(r: &Row, l: Level) -> String {
    let px = r.get("pxname").unwrap_or("");
    match l {
        Level::Server => format!(
            "proxy=\"{px}\",server=\"{}\"",
            r.get("svname").unwrap_or("")
        ),
        _ => format!("proxy=\"{px}\""),
    }
}

/// The exposition text. `extra`: ringlb's own (name, type, help, value).
pub fn metrics(rows: &[Row], extra: &[(&str, &str, &str, f64)]) -> String {
    let mut out = String::with_capacity(rows.len() * 2048);
    for m in METRICS {
        let mine: Vec<&Row> = rows
            .iter()
            .filter(|r| level(r) == m.level && r.get(m.field).is_some_and(|v| !v.is_empty()))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} {}",
            m.name, m.help, m.name, m.kind
        );
        for r in mine {
            let v: f64 = r.get(m.field).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            let v = if m.millis { v / 1000.0 } else { v };
            let _ = writeln!(out, "{}{{{}}} {}", m.name, labels(r, m.level), v);
        }
    }
    for (lvl, name) in [
        (Level::Frontend, "frontend"),
        (Level::Backend, "backend"),
        (Level::Server, "server"),
    ] {
        let mine: Vec<&Row> = rows.iter().filter(|r| level(r) == lvl).collect();
        if mine.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "# HELP haproxy_{name}_status Current status of the service, per state label value.\n             # TYPE haproxy_{name}_status gauge"
        );
        for r in &mine {
            let st = r.get("status").unwrap_or("");
            let states: &[&str] = if lvl == Level::Server {
                &SERVER_STATES
            } else {
                &["DOWN", "UP"]
            };
            for s in states {
                let on = match (lvl, *s) {
                    (Level::Frontend, "UP") => st == "OPEN",
                    (Level::Frontend, "DOWN") => st != "OPEN",
                    (_, "UP") => st == "UP" || st == "no check" || st.starts_with("UP "),
                    (_, "DOWN") => st == "DOWN" || st.starts_with("DOWN "),
                    (_, other) => st == other,
                };
                let _ = writeln!(
                    out,
                    "haproxy_{name}_status{{{},state=\"{s}\"}} {}",
                    labels(r, lvl),
                    u8::from(on)
                );
            }
        }
        let http: Vec<&&Row> = mine
            .iter()
            .filter(|r| r.get("hrsp_2xx").is_some())
            .collect();
        if !http.is_empty() {
            let _ = writeln!(
                out,
                "# HELP haproxy_{name}_http_responses_total Total number of HTTP responses with status 100-199 returned by this object since the worker process started\n                 # TYPE haproxy_{name}_http_responses_total counter"
            );
            for r in http {
                for (code, f) in [
                    ("1xx", "hrsp_1xx"),
                    ("2xx", "hrsp_2xx"),
                    ("3xx", "hrsp_3xx"),
                    ("4xx", "hrsp_4xx"),
                    ("5xx", "hrsp_5xx"),
                    ("other", "hrsp_other"),
                ] {
                    let v = r.get(f).unwrap_or("0");
                    let _ = writeln!(
                        out,
                        "haproxy_{name}_http_responses_total{{{},code=\"{code}\"}} {v}",
                        labels(r, lvl)
                    );
                }
            }
        }
    }
    let checked: Vec<&Row> = rows
        .iter()
        .filter(|r| level(r) == Level::Server && r.get("check_status").is_some())
        .collect();
    if !checked.is_empty() {
        let _ = writeln!(
            out,
            "# HELP haproxy_server_check_status Status of last health check, per state label value.\n             # TYPE haproxy_server_check_status gauge"
        );
        for r in checked {
            let cur = r.get("check_status").unwrap_or("");
            for s in CHECK_STATES {
                let _ = writeln!(
                    out,
                    "haproxy_server_check_status{{{},state=\"{s}\"}} {}",
                    labels(r, Level::Server),
                    u8::from(cur == s)
                );
            }
        }
    }
    // ringlb's own: latency percentiles per server, as Prometheus summaries.
    for phase in crate::state::latency::PHASES {
        let mine: Vec<&Row> = rows
            .iter()
            .filter(|r| {
                level(r) == Level::Server && r.get(super::lat_field(phase, "p50")).is_some()
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        let name = format!("ringlb_server_{phase}_time_seconds");
        let _ = writeln!(
            out,
            "# HELP {name} {phase} time of the server's sessions, percentiles since start.\n# TYPE {name} summary"
        );
        for r in mine {
            for (q, label) in super::QUANTILES {
                if let Some(v) = r
                    .get(super::lat_field(phase, label))
                    .and_then(|v| v.parse::<f64>().ok())
                {
                    let _ = writeln!(
                        out,
                        "{name}{{{},quantile=\"{}\"}} {}",
                        labels(r, Level::Server),
                        q / 100.0,
                        v / 1000.0
                    );
                }
            }
            let num = |f: &str| {
                r.get(super::lat_field(phase, f))
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            let _ = writeln!(
                out,
                "{name}_sum{{{}}} {}",
                labels(r, Level::Server),
                num("sum") / 1000.0
            );
            let _ = writeln!(
                out,
                "{name}_count{{{}}} {}",
                labels(r, Level::Server),
                num("count")
            );
        }
    }
    for (name, kind, help, v) in extra {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_labels_and_states_as_haproxy() {
        let mut s = Row::default();
        s.set("pxname", "be");
        s.set("svname", "s1");
        s.set("status", "MAINT");
        s.set("scur", 3);
        s.set("ttime", 1500);
        s.set("check_status", "L4CON");
        let text = metrics(&[s], &[("ringlb_shards", "gauge", "Data shards.", 2.0)]);
        assert!(text.contains("haproxy_server_current_sessions{proxy=\"be\",server=\"s1\"} 3\n"));
        assert!(text.contains(
            "haproxy_server_total_time_average_seconds{proxy=\"be\",server=\"s1\"} 1.5\n"
        ));
        assert!(
            text.contains("haproxy_server_status{proxy=\"be\",server=\"s1\",state=\"MAINT\"} 1\n")
        );
        assert!(text.contains("haproxy_server_status{proxy=\"be\",server=\"s1\",state=\"UP\"} 0\n"));
        assert!(text.contains(
            "haproxy_server_check_status{proxy=\"be\",server=\"s1\",state=\"L4CON\"} 1\n"
        ));
        assert!(text.contains("# TYPE haproxy_server_current_sessions gauge\n"));
        assert!(text.contains("ringlb_shards 2\n"));
    }
}
