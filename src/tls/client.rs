//! TLS to servers: `server ... ssl [verify required|none] [ca-file FILE]
//! [crl-file FILE] [sni EXPR] [verifyhost NAME] [crt FILE]`, as HAProxy (`crt`: the
//! client certificate shown to a server that asks for one). With `verify required` (the
//! default, which needs `ca-file`) the chain must lead to the CA file, no
//! certificate of it may be revoked by the `crl-file`'s lists (see
//! [`super::crl`]), and the name is checked when one is given (`verifyhost`, else the SNI sent); HAProxy checks
//! no name when neither is set, and neither does ringlb. `sni str(NAME)` (or a
//! bare name) is fixed here; any other expression (`sni req.hdr(host)`) is
//! compiled with the backend's rules and computed per request in mode http.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// What a `server ... ssl` asked for, as written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientOptions {
    pub verify: Option<String>,
    pub ca_file: Option<String>,
    /// Revocation lists the server's chain is checked against.
    pub crl_file: Option<String>,
    pub sni: Option<String>,
    pub verifyhost: Option<String>,
    /// A PEM with the client certificate, its chain and its key.
    pub crt: Option<String>,
}

/// A server's TLS: the client config and the SNI to send.
pub struct ServerTls {
    pub options: ClientOptions,
    pub config: Arc<ClientConfig>,
    /// Sent as SNI; `None`: no SNI (the server's IP is used as the name, and
    /// not checked), unless `dynamic_sni`.
    pub sni: Option<ServerName<'static>>,
    /// `sni EXPR` is computed per request (the expression is `options.sni`).
    pub dynamic_sni: bool,
}

