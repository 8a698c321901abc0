//! The HTML stats page: one table per proxy with HAProxy's column groups (Queue,
//! Session rate, Sessions, Bytes, Denied, Errors, Warnings, Server) and rows
//! classed by state as HAProxy's page is (`active_up`, `active_down`, `maintain`,
//! `draining`, `backup_up`…), so an HAProxy user recognises it at a glance.
//! Built from the same rows as the CSV.

use super::Row;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// HAProxy's row class for a server or proxy row.
fn class(r: &Row) -> &'static str {
    let st = r.get("status").unwrap_or("");
    let backup = r.get("bck") == Some("1") && r.get("svname").is_some_and(|s| s != "BACKEND");
    match st {
        "MAINT" => "maintain",
        "DRAIN" => "draining",
        "DOWN" if backup => "backup_down",
        "DOWN" => "active_down",
        s if s.starts_with("DOWN ") => "active_goingup",
        s if s.starts_with("UP ") => "active_goingdown",
        _ if backup => "backup_up",
        _ => "active_up",
    }
}

const CSS: &str = "body{font-family:arial,helvetica,sans-serif;font-size:12px;background:#fff}\
table.tbl{border-collapse:collapse;border:1px solid grey;margin-bottom:12px}\
table.tbl td,table.tbl th{border:1px solid #999;padding:1px 4px;text-align:right}\
table.tbl th{background:#20a0ff;color:#fff}\
table.tbl th.pxname{background:#b00040;color:#ffff40;text-align:left}\
table.tbl tr.titre th{background:#20d0ff;color:#000;text-align:center}\
tr.frontend td{background:#e8e8d0}tr.backend td{background:#e8e8d0;font-weight:bold}\
tr.active_up td{background:#c0ffc0}tr.active_down td{background:#ff9090}\
tr.active_goingup td{background:#ffd020}tr.active_goingdown td{background:#ffffa0}\
tr.backup_up td{background:#b0d0ff}tr.backup_down td{background:#c060ff}\
tr.maintain td{background:#c07820}tr.draining td{background:#20a0ff}\
td.ac{text-align:left}span.hint{border-bottom:1px dotted}";

const GROUPS: &str = "<tr class=\"titre\"><th rowspan=2></th><th colspan=3>Queue</th>\
<th colspan=3>Session rate</th><th colspan=6>Sessions</th><th colspan=2>Bytes</th>\
<th colspan=2>Denied</th><th colspan=3>Errors</th><th colspan=2>Warnings</th>\
<th colspan=9>Server</th><th colspan=4>Total time ms</th><th colspan=4>Connect ms</th></tr><tr class=\"titre\"><th>Cur</th><th>Max</th><th>Limit</th>\
<th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th>\
<th>LbTot</th><th>Last</th><th>In</th><th>Out</th><th>Req</th><th>Resp</th><th>Req</th>\
<th>Conn</th><th>Resp</th><th>Retr</th><th>Redis</th><th>Status</th><th>LastChk</th>\
<th>Wght</th><th>Act</th><th>Bck</th><th>Chk</th><th>Dwn</th><th>Dwntme</th><th>Thrtle</th>\
<th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th></tr>";

/// What the page shows besides the rows.
#[derive(Debug, Clone, Default)]
pub struct Page<'a> {
    pub pid: u32,
    pub uptime_s: u64,
    /// `stats refresh` seconds (0 = none).
    pub refresh: u64,
    pub hide_version: bool,
    /// `stats uri`, plus the page's `;up`/`;norefresh` flags, for links.
    pub uri: &'a str,
    /// `stats admin` allows this reader: checkboxes and an action form per
    /// backend, as HAProxy's page has them.
    pub admin: bool,
    /// The result of the last post (`;st=CODE`): (row class, text).
    pub notice: Option<(&'a str, &'a str)>,
}

/// The actions HAProxy's page offers on checked servers.
const ACTIONS: &str = "<select name=action><option value=\"\"></option>\
<option value=\"ready\">Set state to READY</option><option value=\"drain\">Set state to DRAIN</option>\
<option value=\"maint\">Set state to MAINT</option><option value=\"dhlth\">Health: disable checks</option>\
<option value=\"ehlth\">Health: enable checks</option><option value=\"hrunn\">Health: force UP</option>\
<option value=\"hnolb\">Health: force NOLB</option><option value=\"hdown\">Health: force DOWN</option>\
<option value=\"dagent\">Agent: disable checks</option><option value=\"eagent\">Agent: enable checks</option>\
<option value=\"arunn\">Agent: force UP</option><option value=\"adown\">Agent: force DOWN</option>\
<option value=\"shutdown\">Kill Sessions</option></select>";

