//! `check = { type = "http" }` — HAProxy's `option httpchk`: send one request,
//! judge the status line (default: any 2xx or 3xx) or the body (`expect string`).

use super::{read_until, send, CheckStatus, Stream, Verdict};
use crate::config::model::{CheckSpec, HttpExpect};

pub(super) async fn check(s: &mut dyn Stream, spec: &CheckSpec) -> std::io::Result<Verdict> {
    let CheckSpec::Http {
        method,
        uri,
        version,
        host,
        expect,
    } = spec
    else {
        unreachable!("called for http checks only")
    };
    let mut req = format!("{method} {uri} {version}\r\n");
    if let Some(h) = host {
        req += &format!("Host: {h}\r\n");
    }
    req += "Connection: close\r\nUser-Agent: ringlb-check\r\n\r\n";
    send(s, req.as_bytes()).await?;
    let wants_body = matches!(expect, HttpExpect::String(_));
    let resp = read_until(s, 64 * 1024, |b| {
        !wants_body && b.windows(2).any(|w| w == b"\r\n")
    })
    .await?;
    let line_end = resp
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(resp.len());
    let line = String::from_utf8_lossy(&resp[..line_end]).into_owned();
    let mut parts = line.split_whitespace();
    let code = match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(c)) if v.starts_with("HTTP/") => c,
        _ => {
            return Ok(Verdict::new(
                CheckStatus::L7Rsp,
                None,
                format!(
                    "not an HTTP response: \"{}\"",
                    line.chars().take(60).collect::<String>()
                ),
            ))
        }
    };
    let body = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| &resp[i + 4..])
        .unwrap_or(&[]);
    let ok = match expect {
        HttpExpect::Status2xx3xx => (200..400).contains(&code),
        HttpExpect::Status(want) => code == *want,
        HttpExpect::RStatus(re) => re.is_match(code.to_string().as_bytes()),
        HttpExpect::String(text) => {
            let found = String::from_utf8_lossy(body).contains(text.as_str());
            return Ok(if found {
                Verdict::new(CheckStatus::L7Ok, Some(code), "")
            } else {
                Verdict::new(
                    CheckStatus::L7Rsp,
                    Some(code),
                    format!("'{text}' not found in the body"),
                )
            });
        }
    };
    Ok(if ok {
        Verdict::new(CheckStatus::L7Ok, Some(code), "")
    } else {
        Verdict::new(CheckStatus::L7Sts, Some(code), line)
    })
}
