//! TLS with rustls: certificates and server configs per `bind ... ssl`, and the
//! [`TlsTransport`] that terminates TLS on a client socket for the L4 pump.
//!
//! The crypto provider is rustls' `aws-lc-rs`, named in one place
//! ([`provider`]): its RSA signatures cost 0.6 of `ring`'s CPU (a full RSA-2048
//! handshake 357 µs instead of 585 µs), its ECDSA P-256 / AES-GCM / ChaCha20 no
//! more, and it builds with nothing but a C compiler, as `ring` does
//! (docs/tls.md, "Crypto provider").
//!
//! Certificates are loaded when the configuration is resolved, so `ringlb
//! check` reports a missing or bad file, a key that does not match its
//! certificate or an unparsable certificate as a config error naming the file,
//! and `run` binds nothing. An expired certificate is a warning.
//!
//! Session resumption works across shards: every server config of the process
//! shares one ticket encrypter (the provider's `Ticketer`, rotated every
//! 6 hours), so a ticket issued by one shard's listener resumes on any other.
//! A bind with `tls-ticket-keys FILE` uses the file's keys instead, so other
//! processes with the same file (or this one after a reload) resume its
//! tickets. Either way a ticket is honoured for `tune.ssl.lifetime` (see
//! [`tickets`]).

mod client;
mod client_auth;
mod crl;
mod crt_list;
mod der;
mod info;
pub mod ktls;
mod provider;
mod tickets;
mod transport;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedCipherSuite};

pub use client::{build_client, ClientOptions, NoVerify, ServerTls};
pub use client_auth::{ClientAuth, IgnoreErrors};
pub use info::{dn_entry, ClientCert, TlsInfo};
pub use provider::{new_ticketer, provider};
pub use transport::{connect, handshake, HandshakeError, TlsTransport};

/// What a `bind ... ssl` asked for, as written (compared on reload).
#[derive(Debug, Clone, PartialEq)]
pub struct TlsOptions {
    /// `crt`: files or directories (every `.pem` in it, sorted by name).
    pub crt: Vec<PathBuf>,
    /// `crt-list`: files of `CERT.pem [SNI filters]` lines, after `crt`.
    pub crt_list: Vec<PathBuf>,
    pub alpn: Vec<String>,
    /// `ssl-min-ver` / `ssl-max-ver`: 12 or 13.
    pub min_ver: Option<u8>,
    pub max_ver: Option<u8>,
    /// `ciphers` (TLS 1.2, OpenSSL names) and `ciphersuites` (TLS 1.3).
    pub ciphers: Option<String>,
    pub ciphersuites: Option<String>,
    /// Client certificates: `verify none|optional|required` against
    /// `ca-file`, with `ca-ignore-err` / `crt-ignore-err`.
    pub verify: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// `crl-file`: revocation lists client certificates are checked against.
    pub crl_file: Option<PathBuf>,
    pub ca_ignore_err: IgnoreErrors,
    pub crt_ignore_err: IgnoreErrors,
    /// `tls-ticket-keys`: HAProxy's ticket key file.
    pub ticket_keys: Option<PathBuf>,
    /// `tune.ssl.lifetime` (global), seconds: how long a ticket is honoured.
    pub ticket_lifetime: u32,
}

/// HAProxy's default `tune.ssl.lifetime`, seconds.
pub const DEFAULT_TICKET_LIFETIME: u32 = 300;

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            crt: Vec::new(),
            crt_list: Vec::new(),
            alpn: Vec::new(),
            min_ver: None,
            max_ver: None,
            ciphers: None,
            ciphersuites: None,
            verify: None,
            ca_file: None,
            crl_file: None,
            ca_ignore_err: IgnoreErrors::default(),
            crt_ignore_err: IgnoreErrors::default(),
            ticket_keys: None,
            ticket_lifetime: DEFAULT_TICKET_LIFETIME,
        }
    }
}

/// A bind's TLS: its options and the server config built from them.
pub struct BindTls {
    pub options: TlsOptions,
    pub server: Arc<ServerConfig>,
    /// `verify optional|required`: what `ssl_c_verify` asks after a handshake.
    pub client_auth: Option<Arc<ClientAuth>>,
    /// Non-fatal findings (an expired certificate).
    pub warnings: Vec<String>,
}

impl PartialEq for BindTls {
    fn eq(&self, other: &Self) -> bool {
        self.options == other.options
    }
}

impl fmt::Debug for BindTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BindTls")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The process' one ticket encrypter, shared by every server config.
fn ticketer() -> Result<Arc<dyn ProducesTickets>, String> {
    static T: OnceLock<Arc<dyn ProducesTickets>> = OnceLock::new();
    if let Some(t) = T.get() {
        return Ok(t.clone());
    }
    let t = provider::new_ticketer().map_err(|e| format!("ticket keys: {e}"))?;
    Ok(T.get_or_init(|| t).clone())
}

