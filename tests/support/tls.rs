//! Test certificates and tool checks for the TLS tests: a test CA and ECDSA
//! P-256 leaves made with the `openssl` CLI, each leaf as HAProxy wants it
//! (one PEM: certificate, chain, key) and as nginx wants it (`.crt`, `.key`).

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::config::q;
use super::{Cfg, Proxy};

/// Every tool is on PATH; else skip loudly (fail under CI=true).
pub fn require(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("missing tools under CI: {missing:?}");
    }
    eprintln!("SKIPPED: missing {missing:?} (scripts/test.sh installs them)");
    false
}

pub fn run(dir: &Path, cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and leaf certificates, each leaf as HAProxy wants it: one PEM with
/// the certificate, the chain and the key. `crts/` holds a.test (first: the
/// default), b.test and *.wild.test.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("crts")).unwrap();
        make_ca(d, "ca", "ringlb test CA");
        for (file, name) in [("1-a", "a.test"), ("2-b", "b.test"), ("3-w", "*.wild.test")] {
            let san = format!("subjectAltName=DNS:{name}");
            issue(
                d,
                file,
                &format!("/CN={name}"),
                "ca",
                &[&san, "basicConstraints=CA:FALSE"],
            );
            let mut pem = std::fs::read(d.join(format!("{file}.crt"))).unwrap();
            pem.extend(std::fs::read(d.join("ca.crt")).unwrap());
            pem.extend(std::fs::read(d.join(format!("{file}.key"))).unwrap());
            std::fs::write(d.join("crts").join(format!("{file}.pem")), pem).unwrap();
        }
        Pki { dir }
    }

    pub fn ca(&self) -> String {
        self.dir.path().join("ca.crt").display().to_string()
    }

    pub fn crts(&self) -> String {
        self.dir.path().join("crts").display().to_string()
    }

    pub fn pem(&self, file: &str) -> PathBuf {
        self.dir.path().join("crts").join(file)
    }
}

impl Pki {
    /// A client certificate for `subject` (`/C=FR/O=Org/CN=alice`) issued by
    /// the test CA, or (`other_ca`) by a second CA the proxies do not trust;
    /// returns the certificate and key files.
    pub fn client(&self, name: &str, subject: &str, other_ca: bool) -> (String, String) {
        let d = self.dir.path();
        let ca = if other_ca { "other-ca" } else { "ca" };
        if other_ca && !d.join("other-ca.crt").exists() {
            make_ca(d, "other-ca", "another CA");
        }
        issue(
            d,
            name,
            subject,
            ca,
            &["basicConstraints=CA:FALSE", "extendedKeyUsage=clientAuth"],
        );
        (
            d.join(format!("{name}.crt")).display().to_string(),
            d.join(format!("{name}.key")).display().to_string(),
        )
    }

    /// An intermediate CA `NAME.crt` (key `NAME.key`) issued by the test CA.
    pub fn intermediate(&self, name: &str) {
        issue(
            self.dir.path(),
            name,
            &format!("/CN={name}"),
            "ca",
            &[
                "basicConstraints=critical,CA:TRUE",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
    }

    /// A client certificate for `subject` issued by the intermediate CA
    /// `issuer` (see [`Pki::intermediate`]); the certificate file holds the
    /// chain (leaf, then `issuer`), as a client sends it.
    pub fn client_under(&self, name: &str, subject: &str, issuer: &str) -> (String, String) {
        let d = self.dir.path();
        issue(
            d,
            name,
            subject,
            issuer,
            &["basicConstraints=CA:FALSE", "extendedKeyUsage=clientAuth"],
        );
        let crt = d.join(format!("{name}.crt"));
        let mut chain = std::fs::read(&crt).unwrap();
        chain.extend(std::fs::read(d.join(format!("{issuer}.crt"))).unwrap());
        std::fs::write(&crt, chain).unwrap();
        (
            crt.display().to_string(),
            d.join(format!("{name}.key")).display().to_string(),
        )
    }

    /// A certificate revocation list `NAME.pem` from the test CA: see
    /// [`Pki::crl_of`].
    pub fn crl(&self, name: &str, revoked: &[&str]) -> String {
        self.crl_of("ca", name, revoked, &[])
    }

    /// A certificate revocation list `NAME.pem` signed by the CA `issuer`
    /// (valid two days, v2 with a CRL number) revoking the certificates
    /// `revoked` (`alice` for `alice.crt`), made with `openssl ca` and its own
    /// index, with `gencrl` (more `openssl ca -gencrl` options:
    /// `-crl_nextupdate`); returns its path.
    pub fn crl_of(&self, issuer: &str, name: &str, revoked: &[&str], gencrl: &[&str]) -> String {
        let d = self.dir.path();
        let (index, number, cnf) = (
            format!("{name}.index"),
            format!("{name}.number"),
            format!("{name}.cnf"),
        );
        std::fs::write(d.join(&index), "").unwrap();
        std::fs::write(d.join(&number), "01\n").unwrap();
        std::fs::write(
            d.join(&cnf),
            format!(
                "[ca]\ndefault_ca = crl\n[crl]\ndatabase = {index}\ncrlnumber = {number}\n\
                 default_md = sha256\ndefault_crl_days = 2\n"
            ),
        )
        .unwrap();
        let (key, crt) = (format!("{issuer}.key"), format!("{issuer}.crt"));
        let ca = ["ca", "-config", &cnf, "-keyfile", &key, "-cert", &crt];
        for r in revoked {
            let crt = format!("{r}.crt");
            run(d, "openssl", &[&ca[..], &["-revoke", &crt]].concat());
        }
        let out = format!("{name}.pem");
        run(
            d,
            "openssl",
            &[&ca[..], &["-gencrl", "-out", &out], gencrl].concat(),
        );
        d.join(out).display().to_string()
    }
}

/// A P-256 private key in `name`.
fn ec_key(d: &Path, name: &str) {
    run(
        d,
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            name,
        ],
    );
}

/// A self-signed CA, `NAME.crt` with a new key `NAME.key`, for `cn`.
fn make_ca(d: &Path, name: &str, cn: &str) {
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    ec_key(d, &key);
    run(
        d,
        "openssl",
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &key,
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            &crt,
        ],
    );
}

