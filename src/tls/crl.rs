//! `crl-file FILE`, on a bind (client certificates) and on a server line (the
//! server's certificate), as HAProxy: one PEM file with one or more `X509 CRL`
//! blocks, read when the configuration is resolved. No I/O after that.
//!
//! HAProxy sets OpenSSL's `X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL`
//! with a CRL file (`src/ssl_sock.c`, bind and server alike): every
//! certificate of the chain, not only the leaf, is looked up in a CRL from its
//! issuer, and a certificate with no such CRL fails (`X509_V_ERR_UNABLE_TO_GET_CRL`,
//! 3), as does an expired CRL (`X509_V_ERR_CRL_HAS_EXPIRED`, 12). webpki's
//! defaults are the same depth (the whole chain up to the trust anchor) and
//! the same unknown-status policy (an error); its default ignores `nextUpdate`,
//! so both verifiers turn `enforce_revocation_expiration` on.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateRevocationListDer;

/// The CRLs of a `crl-file`; an error names the file: missing or
/// unreadable, bad PEM, or no `X509 CRL` block in it.
pub fn load(path: &std::path::Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let f = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("crl-file {f}: {e}"))?;
    let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("crl-file {f}: bad PEM: {e:?}"))?;
    if crls.is_empty() {
        return Err(format!(
            "crl-file {f}: no certificate revocation list in this file (PEM \"X509 CRL\" blocks)"
        ));
    }
    Ok(crls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file() {
        let e = load(std::path::Path::new("/nonexistent/crl.pem")).unwrap_err();
        assert!(e.starts_with("crl-file /nonexistent/crl.pem: "), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("empty.pem");
        std::fs::write(&f, "not a CRL\n").unwrap();
        let e = load(&f).unwrap_err();
        assert!(e.contains("no certificate revocation list"), "{e}");
    }
}