/// Parses a `ssl = { ... }` table (TOML, or built by the haproxy.cfg parser).
pub fn options(t: &toml::Table) -> Result<TlsOptions, String> {
    let mut o = TlsOptions::default();
    let list = |k: &str, v: &toml::Value, sep: char| -> Result<Vec<String>, String> {
        match v {
            toml::Value::String(s) => Ok(s
                .split(sep)
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect()),
            toml::Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(String::from)
                        .ok_or_else(|| format!("ssl.{k}: expected strings"))
                })
                .collect(),
            _ => Err(format!("ssl.{k}: expected a string or a list of strings")),
        }
    };
    let string = |k: &str, v: &toml::Value| -> Result<String, String> {
        v.as_str()
            .map(String::from)
            .ok_or_else(|| format!("ssl.{k}: expected a string"))
    };
    let ver = |k: &str, v: &toml::Value| -> Result<u8, String> {
        match string(k, v)?.as_str() {
            "TLSv1.2" => Ok(12),
            "TLSv1.3" => Ok(13),
            "SSLv3" | "TLSv1.0" | "TLSv1.1" => Err(format!(
                "ssl.{k}: {} is refused: only TLSv1.2 and TLSv1.3 are offered",
                string(k, v)?
            )),
            other => Err(format!(
                "ssl.{k}: \"{other}\" is not a TLS version (TLSv1.2, TLSv1.3)"
            )),
        }
    };
    for (k, v) in t {
        match k.as_str() {
            "crt" => o.crt.extend(list(k, v, '\u{0}')?.into_iter().map(PathBuf::from)),
            "alpn" => o.alpn = list(k, v, ',')?,
            "ssl-min-ver" => o.min_ver = Some(ver(k, v)?),
            "ssl-max-ver" => o.max_ver = Some(ver(k, v)?),
            "ciphers" => o.ciphers = Some(string(k, v)?),
            "ciphersuites" => o.ciphersuites = Some(string(k, v)?),
            "verify" => o.verify = Some(string(k, v)?),
            "ca-file" => o.ca_file = Some(PathBuf::from(string(k, v)?)),
            "crl-file" => o.crl_file = Some(PathBuf::from(string(k, v)?)),
            "ca-ignore-err" => o.ca_ignore_err = IgnoreErrors::parse(k, &string(k, v)?)?,
            "crt-ignore-err" => o.crt_ignore_err = IgnoreErrors::parse(k, &string(k, v)?)?,
            "crt-list" => o
                .crt_list
                .extend(list(k, v, '\u{0}')?.into_iter().map(PathBuf::from)),
            "tls-ticket-keys" => o.ticket_keys = Some(PathBuf::from(string(k, v)?)),
            other => return Err(format!("ssl.{other}: unknown TLS option (crt, alpn, ssl-min-ver, ssl-max-ver, ciphers, ciphersuites, verify, ca-file, crl-file, ca-ignore-err, crt-ignore-err, crt-list, tls-ticket-keys)")),
        }
    }
    if o.crt.is_empty() && o.crt_list.is_empty() {
        return Err(
            "ssl needs a certificate: crt FILE|DIR (PEM: certificate, chain and key) or crt-list FILE".into(),
        );
    }
    if let (Some(a), Some(b)) = (o.min_ver, o.max_ver) {
        if a > b {
            return Err("ssl-min-ver is above ssl-max-ver".into());
        }
    }
    Ok(o)
}

/// OpenSSL's names for the suites rustls has, looked up among the provider's.
fn suite_by_name(name: &str) -> Option<SupportedCipherSuite> {
    use rustls::CipherSuite as cs;
    let id = match name {
        "ECDHE-ECDSA-AES128-GCM-SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-AES256-GCM-SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-CHACHA20-POLY1305" => cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-RSA-AES128-GCM-SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES256-GCM-SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-CHACHA20-POLY1305" => cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        "TLS_AES_128_GCM_SHA256" => cs::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_256_GCM_SHA384" => cs::TLS13_AES_256_GCM_SHA384,
        "TLS_CHACHA20_POLY1305_SHA256" => cs::TLS13_CHACHA20_POLY1305_SHA256,
        _ => return None,
    };
    provider()
        .cipher_suites
        .into_iter()
        .find(|s| s.suite() == id)
}

