//! `userlist`: users with clear (`insecure-password`) or crypt(3) SHA-512/SHA-256
//! (`password`, as `mkpasswd -m sha-512` writes) passwords and groups, checked
//! against a request's `Authorization: Basic` header (`http_auth(LIST)`,
//! `http_auth_group(LIST)`).

use super::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Password {
    Insecure(String),
    Crypt(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct User {
    name: String,
    password: Password,
    groups: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Userlist {
    pub name: String,
    users: Vec<User>,
    groups: Vec<String>,
}

impl Userlist {
    /// Builds a list from its section lines (`group NAME [users U1,U2]`,
    /// `user NAME password HASH|insecure-password PASS [groups G1,G2]`); an
    /// error names the line index and the byte offset in it.
    pub fn parse(name: &str, lines: &[&str]) -> Result<Userlist, (usize, Error)> {
        let mut ul = Userlist {
            name: name.to_string(),
            ..Userlist::default()
        };
        let mut pending: Vec<(usize, usize, String, String)> = Vec::new();
        for (li, line) in lines.iter().enumerate() {
            let toks = super::tokenize(line).map_err(|e| (li, e))?;
            let Some(kw) = toks.first() else { continue };
            let err = |at: usize, m: String| (li, Error { at, msg: m });
            match kw.text.as_str() {
                "group" => {
                    let g = toks
                        .get(1)
                        .ok_or_else(|| err(kw.at, "group: a name is required".into()))?;
                    ul.groups.push(g.text.clone());
                    let mut i = 2;
                    while i < toks.len() {
                        match toks[i].text.as_str() {
                            "users" => {
                                let v = toks.get(i + 1).ok_or_else(|| {
                                    err(toks[i].at, "users: a list is required".into())
                                })?;
                                for u in v.text.split(',').filter(|u| !u.is_empty()) {
                                    pending.push((li, v.at, u.to_string(), g.text.clone()));
                                }
                                i += 2;
                            }
                            o => {
                                return Err(err(
                                    toks[i].at,
                                    format!("group: unknown option \"{o}\""),
                                ))
                            }
                        }
                    }
                }
                "user" => {
                    let u = toks
                        .get(1)
                        .ok_or_else(|| err(kw.at, "user: a name is required".into()))?;
                    let mut password = None;
                    let mut groups = Vec::new();
                    let mut i = 2;
                    while i < toks.len() {
                        let v = toks.get(i + 1).ok_or_else(|| {
                            err(toks[i].at, format!("{}: a value is required", toks[i].text))
                        })?;
                        match toks[i].text.as_str() {
                            "insecure-password" => {
                                password = Some(Password::Insecure(v.text.clone()))
                            }
                            "password" => {
                                if !(v.text.starts_with("$6$") || v.text.starts_with("$5$")) {
                                    return Err(err(
                                        v.at,
                                        "password: only crypt(3) SHA-512 ($6$) and SHA-256 ($5$) hashes are supported".into(),
                                    ));
                                }
                                password = Some(Password::Crypt(v.text.clone()))
                            }
                            "groups" => {
                                for g in v.text.split(',').filter(|g| !g.is_empty()) {
                                    let gi =
                                        ul.groups.iter().position(|x| x == g).ok_or_else(|| {
                                            err(
                                                v.at,
                                                format!("groups: group \"{g}\" is not declared"),
                                            )
                                        })?;
                                    groups.push(gi);
                                }
                            }
                            o => {
                                return Err(err(
                                    toks[i].at,
                                    format!("user: unknown option \"{o}\""),
                                ))
                            }
                        }
                        i += 2;
                    }
                    let password = password.ok_or_else(|| {
                        err(
                            u.at,
                            "user: password or insecure-password is required".into(),
                        )
                    })?;
                    ul.users.push(User {
                        name: u.text.clone(),
                        password,
                        groups,
                    });
                }
                o => return Err(err(kw.at, format!("unknown userlist keyword \"{o}\""))),
            }
        }
        for (li, at, u, g) in pending {
            let gi = ul.groups.iter().position(|x| *x == g).unwrap_or(0);
            let user = ul.users.iter_mut().find(|x| x.name == u).ok_or((
                li,
                Error {
                    at,
                    msg: format!("users: user \"{u}\" is not declared"),
                },
            ))?;
            if !user.groups.contains(&gi) {
                user.groups.push(gi);
            }
        }
        Ok(ul)
    }

    /// The user index whose credentials these are.
    pub fn check(&self, user: &[u8], pass: &[u8]) -> Option<usize> {
        let i = self.users.iter().position(|u| u.name.as_bytes() == user)?;
        let ok = match &self.users[i].password {
            Password::Insecure(p) => p.as_bytes() == pass,
            Password::Crypt(h) => {
                let Ok(pass) = std::str::from_utf8(pass) else {
                    return None;
                };
                if h.starts_with("$6$") {
                    sha_crypt::sha512_check(pass, h).is_ok()
                } else {
                    sha_crypt::sha256_check(pass, h).is_ok()
                }
            }
        };
        ok.then_some(i)
    }

    /// Groups of user `i`.
    pub fn groups_of(&self, i: usize) -> impl Iterator<Item = &str> {
        self.users
            .get(i)
            .into_iter()
            .flat_map(|u| u.groups.iter().map(|&g| self.groups[g].as_str()))
    }

    /// The user a request's `Authorization: Basic` value authenticates, if any.
    pub fn authenticate(&self, authorization: &[u8]) -> Option<usize> {
        let mut buf = [0u8; 768];
        let n = basic_credentials(authorization, &mut buf)?;
        let cred = &buf[..n];
        let colon = cred.iter().position(|&b| b == b':')?;
        self.check(&cred[..colon], &cred[colon + 1..])
    }
}

/// Decodes `Basic BASE64` into `out`; the decoded length.
fn basic_credentials(v: &[u8], out: &mut [u8]) -> Option<usize> {
    let v = super::msg::trim(v);
    let sp = v.iter().position(|&b| b == b' ')?;
    if !v[..sp].eq_ignore_ascii_case(b"basic") {
        return None;
    }
    base64_decode(super::msg::trim(&v[sp + 1..]), out)
}

fn b64_val(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Standard base64 (padding optional) into `out`; `None` if invalid or too long.
pub fn base64_decode(s: &[u8], out: &mut [u8]) -> Option<usize> {
    let s = match s.iter().position(|&b| b == b'=') {
        Some(p) if s[p..].iter().all(|&b| b == b'=') && s[p..].len() <= 2 => &s[..p],
        Some(_) => return None,
        None => s,
    };
    let mut n = 0;
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in s {
        acc = (acc << 6) | b64_val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
        }
    }
    Some(n)
}

/// Standard base64 with padding, appended to `out`.
pub fn base64_encode(s: &[u8], out: &mut Vec<u8>) {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for c in s.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out.push(T[(v >> 18) as usize & 63]);
        out.push(T[(v >> 12) as usize & 63]);
        out.push(if c.len() > 1 {
            T[(v >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if c.len() > 2 {
            T[v as usize & 63]
        } else {
            b'='
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `openssl passwd -6 -salt saltsalt secret` (what `mkpasswd -m sha-512` makes)
    const SHA512: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

    #[test]
    fn base64_round_trip() {
        let mut out = Vec::new();
        base64_encode(b"bob:secret", &mut out);
        assert_eq!(out, b"Ym9iOnNlY3JldA==");
        let mut buf = [0u8; 32];
        let n = base64_decode(&out, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"bob:secret");
        assert!(base64_decode(b"a=b", &mut buf).is_none());
    }

    #[test]
    fn users_and_groups() {
        let line = format!("user alice password {SHA512} groups admin");
        let ul = Userlist::parse(
            "L",
            &[
                "group admin",
                "group dev users bob",
                "user bob insecure-password secret",
                &line,
            ],
        )
        .unwrap();
        assert_eq!(ul.check(b"bob", b"secret"), Some(0));
        assert_eq!(ul.check(b"bob", b"wrong"), None);
        assert_eq!(ul.check(b"alice", b"secret"), Some(1));
        assert_eq!(ul.check(b"alice", b"secreT"), None);
        assert_eq!(ul.groups_of(0).collect::<Vec<_>>(), ["dev"]);
        assert_eq!(ul.groups_of(1).collect::<Vec<_>>(), ["admin"]);
        assert_eq!(ul.authenticate(b"Basic Ym9iOnNlY3JldA=="), Some(0));
        assert_eq!(ul.authenticate(b"Bearer Ym9iOnNlY3JldA=="), None);
        let e = Userlist::parse("L", &["user x password plain"]).unwrap_err();
        assert_eq!(e.0, 0);
        assert_eq!(e.1.at, 16);
        let e = Userlist::parse("L", &["group g users nobody"]).unwrap_err();
        assert!(e.1.msg.contains("nobody"));
    }
}
