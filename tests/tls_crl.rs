//! `crl-file FILE` through the real binary, with haproxy 2.6 as the oracle: on
//! a bind, a client certificate revoked by the list is refused (and let through
//! by `crt-ignore-err 23`, `ssl_c_verify` then 23); on a server line, a server
//! whose certificate is revoked gets no request (503). Certificates and CRLs
//! come from `support::tls::Pki` (made with `openssl req` / `openssl ca`).

mod support;

use std::process::Command;

use support::servers::{haproxy_defaults, Haproxy, Nginx};
use support::tls::{client_cert_curl_args, require, Pki};
use support::*;

/// curl's exit code and stdout (`-w " %{http_code}"` appended to the body).
fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `bind ... ssl crt ... ca-file CA verify required crl-file CRL` in front of
/// an nginx, against haproxy with the same haproxy.cfg, over TLS 1.3 and 1.2
/// (the same curl exit code and output from both). The CA file trusts the test
/// CA and another CA; the CRL file has the test CA's list (revoking bob) and
/// its intermediate's (revoking dave). Clients: alice and bob under the test
/// CA, carol and dave under the intermediate (sending it), mallory under the
/// other CA (no list from it). Only alice and carol get nginx's page;
/// `verify optional` with the ignore lists shows why in `ssl_c_verify`: 23
/// revoked, 3 no CRL from the issuer. A bind whose file has only the
/// intermediate's list refuses carol too (3): every certificate of the chain
/// needs its issuer's list, as HAProxy's `X509_V_FLAG_CRL_CHECK_ALL`. An
/// expired list (`nextUpdate` passed) is error 12 for what it covers.
#[test]
fn revoked_client_certificates_are_refused_as_by_haproxy() {
    if !require(&["openssl", "curl", "haproxy", "nginx"]) {
        return;
    }
    let pki = Pki::new();
    let d = pki.dir.path();
    pki.intermediate("inter");
    let alice = pki.client("alice", "/CN=alice", false);
    let bob = pki.client("bob", "/CN=bob", false);
    let carol = pki.client_under("carol", "/CN=carol", "inter");
    let dave = pki.client_under("dave", "/CN=dave", "inter");
    let mallory = pki.client("mallory", "/CN=mallory", true);
    let root_crl = pki.crl("root-crl", &["bob"]);
    let inter_crl = pki.crl_of("inter", "inter-crl", &["dave"], &[]);
    let expired = pki.crl_of(
        "ca",
        "expired-crl",
        &[],
        &[
            "-crl_lastupdate",
            "20200101000000Z",
            "-crl_nextupdate",
            "20200102000000Z",
        ],
    );
    let both = d.join("both-crls.pem");
    let old = d.join("old-crls.pem");
    let cas = d.join("cas.pem");
    for (out, parts) in [
        (&both, [root_crl.clone(), inter_crl.clone()]),
        (&old, [expired, inter_crl.clone()]),
        (
            &cas,
            [pki.ca(), d.join("other-ca.crt").display().to_string()],
        ),
    ] {
        let text: Vec<u8> = parts
            .iter()
            .flat_map(|p| std::fs::read(p).unwrap())
            .collect();
        std::fs::write(out, text).unwrap();
    }
    let origin = Nginx::start(&[("index.html", "from nginx\n")]);
    let defaults = haproxy_defaults("http", "2s", "10s");
    let cfg = |[req, ign, part, old_]: [u16; 4]| {
        let verify = "http-request return status 200 content-type text/plain lf-string \"verify=%[ssl_c_verify] cn=%[ssl_c_s_dn(CN)]\"";
        format!(
            "{defaults}\
             frontend req\n  bind 127.0.0.1:{req} ssl crt {crts} ca-file {cas} verify required crl-file {both}\n\
             \x20 default_backend web\n\
             frontend ign\n  bind 127.0.0.1:{ign} ssl crt {crts} ca-file {cas} verify optional crl-file {both} crt-ignore-err all ca-ignore-err all\n\
             \x20 {verify}\n\
             frontend part\n  bind 127.0.0.1:{part} ssl crt {crts} ca-file {cas} verify optional crl-file {inter_crl} crt-ignore-err all ca-ignore-err all\n\
             \x20 {verify}\n\
             frontend old\n  bind 127.0.0.1:{old_} ssl crt {crts} ca-file {cas} verify optional crl-file {old} crt-ignore-err all ca-ignore-err all\n\
             \x20 {verify}\n\
             backend web\n  server n 127.0.0.1:{n}\n",
            crts = pki.crts(),
            cas = cas.display(),
            both = both.display(),
            old = old.display(),
            n = origin.port,
        )
    };
    let theirs = [free_port(), free_port(), free_port(), free_port()];
    let _h = Haproxy::start(&cfg(theirs), &theirs);
    let ours = [free_port(), free_port(), free_port(), free_port()];
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(dir.path(), "haproxy.cfg", &cfg(ours));
    let lb = Ringlb::start_file(dir, f, &[]);
    let get = |port: u16, cert: &(String, String), tls12: bool| {
        let args = client_cert_curl_args(&pki, port, "/index.html", Some(cert), tls12);
        curl(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let clients = [
        ("alice", &alice),
        ("bob", &bob),
        ("carol", &carol),
        ("dave", &dave),
        ("mallory", &mallory),
    ];
    for tls12 in [false, true] {
        for (who, cert) in clients {
            for (name, (theirs, ours)) in ["req", "ign", "part", "old"]
                .iter()
                .zip(theirs.iter().zip(ours))
            {
                let want = get(*theirs, cert, tls12);
                let got = get(ours, cert, tls12);
                eprintln!("{name} {who} tls1.2={tls12}: haproxy {want:?}, ringlb {got:?}");
                assert_eq!(got, want, "{name} {who} tls1.2 {tls12}\n{}", lb.output());
            }
        }
    }
    // The values themselves, not only their agreement.
    let [req, ign, part, old] = ours;
    for (who, cert) in clients {
        let (code, out) = get(req, cert, false);
        match who {
            "alice" | "carol" => assert_eq!((code, out.as_str()), (0, "from nginx\n 200"), "{who}"),
            _ => assert_ne!(code, 0, "{who}: {out}"),
        }
        let want = match who {
            "alice" | "carol" => "0",
            "bob" | "dave" => "23",
            _ => "3",
        };
        assert_eq!(
            get(ign, cert, false),
            (0, format!("verify={want} cn={who} 200"))
        );
    }
    assert_eq!(
        get(part, &carol, false),
        (0, "verify=3 cn=carol 200".into())
    );
    assert_eq!(
        get(old, &alice, false),
        (0, "verify=12 cn=alice 200".into())
    );
}

/// `server ... ssl verify required ca-file CA crl-file CRL`: an HTTPS nginx
/// whose certificate (a.test) the list revokes gets no request (503), the same
/// nginx behind a list revoking another certificate answers, in ringlb as in
/// haproxy.
#[test]
fn revoked_server_certificates_are_refused_as_by_haproxy() {
    if !require(&["openssl", "curl", "haproxy", "nginx"]) {
        return;
    }
    let pki = Pki::new();
    let d = pki.dir.path().to_path_buf();
    let revokes_a = pki.crl("revokes-a", &["1-a"]);
    let revokes_b = pki.crl("revokes-b", &["2-b"]);
    let tls = Nginx::start_with(
        &[("index.html", "from https nginx\n")],
        move |port, root| {
            format!(
            "listen 127.0.0.1:{port} ssl; ssl_certificate {crt}; ssl_certificate_key {key}; root {root};",
            crt = d.join("1-a.crt").display(),
            key = d.join("1-a.key").display(),
            root = root.display()
        )
        },
    );
    let defaults = haproxy_defaults("http", "2s", "10s");
    let cfg = |revoked: u16, fine: u16| {
        format!(
            "{defaults}\
             listen revoked\n  bind 127.0.0.1:{revoked}\n  server n 127.0.0.1:{n} ssl verify required ca-file {ca} crl-file {revokes_a} sni str(a.test)\n\
             listen fine\n  bind 127.0.0.1:{fine}\n  server n 127.0.0.1:{n} ssl verify required ca-file {ca} crl-file {revokes_b} sni str(a.test)\n",
            n = tls.port,
            ca = pki.ca(),
        )
    };
    let (hrevoked, hfine) = (free_port(), free_port());
    let _h = Haproxy::start(&cfg(hrevoked, hfine), &[hrevoked, hfine]);
    let (revoked, fine) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(dir.path(), "haproxy.cfg", &cfg(revoked, fine));
    let lb = Ringlb::start_file(dir, f, &[]);
    let status = |port: u16| {
        let url = format!("http://127.0.0.1:{port}/index.html");
        curl(&["-s", "-o", "/dev/null", "-w", "%{http_code}", &url]).1
    };
    assert_eq!(status(hrevoked), "503");
    assert_eq!(status(hfine), "200");
    assert_eq!(status(revoked), "503", "{}", lb.output());
    assert_eq!(status(fine), "200", "{}", lb.output());
    let mut text = String::new();
    assert!(
        wait_until(std::time::Duration::from_secs(5), || {
            text = lb.output();
            text.contains("revoked/n: SSL handshake failure") && text.contains("Revoked")
        }),
        "{text}"
    );
}

/// A missing `crl-file`, or one with no CRL in it, is a config error naming
/// the file at the line that gave it, on a bind and on a server line.
#[test]
fn bad_crl_files_are_config_errors_at_their_line() {
    if !require(&["openssl"]) {
        return;
    }
    let pki = Pki::new();
    let d = pki.dir.path();
    let missing = d.join("missing.pem").display().to_string();
    let no_crl = pki.ca(); // a certificate, no CRL
    let ca = pki.ca();
    for (file, why) in [
        (&missing, "No such file"),
        (&no_crl, "no certificate revocation list"),
    ] {
        for (line, section) in [
            (
                7,
                format!(
                    "listen l\n  bind 127.0.0.1:1 ssl crt {} ca-file {ca} verify required crl-file {file}\n  server n 127.0.0.1:2\n",
                    pki.crts()
                ),
            ),
            (
                8,
                format!(
                    "listen l\n  bind 127.0.0.1:1\n  server n 127.0.0.1:2 ssl verify required ca-file {ca} crl-file {file}\n"
                ),
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let f = write_file(
                dir.path(),
                "bad.cfg",
                &format!("{}{section}", haproxy_defaults("http", "2s", "10s")),
            );
            let (code, _, err) = ringlb_cmd(&["check", "-f", f.to_str().unwrap()]);
            assert_eq!(code, 1, "{err}");
            assert!(
                err.contains(&format!("bad.cfg:{line}:"))
                    && err.contains(&format!("crl-file {file}: "))
                    && err.contains(why),
                "{err}"
            );
        }
    }
}