/// The suites a colon-separated list names, in its order, and the names
/// skipped. As OpenSSL does with a cipher string, names it cannot offer (rustls
/// has no CBC, RSA key exchange or DHE suites) are skipped, so the usual long
/// lists keep working (with a warning); a list where nothing matches is an
/// error that names what would.
fn suites(
    key: &str,
    list: &str,
    tls13: bool,
) -> Result<(Vec<SupportedCipherSuite>, Vec<String>), String> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for name in list.split(':').map(str::trim).filter(|s| !s.is_empty()) {
        match suite_by_name(name).filter(|s| s.tls13().is_some() == tls13) {
            Some(s) => out.push(s),
            None => skipped.push(name.to_string()),
        }
    }
    if out.is_empty() {
        let known: Vec<&str> = [
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-RSA-CHACHA20-POLY1305",
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256",
        ]
        .into_iter()
        .filter(|n| n.starts_with("TLS_") == tls13)
        .collect();
        return Err(format!(
            "{key}: no suite rustls offers in \"{list}\" (it has only AEAD suites with forward secrecy: {})",
            known.join(":")
        ));
    }
    Ok((out, skipped))
}

/// One certificate with the names it serves.
#[derive(Debug)]
struct Entry {
    names: Vec<String>,
    /// Names kept away from it (`!name` in a crt-list).
    excluded: Vec<String>,
    key: Arc<CertifiedKey>,
}

/// SNI: an exact name first, then a wildcard (`*.example.com` serves
/// `a.example.com`, not `a.b.example.com`), else the first certificate.
#[derive(Debug)]
struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    fn new(entries: &[Entry]) -> SniResolver {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for e in entries {
            for n in &e.names {
                match n.strip_prefix("*.") {
                    Some(suffix) => wildcard.entry(suffix.to_string()),
                    None => exact.entry(n.clone()),
                }
                .or_insert_with(|| e.key.clone());
            }
        }
        // `!name`: that name does not reach the certificate's wildcard; it
        // gets an exact certificate if one has it, else the default.
        for e in entries {
            for n in &e.excluded {
                exact
                    .entry(n.clone())
                    .or_insert_with(|| entries[0].key.clone());
            }
        }
        SniResolver {
            exact,
            wildcard,
            default: entries[0].key.clone(),
        }
    }

    fn pick(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = sni.map(|s| s.trim_end_matches('.').to_ascii_lowercase()) else {
            return self.default.clone();
        };
        if let Some(k) = self.exact.get(&name) {
            return k.clone();
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(k) = self.wildcard.get(parent) {
                return k.clone();
            }
        }
        self.default.clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pick(hello.server_name()))
    }
}

/// The `.pem` files a `crt` names: the file, or every `.pem` in the directory.
fn pem_files(p: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("crt {}: {e}", p.display()))?;
    if !meta.is_dir() {
        return Ok(vec![p.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(p)
        .map_err(|e| format!("crt {}: {e}", p.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| f.extension().is_some_and(|x| x == "pem") && f.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "crt {}: no .pem file in this directory",
            p.display()
        ));
    }
    Ok(files)
}

/// Loads one PEM file: certificate, chain, key.
fn load_pem(
    file: &Path,
    provider: &CryptoProvider,
    now: i64,
    warnings: &mut Vec<String>,
) -> Result<Entry, String> {
    let f = file.display();
    let bytes = std::fs::read(file).map_err(|e| format!("crt {f}: {e}"))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("crt {f}: bad PEM: {e:?}"))?;
    if chain.is_empty() {
        return Err(format!("crt {f}: no certificate in this file"));
    }
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            format!("crt {f}: no private key in this file (PEM with certificate, chain and key, as HAProxy)")
        }
        e => format!("crt {f}: bad private key: {e:?}"),
    })?;
    let info = der::cert_info(&chain[0]).ok_or_else(|| {
        format!("crt {f}: the first certificate is not a valid X.509 certificate")
    })?;
    if let Some(t) = info.not_after {
        if t < now {
            warnings.push(format!(
                "warning: crt {f}: the certificate has expired; clients will refuse it"
            ));
        }
    }
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("crt {f}: unusable private key: {e}"))?;
    let ck = CertifiedKey::new(chain, signer);
    match ck.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(format!(
                "crt {f}: the private key does not match the certificate"
            ))
        }
        Err(e) => return Err(format!("crt {f}: unusable certificate: {e}")),
    }
    Ok(Entry {
        names: info.names,
        excluded: Vec::new(),
        key: Arc::new(ck),
    })
}