/// The form's end after a backend's table: the action, the backend's id.
fn form_end(iid: &str) -> String {
    format!(
        "Choose the action to perform on the checked servers : {ACTIONS}\
         <input type=\"hidden\" name=\"b\" value=\"#{iid}\">\
         &nbsp;<input type=\"submit\" value=\"Apply\"></form>"
    )
}

fn is_server(r: &Row) -> bool {
    !matches!(r.get("svname"), Some("FRONTEND") | Some("BACKEND") | None)
}

/// The page: process facts, the last post's notice, then the tables.
pub fn html(rows: &[Row], page: &Page<'_>) -> String {
    let (pid, uptime_s, refresh) = (page.pid, page.uptime_s, page.refresh);
    let mut out = String::with_capacity(4096 + rows.len() * 600);
    out.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Statistics Report for ringlb</title>");
    if refresh > 0 {
        out.push_str(&format!(
            "<meta http-equiv=\"refresh\" content=\"{refresh}\">"
        ));
    }
    out.push_str(&format!("<style>{CSS}</style></head><body>"));
    let version = if page.hide_version {
        String::new()
    } else {
        format!(" version {}", env!("CARGO_PKG_VERSION"))
    };
    out.push_str(&format!(
        "<h1>ringlb{version}</h1><h2>Statistics Report for pid {pid}</h2>\
         <p class=\"info\">uptime = {}d {}h{:02}m{:02}s</p>",
        uptime_s / 86400,
        (uptime_s / 3600) % 24,
        (uptime_s / 60) % 60,
        uptime_s % 60
    ));
    if let Some((class, text)) = page.notice {
        out.push_str(&format!(
            "<p><div class={class}><a class=lfsb href=\"{}\" title=\"Remove this message\">[X]</a> {text}</div>\n",
            esc(page.uri)
        ));
    }
    // With admin rights, a proxy with servers is a form (HAProxy's page).
    let form_of = |px: &str| -> Option<String> {
        let srv = rows
            .iter()
            .find(|r| r.get("pxname") == Some(px) && is_server(r))?;
        page.admin.then(|| srv.get("iid").unwrap_or("").to_string())
    };
    let mut current = "";
    let mut form: Option<String> = None;
    for r in rows {
        let px = r.get("pxname").unwrap_or("");
        if px != current {
            if !current.is_empty() {
                out.push_str("</table>");
                if let Some(iid) = form.take() {
                    out.push_str(&form_end(&iid));
                }
            }
            current = px;
            form = form_of(px);
            let (open, tick) = match form {
                Some(_) => (
                    "<form method=\"post\">",
                    format!(
                        "<th rowspan=2 width=1><input type=\"checkbox\" onclick=\"for(c in document.getElementsByClassName('{0}-checkbox')) document.getElementsByClassName('{0}-checkbox').item(c).checked = this.checked\"></th>",
                        esc(px)
                    ),
                ),
                None => ("", String::new()),
            };
            out.push_str(&format!(
                "{open}<table class=\"tbl\" id=\"px-{0}\"><tr><th class=\"pxname\" colspan={1}>{0}</th></tr>{2}",
                esc(px),
                if form.is_some() { 40 } else { 39 },
                GROUPS.replacen("<tr class=\"titre\">", &format!("<tr class=\"titre\">{tick}"), 1)
            ));
        }
        let tick = match (&form, is_server(r)) {
            (None, _) => String::new(),
            (Some(_), false) => "<td></td>".to_string(),
            (Some(_), true) => format!(
                "<td><input class='{}-checkbox' type=\"checkbox\" name=\"s\" value=\"{}\"></td>",
                esc(px),
                esc(r.get("svname").unwrap_or(""))
            ),
        };
        let sv = r.get("svname").unwrap_or("");
        let cls = match sv {
            "FRONTEND" => "frontend",
            "BACKEND" => "backend",
            _ => class(r),
        };
        let c = |f: &str| esc(r.get(f).unwrap_or(""));
        let check = match (r.get("check_status"), r.get("check_desc")) {
            (Some(s), Some(d)) => format!(
                "<span class=\"hint\" title=\"{}: {}\">{} in {}ms</span>",
                esc(d),
                c("last_chk"),
                esc(s),
                c("check_duration")
            ),
            _ => String::new(),
        };
        out.push_str(&format!(
            "<tr class=\"{cls}\" data-sv=\"{}\">{tick}<td class=\"ac\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td class=\"ac\">{}</td><td>{check}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(sv),
            esc(if sv == "FRONTEND" {
                "Frontend"
            } else if sv == "BACKEND" {
                "Backend"
            } else {
                sv
            }),
            c("qcur"),
            c("qmax"),
            c("qlimit"),
            c("rate"),
            c("rate_max"),
            c("rate_lim"),
            c("scur"),
            c("smax"),
            c("slim"),
            c("stot"),
            c("lbtot"),
            c("lastsess"),
            c("bin"),
            c("bout"),
            c("dreq"),
            c("dresp"),
            c("ereq"),
            c("econ"),
            c("eresp"),
            c("wretr"),
            c("wredis"),
            c("status"),
            c("weight"),
            c("act"),
            c("bck"),
            c("chkfail"),
            c("chkdown"),
            c("downtime"),
            c("throttle"),
            c("lat_total_p50"),
            c("lat_total_p90"),
            c("lat_total_p99"),
            c("lat_total_p99.9"),
            c("lat_connect_p50"),
            c("lat_connect_p90"),
            c("lat_connect_p99"),
            c("lat_connect_p99.9"),
        ));
    }
    if !current.is_empty() {
        out.push_str("</table>");
        if let Some(iid) = form.take() {
            out.push_str(&form_end(&iid));
        }
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(px: &str, sv: &str, status: &str, bck: &str) -> Row {
        let mut r = Row::default();
        r.set("pxname", px);
        r.set("svname", sv);
        r.set("status", status);
        r.set("bck", bck);
        r
    }

    #[test]
    fn one_table_per_proxy_and_rows_classed_by_state() {
        let rows = [
            row("app", "FRONTEND", "OPEN", ""),
            row("app", "a", "UP", "0"),
            row("app", "b", "DOWN", "0"),
            row("app", "c", "MAINT", "0"),
            row("app", "d", "DRAIN", "0"),
            row("app", "e", "UP", "1"),
            row("app", "BACKEND", "UP", "1"),
            row("other", "<x>", "UP", "0"),
        ];
        let page = Page {
            pid: 7,
            uptime_s: 3661,
            refresh: 30,
            uri: "/stats",
            ..Page::default()
        };
        let h = html(&rows, &page);
        assert_eq!(h.matches("<table class=\"tbl\"").count(), 2);
        for (sv, cls) in [
            ("a", "active_up"),
            ("b", "active_down"),
            ("c", "maintain"),
            ("d", "draining"),
            ("e", "backup_up"),
            ("BACKEND", "backend"),
        ] {
            assert!(
                h.contains(&format!("<tr class=\"{cls}\" data-sv=\"{sv}\">")),
                "{sv}"
            );
        }
        assert!(h.contains("&lt;x&gt;"), "names are escaped");
        assert!(h.contains("content=\"30\""));
        assert!(h.contains("uptime = 0d 1h01m01s"));
        assert!(h.contains("<th colspan=3>Queue</th>"));
        assert!(!h.contains("<form"), "no admin, no form");
        // With admin rights: a checkbox per server and the action form.
        let mut rows = rows.to_vec();
        for r in &mut rows {
            r.set("iid", 3);
        }
        let notice = ("active_up", "Action processed successfully.");
        let admin = Page {
            admin: true,
            notice: Some(notice),
            ..page
        };
        let h = html(&rows, &admin);
        assert!(h.contains(
            "<tr class=\"maintain\" data-sv=\"c\"><td><input class='app-checkbox' type=\"checkbox\" name=\"s\" value=\"c\"></td>"
        ));
        assert!(h.contains("<tr class=\"backend\" data-sv=\"BACKEND\"><td></td>"));
        assert!(h.contains("<input type=\"hidden\" name=\"b\" value=\"#3\">"));
        assert_eq!(h.matches("<form method=\"post\">").count(), 2);
        assert!(h.contains("<p><div class=active_up><a class=lfsb href=\"/stats\" title=\"Remove this message\">[X]</a> Action processed successfully.</div>"));
    }
}
