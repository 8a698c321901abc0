//! The `global` TLS keywords HAProxy configs carry (Debian's default has all of
//! them): `crt-base` and `ca-base` (relative `crt`/`ca-file`/`crl-file` paths), and
//! `ssl-default-bind-ciphers`, `-ciphersuites`, `-options` (defaults for every
//! `bind ... ssl` that does not say otherwise). Applied once the file is read,
//! so the TOML an import writes is complete without them.

use toml::Spanned;

use super::lexer::Word;
use crate::config::schema::{RawBind, RawProxy, RawServer};

#[derive(Default)]
pub(super) struct TlsGlobals {
    crt_base: Option<String>,
    ca_base: Option<String>,
    /// Keys merged into every bind's `ssl` table where absent.
    bind: toml::Table,
}

impl TlsGlobals {
    /// Takes a global keyword if it is one of these; `Some(notices)` then.
    pub(super) fn keyword(&mut self, words: &[Word]) -> Option<Result<Vec<String>, String>> {
        let kw = words[0].text.as_str();
        let arg = || {
            words
                .get(1)
                .map(|w| w.text.clone())
                .ok_or_else(|| format!("\"{kw}\" needs an argument"))
        };
        let s = toml::Value::String;
        let r = match kw {
            "crt-base" => arg().map(|a| {
                self.crt_base = Some(a);
                vec![]
            }),
            "ca-base" => arg().map(|a| {
                self.ca_base = Some(a);
                vec![]
            }),
            "ssl-default-bind-ciphers" => arg().map(|a| {
                self.bind.insert("ciphers".into(), s(a));
                vec![]
            }),
            "ssl-default-bind-ciphersuites" => arg().map(|a| {
                self.bind.insert("ciphersuites".into(), s(a));
                vec![]
            }),
            "ssl-default-bind-options" => Ok(self.options(&words[1..])),
            _ => return None,
        };
        Some(r)
    }

    fn options(&mut self, words: &[Word]) -> Vec<String> {
        let mut notices = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i].text.as_str();
            match w {
                "ssl-min-ver" | "ssl-max-ver" => {
                    if let Some(v) = words.get(i + 1) {
                        self.bind
                            .insert(w.into(), toml::Value::String(v.text.clone()));
                    }
                    i += 1;
                }
                // rustls has none of these: nothing to turn off.
                "no-sslv3" | "no-tlsv10" | "no-tlsv11" => {}
                "no-tlsv12" => {
                    self.bind
                        .insert("ssl-min-ver".into(), toml::Value::String("TLSv1.3".into()));
                }
                "no-tlsv13" => {
                    self.bind
                        .insert("ssl-max-ver".into(), toml::Value::String("TLSv1.2".into()));
                }
                other => notices.push(format!(
                    "ssl-default-bind-options {other}: not applied by ringlb; ignored"
                )),
            }
            i += 1;
        }
        notices
    }

    /// Applies the bases and defaults to one proxy's binds and servers.
    pub(super) fn apply(&self, p: &mut RawProxy) {
        let join = |base: &Option<String>, path: &str| match base {
            Some(b) if !path.starts_with('/') => format!("{}/{path}", b.trim_end_matches('/')),
            _ => path.to_string(),
        };
        for b in p.bind.iter_mut().flatten() {
            let RawBind::Table(t) = b.get_mut() else {
                continue;
            };
            let Some(ssl) = t.ssl.as_mut() else { continue };
            for (k, v) in &self.bind {
                ssl.entry(k.clone()).or_insert_with(|| v.clone());
            }
            for key in ["ca-file", "crl-file"] {
                if let Some(toml::Value::String(c)) = ssl.get_mut(key) {
                    *c = join(&self.ca_base, c);
                }
            }
            if let Some(toml::Value::String(c)) = ssl.get_mut("crt-list") {
                *c = join(&self.crt_base, c);
            }
            match ssl.get_mut("crt") {
                Some(toml::Value::String(c)) => *c = join(&self.crt_base, c),
                Some(toml::Value::Array(a)) => {
                    for v in a {
                        if let toml::Value::String(c) = v {
                            *c = join(&self.crt_base, c);
                        }
                    }
                }
                _ => {}
            }
        }
        let fix = |s: &mut RawServer| {
            for ca in [s.ca_file.as_mut(), s.crl_file.as_mut()]
                .into_iter()
                .flatten()
            {
                let path = join(&self.ca_base, ca.get_ref());
                *ca = Spanned::new(ca.span(), path);
            }
            if let Some(crt) = s.crt.as_mut() {
                let path = join(&self.crt_base, crt.get_ref());
                *crt = Spanned::new(crt.span(), path);
            }
        };
        if let Some(d) = p.default_server.as_mut() {
            fix(d);
        }
        for s in p.servers.iter_mut().flatten() {
            fix(s.get_mut());
        }
    }
}
