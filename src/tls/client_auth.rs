//! Client certificates on a bind, as HAProxy: `verify none` (the default: no
//! certificate asked for), `verify optional` (asked for; a client may send
//! none, but one it sends must verify), `verify required` (one that verifies
//! is needed), against the CAs of `ca-file`. `ca-ignore-err` / `crt-ignore-err`
//! (`all` or OpenSSL error numbers) let a certificate that fails with one of
//! those errors through; `ssl_c_verify` then says which error it was, in
//! OpenSSL's numbers (`X509_V_ERR_*`), as HAProxy reports them. With
//! `crl-file` the chain is also checked against its revocation lists
//! (see [`super::crl`]): a revoked certificate is error 23, which the
//! ignore lists may let through like any other.
//!
//! webpki reports no depth with an error, so the two ignore lists are one
//! here: an error ignored by either is ignored (HAProxy applies `ca-` to
//! errors above the leaf and `crt-` to the leaf's).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertRevocationListError, CertificateError, DigitallySignedStruct, DistinguishedName,
    RootCertStore, SignatureScheme,
};

/// Which verification errors a bind lets through.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum IgnoreErrors {
    #[default]
    None,
    All,
    Codes(Vec<i64>),
}

impl IgnoreErrors {
    /// `all`, or comma-separated OpenSSL error numbers.
    pub fn parse(key: &str, v: &str) -> Result<IgnoreErrors, String> {
        if v == "all" {
            return Ok(IgnoreErrors::All);
        }
        v.split(',')
            .map(|c| {
                c.trim().parse::<i64>().map_err(|_| {
                    format!("{key} {v}: expected all or OpenSSL error numbers (20,10)")
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(IgnoreErrors::Codes)
    }

    fn merge(self, other: IgnoreErrors) -> IgnoreErrors {
        match (self, other) {
            (IgnoreErrors::All, _) | (_, IgnoreErrors::All) => IgnoreErrors::All,
            (IgnoreErrors::None, o) | (o, IgnoreErrors::None) => o,
            (IgnoreErrors::Codes(mut a), IgnoreErrors::Codes(b)) => {
                a.extend(b);
                IgnoreErrors::Codes(a)
            }
        }
    }

    fn ignores(&self, code: i64) -> bool {
        match self {
            IgnoreErrors::None => false,
            IgnoreErrors::All => true,
            IgnoreErrors::Codes(c) => c.contains(&code),
        }
    }
}

/// OpenSSL's `X509_V_ERR_*` number for a verification failure.
pub fn openssl_code(e: &rustls::Error) -> i64 {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => 20, // unable to get local issuer certificate
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => 10,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => 9,
            CertificateError::BadSignature => 7,
            CertificateError::Revoked => 23,
            CertificateError::UnknownRevocationStatus => 3, // unable to get certificate CRL
            CertificateError::ExpiredRevocationList
            | CertificateError::ExpiredRevocationListContext { .. } => 12, // CRL has expired
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => 26,
            CertificateError::BadEncoding => 4, // unable to decode issuer public key
            _ => 1,                             // unspecified
        },
        rustls::Error::InvalidCertRevocationList(CertRevocationListError::BadSignature) => 8,
        _ => 1,
    }
}

/// OpenSSL's finer word for a chain that leads to no trusted CA, by what
/// the client sent (`build_chain`): its leaf alone, self-signed (18) or not
/// (21, "unable to verify the first certificate"); a chain ending in a
/// self-signed certificate (19); else 20 (checked against haproxy).
fn unknown_issuer_code(chain: &[CertificateDer<'_>]) -> i64 {
    let self_signed =
        |c: &CertificateDer<'_>| super::der::subject_issuer(c).is_some_and(|(s, i)| s == i);
    match chain {
        [leaf] if self_signed(leaf) => 18,
        [_] => 21,
        [.., last] if self_signed(last) => 19,
        _ => 20,
    }
}

/// A bind's client-certificate policy: the verifier rustls asks during the
/// handshake, and what `ssl_c_verify` reports after it.
#[derive(Debug)]
pub struct ClientAuth {
    inner: Arc<dyn ClientCertVerifier>,
    ignore: IgnoreErrors,
}

impl ClientAuth {
    /// `verify` (`optional` or `required`; `none` builds nothing) against
    /// the CAs of `ca_file`, and the revocation lists of `crl-file` if any.
    pub fn build(
        verify: &str,
        ca_file: Option<&std::path::Path>,
        crls: Option<Vec<CertificateRevocationListDer<'static>>>,
        ignore: (IgnoreErrors, IgnoreErrors),
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Option<Arc<ClientAuth>>, String> {
        let optional = match verify {
            "none" => return Ok(None),
            "optional" => true,
            "required" => false,
            other => {
                return Err(format!(
                    "verify {other}: expected none, optional or required"
                ))
            }
        };
        let Some(ca) = ca_file else {
            return Err(format!(
                "verify {verify} needs ca-file FILE (the CAs client certificates must lead to)"
            ));
        };
        let f = ca.display();
        let bytes = std::fs::read(ca).map_err(|e| format!("ca-file {f}: {e}"))?;
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&bytes) {
            let c = c.map_err(|e| format!("ca-file {f}: bad PEM: {e:?}"))?;
            roots
                .add(c)
                .map_err(|e| format!("ca-file {f}: unusable certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err(format!("ca-file {f}: no certificate in this file"));
        }
        let mut b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        if optional {
            b = b.allow_unauthenticated();
        }
        if let Some(crls) = crls {
            // HAProxy's depth (the whole chain) and unknown-status policy
            // (refused) are webpki's defaults; CRL expiry is not.
            b = b.with_crls(crls).enforce_revocation_expiration();
        }
        let inner = b.build().map_err(|e| format!("ca-file {f}: {e}"))?;
        Ok(Some(Arc::new(ClientAuth {
            inner,
            ignore: ignore.0.merge(ignore.1),
        })))
    }

    /// `ssl_c_verify` for a chain the handshake accepted: 0, unless an
    /// ignored error let it through (only then is it verified again).
    pub fn verify_code(&self, chain: &[CertificateDer<'_>]) -> i64 {
        let Some((leaf, rest)) = chain.split_first() else {
            return 0;
        };
        if self.ignore == IgnoreErrors::None {
            return 0;
        }
        match self.inner.verify_client_cert(leaf, rest, UnixTime::now()) {
            Ok(_) => 0,
            Err(e) => match openssl_code(&e) {
                20 => unknown_issuer_code(chain),
                c => c,
            },
        }
    }
}

/// The verifier rustls runs: webpki's, with the ignored errors let through.
#[derive(Debug)]
pub(super) struct Verifier(pub(super) Arc<ClientAuth>);

impl ClientCertVerifier for Verifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        self.0.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self
            .0
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Err(e) if self.0.ignore.ignores(openssl_code(&e)) => {
                Ok(ClientCertVerified::assertion())
            }
            r => r,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_lists_parse_and_merge() {
        assert_eq!(IgnoreErrors::parse("k", "all"), Ok(IgnoreErrors::All));
        assert_eq!(
            IgnoreErrors::parse("k", "20, 10"),
            Ok(IgnoreErrors::Codes(vec![20, 10]))
        );
        assert!(IgnoreErrors::parse("k", "x").is_err());
        let m = IgnoreErrors::Codes(vec![20]).merge(IgnoreErrors::Codes(vec![10]));
        assert!(m.ignores(10) && m.ignores(20) && !m.ignores(9));
        assert!(!IgnoreErrors::None.ignores(20));
        let e = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(openssl_code(&e), 20);
    }

    #[test]
    fn verify_needs_a_ca_file() {
        let p = Arc::new(crate::tls::provider());
        let none = (IgnoreErrors::None, IgnoreErrors::None);
        assert!(
            ClientAuth::build("none", None, None, none.clone(), p.clone())
                .unwrap()
                .is_none()
        );
        let e = ClientAuth::build("required", None, None, none.clone(), p.clone()).unwrap_err();
        assert!(e.contains("needs ca-file"), "{e}");
        let e = ClientAuth::build("sometimes", None, None, none, p).unwrap_err();
        assert!(e.contains("expected none, optional or required"), "{e}");
    }
}