impl PartialEq for ServerTls {
    fn eq(&self, other: &Self) -> bool {
        self.options == other.options
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The fixed name of `sni str(NAME)` (or of a bare dotted host name,
/// `sni api.test`, which HAProxy would refuse as an unknown fetch); `None`
/// for an expression computed per request (`req.hdr(host)`, `ssl_fc_sni`).
pub fn fixed_sni(expr: &str) -> Option<&str> {
    match expr.strip_prefix("str(").and_then(|r| r.strip_suffix(')')) {
        Some(n) => Some(n),
        None if expr.contains('.')
            && !expr.contains(['(', ','])
            && ServerName::try_from(expr).is_ok() =>
        {
            Some(expr)
        }
        None => None,
    }
}

fn dns(key: &str, n: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(n.to_string()).map_err(|_| format!("{key} {n}: not a host name"))
}

pub fn build_client(o: ClientOptions) -> Result<ServerTls, String> {
    let provider = Arc::new(crate::tls::provider());
    let dynamic_sni = o.sni.as_deref().is_some_and(|e| fixed_sni(e).is_none());
    let sni_name = o
        .sni
        .as_deref()
        .and_then(fixed_sni)
        .map(|n| dns("sni", n))
        .transpose()?;
    let host = o
        .verifyhost
        .as_deref()
        .map(|n| dns("verifyhost", n))
        .transpose()?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("ssl: {e}"))?;
    // Read even with `verify none`, as HAProxy does: a bad file is an error.
    let crls = o
        .crl_file
        .as_deref()
        .map(|f| super::crl::load(std::path::Path::new(f)))
        .transpose()?;
    let verifier: Arc<dyn ServerCertVerifier> = match o.verify.as_deref().unwrap_or("required") {
        "none" => Arc::new(NoVerify(provider.clone())),
        "required" => {
            let Some(ca) = &o.ca_file else {
                return Err(
                    "ssl: verify required (the default) needs ca-file FILE; or set verify none"
                        .into(),
                );
            };
            let bytes = std::fs::read(ca).map_err(|e| format!("ca-file {ca}: {e}"))?;
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&bytes) {
                let c = c.map_err(|e| format!("ca-file {ca}: bad PEM: {e:?}"))?;
                roots
                    .add(c)
                    .map_err(|e| format!("ca-file {ca}: unusable certificate: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("ca-file {ca}: no certificate in this file"));
            }
            let mut b = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider);
            if let Some(crls) = crls {
                // HAProxy's depth (the whole chain) and unknown-status policy
                // (refused) are webpki's defaults; CRL expiry is not.
                b = b.with_crls(crls).enforce_revocation_expiration();
            }
            let inner = b.build().map_err(|e| format!("ca-file {ca}: {e}"))?;
            let check = match (host.clone().or(sni_name.clone()), dynamic_sni) {
                (Some(n), _) => Check::Name(n),
                (None, true) => Check::SentSni,
                (None, false) => Check::Nothing,
            };
            Arc::new(Verify { inner, check })
        }
        other => {
            return Err(format!(
            "verify {other}: expected required or none (optional applies to client certificates)"
        ))
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match &o.crt {
        None => builder.with_no_client_auth(),
        Some(f) => {
            let (chain, key) = client_cert(f)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("crt {f}: {e}"))?
        }
    };
    Ok(ServerTls {
        options: o,
        config: Arc::new(config),
        sni: sni_name,
        dynamic_sni,
    })
}

/// `crt FILE` on a server line: the certificate chain and key of one PEM.
fn client_cert(
    f: &str,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
    String,
> {
    let bytes = std::fs::read(f).map_err(|e| format!("crt {f}: {e}"))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("crt {f}: bad PEM: {e:?}"))?;
    if chain.is_empty() {
        return Err(format!("crt {f}: no certificate in this file"));
    }
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        format!("crt {f}: no private key in this file (PEM with certificate, chain and key)")
    })?;
    Ok((chain, key))
}

/// `verify required`: the chain must lead to the CA file; the name is checked
/// against `check` when there is one, else not at all (as HAProxy).
#[derive(Debug)]
struct Verify {
    inner: Arc<WebPkiServerVerifier>,
    check: Check,
}

/// Which name a server's certificate must carry.
#[derive(Debug)]
enum Check {
    /// `verifyhost`, or a fixed `sni`.
    Name(ServerName<'static>),
    /// The SNI computed for this connection, when one was sent (HAProxy
    /// checks the name it sent when `verifyhost` is not set).
    SentSni,
    Nothing,
}

impl ServerCertVerifier for Verify {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // No SNI sent: rustls was given the server's address as its name.
        let strict = match &self.check {
            Check::Name(_) => true,
            Check::SentSni => matches!(server_name, ServerName::DnsName(_)),
            Check::Nothing => false,
        };
        let name = match &self.check {
            Check::Name(n) => n,
            _ => server_name,
        };
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !strict => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `verify none`: any certificate, but the handshake's signatures are still
/// checked against it (the session is bound to whoever holds its key). Also
/// the bench's handshake client's verifier (its certificates are self-signed).
#[derive(Debug)]
pub struct NoVerify(pub Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let e = build_client(ClientOptions::default()).unwrap_err();
        assert!(e.contains("needs ca-file"), "{e}");
        let e = build_client(ClientOptions {
            verify: Some("optional".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("expected required or none"), "{e}");
        for (expr, fixed) in [
            ("req.hdr(host)", None),
            ("ssl_fc_sni", None),
            ("req.hdr(host),field(1,:)", None),
            ("str(api.test)", Some("api.test")),
            ("api.test", Some("api.test")),
        ] {
            assert_eq!(fixed_sni(expr), fixed, "{expr}");
        }
        let t = build_client(ClientOptions {
            verify: Some("none".into()),
            sni: Some("req.hdr(host)".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(t.dynamic_sni && t.sni.is_none());
        let t = build_client(ClientOptions {
            verify: Some("none".into()),
            sni: Some("str(api.test)".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(t.sni, Some(ServerName::try_from("api.test").unwrap()));
        let e = build_client(ClientOptions {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let e = build_client(ClientOptions {
            verify: Some("none".into()),
            crl_file: Some("/nonexistent/crl.pem".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.starts_with("crl-file /nonexistent/crl.pem: "), "{e}");
    }
}