/// Builds a bind's server config; errors name the file at fault.
pub fn build(options: TlsOptions) -> Result<BindTls, String> {
    let mut provider = provider();
    let (mut suites13, mut suites12): (Vec<_>, Vec<_>) = provider
        .cipher_suites
        .iter()
        .partition(|s| s.tls13().is_some());
    let mut warnings = Vec::new();
    for (key, list, tls13) in [
        ("ciphersuites", &options.ciphersuites, true),
        ("ciphers", &options.ciphers, false),
    ] {
        let Some(list) = list else { continue };
        let (found, skipped) = suites(key, list, tls13)?;
        if !skipped.is_empty() {
            warnings.push(format!(
                "warning: {key}: {} not offered (rustls has no such suite); skipped",
                skipped.join(", ")
            ));
        }
        if tls13 {
            suites13 = found;
        } else {
            suites12 = found;
        }
    }
    provider.cipher_suites = suites13.into_iter().chain(suites12).collect();
    let provider = Arc::new(provider);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut entries = Vec::new();
    for p in &options.crt {
        for f in pem_files(p)? {
            entries.push(load_pem(&f, &provider, now, &mut warnings)?);
        }
    }
    for l in &options.crt_list {
        let f = l.display().to_string();
        let text = std::fs::read_to_string(l).map_err(|e| format!("crt-list {f}: {e}"))?;
        for line in crt_list::parse(&f, &text)? {
            let mut e = load_pem(&line.file, &provider, now, &mut warnings)?;
            if !line.names.is_empty() {
                e.names = line.names;
            }
            e.excluded = line.excluded;
            entries.push(e);
        }
    }
    let (lo, hi) = (options.min_ver.unwrap_or(12), options.max_ver.unwrap_or(13));
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (lo..=hi).contains(v))
            .map(|(_, v)| v)
            .collect();
    // Read even with `verify none`, as HAProxy does: a bad file is an error.
    let crls = options.crl_file.as_deref().map(crl::load).transpose()?;
    let client_auth = ClientAuth::build(
        options.verify.as_deref().unwrap_or("none"),
        options.ca_file.as_deref(),
        crls,
        (
            options.ca_ignore_err.clone(),
            options.crt_ignore_err.clone(),
        ),
        provider.clone(),
    )?;
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("ssl: {e}"))?;
    let builder = match &client_auth {
        None => builder.with_no_client_auth(),
        Some(a) => builder.with_client_cert_verifier(Arc::new(client_auth::Verifier(a.clone()))),
    };
    let mut cfg = builder.with_cert_resolver(Arc::new(SniResolver::new(&entries)));
    // HTTP/2 is not spoken yet: offering it would break clients that pick it.
    cfg.alpn_protocols = options
        .alpn
        .iter()
        .filter(|p| p.as_str() != "h2")
        .map(|p| p.as_bytes().to_vec())
        .collect();
    let keys: Arc<dyn ProducesTickets> = match &options.ticket_keys {
        Some(file) => Arc::new(tickets::FileKeys::load(file)?),
        None => ticketer()?,
    };
    cfg.ticketer = Arc::new(tickets::Expiring::new(keys, options.ticket_lifetime));
    // Stateless resumption only: no session cache shared (and locked) by shards.
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 2;
    Ok(BindTls {
        options,
        server: Arc::new(cfg),
        client_auth,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_refuse_what_is_not_supported() {
        let t: toml::Table = toml::from_str("crt = \"/x.pem\"\ncrt-ignore-err = \"x\"").unwrap();
        assert!(options(&t).unwrap_err().contains("expected all"));
        let t: toml::Table = toml::from_str("crt = \"/x.pem\"\nssl-min-ver = \"TLSv1.1\"").unwrap();
        assert!(options(&t).unwrap_err().contains("refused"));
        let t: toml::Table = toml::from_str("alpn = \"h2\"").unwrap();
        assert!(options(&t).unwrap_err().contains("needs a certificate"));
        let t: toml::Table =
            toml::from_str("crt = \"/x.pem\"\nalpn = \"h2,http/1.1\"\nssl-max-ver = \"TLSv1.2\"")
                .unwrap();
        let o = options(&t).unwrap();
        assert_eq!(o.alpn, ["h2", "http/1.1"]);
        assert_eq!(o.max_ver, Some(12));
    }

    #[test]
    fn cipher_names_map_or_are_refused() {
        let (found, skipped) = suites(
            "ciphers",
            "ECDHE-ECDSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305",
            false,
        )
        .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(skipped, ["DHE-RSA-AES128-GCM-SHA256"]);
        let e = suites("ciphers", "AES128-SHA:HIGH:!aNULL", false).unwrap_err();
        assert!(
            e.contains("no suite rustls offers in \"AES128-SHA:HIGH:!aNULL\""),
            "{e}"
        );
        assert!(suites("ciphersuites", "TLS_AES_128_GCM_SHA256", false).is_err());
        assert_eq!(
            suites("ciphersuites", "TLS_AES_128_GCM_SHA256", true)
                .unwrap()
                .0
                .len(),
            1
        );
    }

    #[test]
    fn missing_file_is_named() {
        let o = TlsOptions {
            crt: vec!["/nonexistent/site.pem".into()],
            ..Default::default()
        };
        let e = build(o).unwrap_err();
        assert!(e.contains("/nonexistent/site.pem"), "{e}");
    }
}
