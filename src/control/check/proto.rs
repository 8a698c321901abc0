//! Database and Redis probes, and the generic `tcp-check` step runner:
//! `redis` (PING → +PONG), `pgsql` (a startup message; an authentication request
//! or ReadyForQuery means alive, as HAProxy's pgsql-check), `mysql` (the server's
//! handshake, then, with `user`, a login whose OK or access error both prove a
//! live server, as HAProxy's mysql-check), and ordered send/expect steps.

use super::{read_until, send, CheckStatus, Stream, Verdict};
use crate::config::model::TcpCheckStep;

pub(super) async fn redis(s: &mut dyn Stream) -> Verdict {
    tcp_check(
        s,
        &[
            TcpCheckStep::Send(b"PING\r\n".to_vec()),
            TcpCheckStep::ExpectString("+PONG".into()),
        ],
    )
    .await
}

pub(super) async fn pgsql(s: &mut dyn Stream, user: &str) -> Verdict {
    // StartupMessage: length, protocol 3.0, "user" NUL name NUL, terminating NUL.
    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes());
    body.extend_from_slice(b"user\0");
    body.extend_from_slice(user.as_bytes());
    body.extend_from_slice(b"\0\0");
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    if let Err(e) = send(s, &msg).await {
        return Verdict::new(CheckStatus::L7Rsp, None, e.to_string());
    }
    match read_until(s, 1024, |b| !b.is_empty()).await {
        Ok(r) if r.first() == Some(&b'R') || r.first() == Some(&b'Z') => {
            Verdict::new(CheckStatus::L7Ok, None, "PostgreSQL server is ok")
        }
        Ok(r) if r.first() == Some(&b'E') => {
            let text: String = String::from_utf8_lossy(&r[1..])
                .chars()
                .filter(|c| !c.is_control())
                .take(120)
                .collect();
            Verdict::new(CheckStatus::L7Sts, None, text)
        }
        Ok(r) if r.is_empty() => Verdict::new(CheckStatus::L7Rsp, None, "connection closed"),
        Ok(_) => Verdict::new(CheckStatus::L7Rsp, None, "not a PostgreSQL answer"),
        Err(e) => Verdict::new(CheckStatus::L7Rsp, None, e.to_string()),
    }
}

pub(super) async fn mysql(s: &mut dyn Stream, user: Option<&str>) -> Verdict {
    let hello = match read_until(s, 4096, |b| b.len() >= 5).await {
        Ok(h) => h,
        Err(e) => return Verdict::new(CheckStatus::L7Rsp, None, e.to_string()),
    };
    if hello.len() < 5 {
        return Verdict::new(CheckStatus::L7Rsp, None, "connection closed");
    }
    match hello[4] {
        0xff => {
            let text: String = String::from_utf8_lossy(&hello[7.min(hello.len())..])
                .chars()
                .take(120)
                .collect();
            return Verdict::new(CheckStatus::L7Sts, None, text);
        }
        10 => {}
        v => {
            return Verdict::new(
                CheckStatus::L7Rsp,
                None,
                format!("unknown MySQL protocol version {v}"),
            )
        }
    }
    let Some(user) = user else {
        return Verdict::new(CheckStatus::L7Ok, None, "MySQL server handshake received");
    };
    // HandshakeResponse41: capabilities (LONG_PASSWORD|PROTOCOL_41|SECURE_CONNECTION),
    // max packet, charset, 23 zero bytes, user NUL, empty auth response.
    let mut p = Vec::new();
    p.extend_from_slice(&0x0000_8205u32.to_le_bytes());
    p.extend_from_slice(&(1u32 << 24).to_le_bytes());
    p.push(33);
    p.extend_from_slice(&[0u8; 23]);
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    p.push(0);
    let mut pkt = (p.len() as u32).to_le_bytes()[..3].to_vec();
    pkt.push(1);
    pkt.extend_from_slice(&p);
    if let Err(e) = send(s, &pkt).await {
        return Verdict::new(CheckStatus::L7Rsp, None, e.to_string());
    }
    match read_until(s, 4096, |b| b.len() >= 5).await {
        Ok(r) if r.len() >= 5 && (r[4] == 0x00 || r[4] == 0xfe) => {
            Verdict::new(CheckStatus::L7Ok, None, "MySQL login answered")
        }
        Ok(r) if r.len() >= 5 && r[4] == 0xff => {
            let text: String = String::from_utf8_lossy(&r[7.min(r.len())..])
                .chars()
                .take(120)
                .collect();
            Verdict::new(CheckStatus::L7Sts, None, text)
        }
        Ok(_) => Verdict::new(CheckStatus::L7Rsp, None, "no MySQL answer to the login"),
        Err(e) => Verdict::new(CheckStatus::L7Rsp, None, e.to_string()),
    }
}

/// Runs send/expect steps in order over one connection.
pub(super) async fn tcp_check(s: &mut dyn Stream, steps: &[TcpCheckStep]) -> Verdict {
    let mut seen: Vec<u8> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        let r = match step {
            TcpCheckStep::Connect => Ok(()),
            TcpCheckStep::Send(b) | TcpCheckStep::SendBinary(b) => {
                // What arrives after a send answers that send.
                seen.clear();
                send(s, b).await
            }
            TcpCheckStep::ExpectString(text) => {
                expect(s, &mut seen, |b| contains(b, text.as_bytes())).await
            }
            TcpCheckStep::ExpectBinary(bytes) => expect(s, &mut seen, |b| contains(b, bytes)).await,
            TcpCheckStep::ExpectRString(re) => expect(s, &mut seen, |b| re.is_match(b)).await,
        };
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let what = match step {
                    TcpCheckStep::ExpectString(t) => t.clone(),
                    TcpCheckStep::ExpectRString(p) => p.source.clone(),
                    _ => "binary content".into(),
                };
                return Verdict::new(
                    CheckStatus::L7Rsp,
                    None,
                    format!("TCPCHK did not match content '{what}' at step {n}"),
                );
            }
            Err(e) => return Verdict::new(CheckStatus::L7Rsp, None, format!("step {n}: {e}")),
        }
    }
    Verdict::new(CheckStatus::L7Ok, None, "(tcp-check)")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Reads into `seen` until `matches` holds; EOF without a match is InvalidData.
async fn expect(
    s: &mut dyn Stream,
    seen: &mut Vec<u8>,
    matches: impl Fn(&[u8]) -> bool,
) -> std::io::Result<()> {
    use futures_lite::AsyncReadExt;
    let mut chunk = [0u8; 4096];
    while !matches(seen) {
        if seen.len() > 64 * 1024 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no match",
            ));
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no match",
            ));
        }
        seen.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}
