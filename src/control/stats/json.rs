//! HAProxy 2.6's `show stat json` (and the page's `;json`): an array of rows,
//! each an array of the row's non-empty fields as objects with the object type,
//! proxy and server ids, the field's position and name, its tags (origin,
//! nature, scope) and a typed value — field metadata taken from HAProxy 2.6.12.

use std::fmt::Write;

use super::csv::HEADER;
use super::Row;

/// (field, value type, origin, nature, scope) for every CSV column.
const META: &[(&str, &str, &str, &str, &str)] = &[
    ("pxname", "str", "Key", "Name", "Service"),
    ("svname", "str", "Key", "Name", "Service"),
    ("qcur", "u32", "Metric", "Gauge", "Process"),
    ("qmax", "u32", "Metric", "Max", "Process"),
    ("scur", "u32", "Metric", "Gauge", "Process"),
    ("smax", "u32", "Metric", "Max", "Process"),
    ("slim", "u32", "Config", "Limit", "Process"),
    ("stot", "u64", "Metric", "Counter", "Process"),
    ("bin", "u64", "Metric", "Counter", "Process"),
    ("bout", "u64", "Metric", "Counter", "Process"),
    ("dreq", "u64", "Metric", "Counter", "Process"),
    ("dresp", "u64", "Metric", "Counter", "Process"),
    ("ereq", "u64", "Metric", "Counter", "Process"),
    ("econ", "u64", "Metric", "Counter", "Process"),
    ("eresp", "u64", "Metric", "Counter", "Process"),
    ("wretr", "u64", "Metric", "Counter", "Process"),
    ("wredis", "u64", "Metric", "Counter", "Process"),
    ("status", "str", "Status", "Gauge", "Process"),
    ("weight", "u32", "Metric", "Avg", "Process"),
    ("act", "u32", "Status", "Gauge", "Process"),
    ("bck", "u32", "Status", "Gauge", "Process"),
    ("chkfail", "u64", "Metric", "Counter", "Process"),
    ("chkdown", "u64", "Metric", "Counter", "Process"),
    ("lastchg", "u32", "Metric", "Age", "Process"),
    ("downtime", "u32", "Metric", "Counter", "Process"),
    ("qlimit", "str", "Metric", "Gauge", "Process"),
    ("pid", "u32", "Key", "Gauge", "Process"),
    ("iid", "u32", "Key", "Gauge", "Service"),
    ("sid", "u32", "Key", "Gauge", "Service"),
    ("throttle", "str", "Metric", "Gauge", "Process"),
    ("lbtot", "u64", "Metric", "Counter", "Process"),
    ("tracked", "str", "Metric", "Gauge", "Process"),
    ("type", "u32", "Config", "Gauge", "Service"),
    ("rate", "u32", "Metric", "Rate", "Process"),
    ("rate_lim", "u32", "Config", "Limit", "Process"),
    ("rate_max", "u32", "Metric", "Max", "Process"),
    ("check_status", "str", "Metric", "Output", "Process"),
    ("check_code", "str", "Metric", "Gauge", "Process"),
    ("check_duration", "u64", "Metric", "Duration", "Process"),
    ("hrsp_1xx", "u64", "Metric", "Counter", "Process"),
    ("hrsp_2xx", "u64", "Metric", "Counter", "Process"),
    ("hrsp_3xx", "u64", "Metric", "Counter", "Process"),
    ("hrsp_4xx", "u64", "Metric", "Counter", "Process"),
    ("hrsp_5xx", "u64", "Metric", "Counter", "Process"),
    ("hrsp_other", "u64", "Metric", "Counter", "Process"),
    ("hanafail", "str", "Metric", "Gauge", "Process"),
    ("req_rate", "u32", "Metric", "Rate", "Process"),
    ("req_rate_max", "u32", "Metric", "Max", "Process"),
    ("req_tot", "u64", "Metric", "Counter", "Process"),
    ("cli_abrt", "u64", "Metric", "Counter", "Process"),
    ("srv_abrt", "u64", "Metric", "Counter", "Process"),
    ("comp_in", "u64", "Metric", "Counter", "Process"),
    ("comp_out", "u64", "Metric", "Counter", "Process"),
    ("comp_byp", "u64", "Metric", "Counter", "Process"),
    ("comp_rsp", "u64", "Metric", "Counter", "Process"),
    ("lastsess", "s32", "Metric", "Age", "Process"),
    ("last_chk", "str", "Metric", "Output", "Process"),
    ("last_agt", "str", "Metric", "Gauge", "Process"),
    ("qtime", "u32", "Metric", "Avg", "Process"),
    ("ctime", "u32", "Metric", "Avg", "Process"),
    ("rtime", "u32", "Metric", "Avg", "Process"),
    ("ttime", "u32", "Metric", "Avg", "Process"),
    ("agent_status", "str", "Metric", "Gauge", "Process"),
    ("agent_code", "str", "Metric", "Gauge", "Process"),
    ("agent_duration", "str", "Metric", "Gauge", "Process"),
    ("check_desc", "str", "Metric", "Output", "Process"),
    ("agent_desc", "str", "Metric", "Gauge", "Process"),
    ("check_rise", "u32", "Config", "Gauge", "Service"),
    ("check_fall", "u32", "Config", "Gauge", "Service"),
    ("check_health", "u32", "Config", "Gauge", "Service"),
    ("agent_rise", "str", "Metric", "Gauge", "Process"),
    ("agent_fall", "str", "Metric", "Gauge", "Process"),
    ("agent_health", "str", "Metric", "Gauge", "Process"),
    ("addr", "str", "Config", "Gauge", "Service"),
    ("cookie", "str", "Metric", "Gauge", "Process"),
    ("mode", "str", "Config", "Gauge", "Service"),
    ("algo", "str", "Config", "Gauge", "Service"),
    ("conn_rate", "u32", "Metric", "Rate", "Process"),
    ("conn_rate_max", "u32", "Metric", "Max", "Process"),
    ("conn_tot", "u64", "Metric", "Counter", "Process"),
    ("intercepted", "u64", "Metric", "Counter", "Process"),
    ("dcon", "u64", "Metric", "Counter", "Process"),
    ("dses", "u64", "Metric", "Counter", "Process"),
    ("wrew", "u64", "Metric", "Counter", "Process"),
    ("connect", "u64", "Metric", "Counter", "Process"),
    ("reuse", "u64", "Metric", "Counter", "Process"),
    ("cache_lookups", "u64", "Metric", "Counter", "Process"),
    ("cache_hits", "u64", "Metric", "Counter", "Process"),
    ("srv_icur", "u32", "Metric", "Gauge", "Process"),
    ("src_ilim", "str", "Metric", "Gauge", "Process"),
    ("qtime_max", "u32", "Metric", "Max", "Process"),
    ("ctime_max", "u32", "Metric", "Max", "Process"),
    ("rtime_max", "u32", "Metric", "Max", "Process"),
    ("ttime_max", "u32", "Metric", "Max", "Process"),
    ("eint", "u64", "Metric", "Counter", "Process"),
    ("idle_conn_cur", "u32", "Metric", "Gauge", "Process"),
    ("safe_conn_cur", "u32", "Metric", "Gauge", "Process"),
    ("used_conn_cur", "u32", "Metric", "Gauge", "Process"),
    ("need_conn_est", "u32", "Metric", "Gauge", "Process"),
    ("uweight", "u32", "Metric", "Avg", "Process"),
    ("agg_server_status", "u32", "Metric", "Gauge", "Process"),
    (
        "agg_server_check_status",
        "u32",
        "Metric",
        "Gauge",
        "Process",
    ),
    ("agg_check_status", "u32", "Metric", "Gauge", "Process"),
    ("-", "str", "Metric", "Gauge", "Process"),
    ("ssl_sess", "u64", "Metric", "Counter", "Process"),
    ("ssl_reused_sess", "u64", "Metric", "Counter", "Process"),
    (
        "ssl_failed_handshake",
        "u64",
        "Metric",
        "Counter",
        "Process",
    ),
    ("h2_headers_rcvd", "u64", "Metric", "Counter", "Process"),
    ("h2_data_rcvd", "u64", "Metric", "Counter", "Process"),
    ("h2_settings_rcvd", "u64", "Metric", "Counter", "Process"),
    ("h2_rst_stream_rcvd", "u64", "Metric", "Counter", "Process"),
    ("h2_goaway_rcvd", "u64", "Metric", "Counter", "Process"),
    (
        "h2_detected_conn_protocol_errors",
        "u64",
        "Metric",
        "Counter",
        "Process",
    ),
    (
        "h2_detected_strm_protocol_errors",
        "u64",
        "Metric",
        "Counter",
        "Process",
    ),
    ("h2_rst_stream_resp", "u64", "Metric", "Counter", "Process"),
    ("h2_goaway_resp", "u64", "Metric", "Counter", "Process"),
    ("h2_open_connections", "u64", "Metric", "Gauge", "Process"),
    (
        "h2_backend_open_streams",
        "u64",
        "Metric",
        "Gauge",
        "Process",
    ),
    (
        "h2_total_connections",
        "u64",
        "Metric",
        "Counter",
        "Process",
    ),
    (
        "h2_backend_total_streams",
        "u64",
        "Metric",
        "Counter",
        "Process",
    ),
    ("h1_open_connections", "u64", "Metric", "Gauge", "Process"),
    ("h1_open_streams", "u64", "Metric", "Gauge", "Process"),
    (
        "h1_total_connections",
        "u64",
        "Metric",
        "Counter",
        "Process",
    ),
    ("h1_total_streams", "u64", "Metric", "Counter", "Process"),
    ("h1_bytes_in", "u64", "Metric", "Counter", "Process"),
    ("h1_bytes_out", "u64", "Metric", "Counter", "Process"),
    ("h1_spliced_bytes_in", "u64", "Metric", "Counter", "Process"),
    (
        "h1_spliced_bytes_out",
        "u64",
        "Metric",
        "Counter",
        "Process",
    ),
];

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// The JSON document for `rows`.
pub fn json(rows: &[Row]) -> String {
    let fields: Vec<&str> = HEADER.split(',').filter(|f| !f.is_empty()).collect();
    let mut out = String::from("[");
    for (ri, r) in rows.iter().enumerate() {
        let (obj, sid) = match r.get("svname") {
            Some("FRONTEND") => ("Frontend", 0),
            Some("BACKEND") => ("Backend", 0),
            _ => (
                "Server",
                r.get("sid").and_then(|v| v.parse().ok()).unwrap_or(0),
            ),
        };
        let iid: u64 = r.get("iid").and_then(|v| v.parse().ok()).unwrap_or(0);
        out.push_str(if ri == 0 { "[" } else { ",[" });
        let mut first = true;
        for (pos, f) in fields.iter().enumerate() {
            let Some(v) = r.get(f).filter(|v| !v.is_empty()) else {
                continue;
            };
            let (ty, origin, nature, scope) = META
                .iter()
                .find(|m| m.0 == *f)
                .map(|m| (m.1, m.2, m.3, m.4))
                .unwrap_or(("str", "Metric", "Gauge", "Process"));
            let value = if ty == "str" || v.parse::<i64>().is_err() {
                format!("{{\"type\":\"str\",\"value\":\"{}\"}}", esc(v))
            } else {
                let t = if v.starts_with('-') { "s32" } else { ty };
                format!("{{\"type\":\"{t}\",\"value\":{v}}}")
            };
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(
                out,
                "{{\"objType\":\"{obj}\",\"proxyId\":{iid},\"id\":{sid},\"field\":{{\"pos\":{pos},\"name\":\"{f}\"}},\
                 \"processNum\":1,\"tags\":{{\"origin\":\"{origin}\",\"nature\":\"{nature}\",\"scope\":\"{scope}\"}},\
                 \"value\":{value}}}"
            );
        }
        out.push(']');
    }
    out.push_str("]\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_typed_fields_in_haproxys_shape() {
        let mut r = Row::default();
        r.set("pxname", "be");
        r.set("svname", "s\"1");
        r.set("iid", 3);
        r.set("sid", 1);
        r.set("stot", 42);
        r.set("lastsess", -1);
        let j = json(&[r]);
        assert!(j.starts_with("[[{\"objType\":\"Server\",\"proxyId\":3,\"id\":1,\"field\":{\"pos\":0,\"name\":\"pxname\"}"));
        assert!(j.contains("\"name\":\"svname\"},\"processNum\":1,\"tags\":{\"origin\":\"Key\",\"nature\":\"Name\",\"scope\":\"Service\"},\"value\":{\"type\":\"str\",\"value\":\"s\\\"1\"}"));
        assert!(j.contains("\"name\":\"stot\"},\"processNum\":1,\"tags\":{\"origin\":\"Metric\",\"nature\":\"Counter\",\"scope\":\"Process\"},\"value\":{\"type\":\"u64\",\"value\":42}"));
        assert!(j.contains("\"value\":{\"type\":\"s32\",\"value\":-1}"));
    }
}
