//! HAProxy 2.6's stats CSV: its exact header line (captured from HAProxy
//! 2.6.12, module columns included) and one line per row, every column in
//! place, the ones without a value empty.

use super::Row;

/// HAProxy 2.6's `show stat` header, field names in order (no `# `).
pub const HEADER: &str = "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,";

/// The whole CSV: header line, then one line per row.
pub fn csv(rows: &[Row]) -> String {
    let fields: Vec<&str> = HEADER.split(',').collect();
    let mut out = String::with_capacity(256 * (rows.len() + 1));
    out.push_str("# ");
    out.push_str(HEADER);
    out.push('\n');
    for r in rows {
        for (i, f) in fields.iter().enumerate() {
            if i + 1 == fields.len() && f.is_empty() {
                break;
            }
            if let Some(v) = r.get(f) {
                // Values never hold commas; HAProxy does not quote either.
                out.push_str(&v.replace(',', " "));
            }
            out.push(',');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_as_many_columns_as_the_header() {
        let mut r = Row::default();
        r.set("pxname", "be");
        r.set("svname", "s1");
        r.set("status", "UP");
        r.set("h1_spliced_bytes_out", 7);
        let text = csv(&[r]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,"));
        let header_cols = lines[0].trim_start_matches("# ").split(',').count();
        assert_eq!(lines[1].split(',').count(), header_cols);
        assert!(lines[1].starts_with("be,s1,,,"));
        let cols: Vec<&str> = lines[1].split(',').collect();
        let names: Vec<&str> = HEADER.split(',').collect();
        let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert_eq!(cols[at("status")], "UP");
        assert_eq!(cols[at("h1_spliced_bytes_out")], "7");
    }
}
