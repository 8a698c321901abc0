//! Log-format strings in rule values: literal text, `%[FETCH,CONV...]`
//! sample expressions, `%%`, the address variables `%ci %cp %fi %fp`
//! (`%bi`/`%bp`, unknown before connecting, render as `-`) and the client
//! connection's TLS version and suite `%sslv %sslc` (`-` without TLS).

use crate::http::acl::sample::{parse_expr, Expr};
use crate::http::acl::{Ctx, Env, Error, Scratch};

#[derive(Debug, Clone)]
enum Part {
    Lit(Box<[u8]>),
    Expr(Expr),
    ClientIp,
    ClientPort,
    FrontIp,
    FrontPort,
    SslVersion,
    SslCipher,
    Dash,
}

#[derive(Debug, Clone, Default)]
pub struct LogFmt {
    parts: Vec<Part>,
}

impl LogFmt {
    /// Parses `s`, whose first byte is at offset `at` of the rule text.
    pub fn parse(s: &str, at: usize, env: &mut Env) -> Result<LogFmt, Error> {
        let mut parts = Vec::new();
        let mut lit = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'%' {
                lit.push(b[i]);
                i += 1;
                continue;
            }
            let flush = |lit: &mut Vec<u8>, parts: &mut Vec<Part>| {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(lit).into()));
                }
            };
            match b.get(i + 1) {
                Some(b'%') => {
                    lit.push(b'%');
                    i += 2;
                }
                Some(b'[') => {
                    let close = s[i..].find(']').ok_or(Error {
                        at: at + i,
                        msg: "missing ']' after '%['".into(),
                    })?;
                    let inner = &s[i + 2..i + close];
                    let mut expr = parse_expr(inner, at + i + 2, env)?;
                    if let crate::http::acl::sample::Fetch::Hdr { occ, .. } = &mut expr.fetch {
                        // Outside ACLs, a header fetch without occurrence
                        // takes the last one (HAProxy).
                        if *occ == 0 {
                            *occ = -1;
                        }
                    }
                    if let Some(why) = env.unavailable(&expr.fetch) {
                        return Err(Error {
                            at: at + i + 2,
                            msg: format!("fetch \"{inner}\" {why}"),
                        });
                    }
                    flush(&mut lit, &mut parts);
                    parts.push(Part::Expr(expr));
                    i += close + 1;
                }
                _ => {
                    let var = &s[i + 1..];
                    let (p, n) = if var.starts_with("ci") {
                        (Part::ClientIp, 2)
                    } else if var.starts_with("cp") {
                        (Part::ClientPort, 2)
                    } else if var.starts_with("fi") {
                        (Part::FrontIp, 2)
                    } else if var.starts_with("fp") {
                        (Part::FrontPort, 2)
                    } else if var.starts_with("sslv") {
                        (Part::SslVersion, 4)
                    } else if var.starts_with("sslc") {
                        (Part::SslCipher, 4)
                    } else if var.starts_with("bi") || var.starts_with("bp") {
                        (Part::Dash, 2)
                    } else {
                        return Err(Error {
                            at: at + i,
                            msg: "unsupported log-format variable (use %[fetch], %ci, %cp, %fi, %fp, %sslv, %sslc or %%)"
                                .into(),
                        });
                    };
                    flush(&mut lit, &mut parts);
                    parts.push(p);
                    i += 1 + n;
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit.into()));
        }
        Ok(LogFmt { parts })
    }

    /// A plain string without `%`.
    pub fn literal(s: &str) -> LogFmt {
        LogFmt {
            parts: vec![Part::Lit(s.as_bytes().into())],
        }
    }

    /// Appends the rendered value to `out`; an expression without a value
    /// renders as nothing (as HAProxy does in header values).
    pub fn render(&self, ctx: &Ctx, scratch: &mut Scratch, out: &mut Vec<u8>) {
        use std::io::Write;
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.extend_from_slice(l),
                Part::Expr(e) => {
                    e.text(ctx, scratch, out);
                }
                Part::ClientIp => {
                    let _ = write!(out, "{}", unmap(ctx.client.ip()));
                }
                Part::ClientPort => {
                    let _ = write!(out, "{}", ctx.client.port());
                }
                Part::FrontIp => {
                    let _ = write!(out, "{}", unmap(ctx.local.ip()));
                }
                Part::FrontPort => {
                    let _ = write!(out, "{}", ctx.local.port());
                }
                Part::SslVersion => match ctx.tls {
                    Some(t) => out.extend_from_slice(t.version.as_bytes()),
                    None => out.push(b'-'),
                },
                Part::SslCipher => match ctx.tls {
                    Some(t) => out.extend_from_slice(t.cipher.as_bytes()),
                    None => out.push(b'-'),
                },
                Part::Dash => out.push(b'-'),
            }
        }
    }
}

fn unmap(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}