/// A certificate `NAME.crt` with a new key `NAME.key` for `subject`, issued by
/// the CA `ca` (`ca.crt`, `ca.key`), with each of `extensions` (`-addext`).
fn issue(d: &Path, name: &str, subject: &str, ca: &str, extensions: &[&str]) {
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    ec_key(d, &key);
    let mut args = vec![
        "req", "-x509", "-new", "-key", &key, "-subj", subject, "-CA", &ca_crt, "-CAkey", &ca_key,
        "-days", "2",
    ];
    for e in extensions {
        args.extend(["-addext", e]);
    }
    args.extend(["-out", &crt]);
    run(d, "openssl", &args);
}

/// A listen section `name` on `port` with TLS on its bind (certificates
/// `crt`; `ssl_extra`: more `ssl` keys, each starting with `, `) in front of
/// one server `s1` at `server`.
fn tls_listen(name: &str, port: u16, crt: &str, ssl_extra: &str, server: impl Display) -> Proxy {
    Proxy::new(name)
        .bind_with(
            format!("127.0.0.1:{port}"),
            &format!("ssl = {{ crt = {}{ssl_extra} }}", q(crt)),
        )
        .server("s1", server)
}

/// A mode-tcp listen section `tls` on `port` terminating TLS (see
/// [`tls_listen`]) in front of `server`.
pub fn tls_tcp_front(port: u16, crt: &str, server: impl Display, ssl_extra: &str) -> Cfg {
    Cfg::new()
        .mode("tcp")
        .timeouts("2s", "30s", "30s")
        .listen(tls_listen("tls", port, crt, ssl_extra, server))
}

/// A mode-http listen section on `port` with TLS (the test certificates) in
/// front of one server on 127.0.0.1:`server`.
pub fn https_front(port: u16, pki: &Pki, server: u16) -> Cfg {
    Cfg::new()
        .mode("http")
        .timeouts("2s", "30s", "30s")
        .listen(tls_listen(
            "https",
            port,
            &pki.crts(),
            "",
            format!("127.0.0.1:{server}"),
        ))
}

/// curl's arguments for `GET https://a.test:PORT{path}` trusting the test CA,
/// with a client certificate (its certificate and key files) if given, and
/// TLS 1.2 only when `tls12`.
pub fn client_cert_curl_args(
    pki: &Pki,
    port: u16,
    path: &str,
    cert: Option<&(String, String)>,
    tls12: bool,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-sS".into(),
        "--cacert".into(),
        pki.ca(),
        "--resolve".into(),
        format!("a.test:{port}:127.0.0.1"),
        "-w".into(),
        " %{http_code}".into(),
    ];
    if let Some((crt, key)) = cert {
        args.extend(["--cert".into(), crt.clone(), "--key".into(), key.clone()]);
    }
    if tls12 {
        args.extend(["--tlsv1.2".into(), "--tls-max".into(), "1.2".into()]);
    }
    args.push(format!("https://a.test:{port}{path}"));
    args
}

/// A rustls client configuration (ringlb's provider) trusting the test CA.
pub fn client_config(pki: &Pki) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(pki.ca()).unwrap())
        .unwrap();
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(ringlb::tls::provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
