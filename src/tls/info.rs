//! What a finished handshake tells the rules and the logs, in HAProxy's words:
//! the SNI (`ssl_fc_sni`), the version (`ssl_fc_protocol`, `%sslv`:
//! `TLSv1.2`, `TLSv1.3`) and the suite under OpenSSL's name (`ssl_fc_cipher`,
//! `%sslc`: `TLS_AES_128_GCM_SHA256`, `ECDHE-ECDSA-AES128-GCM-SHA256`) and
//! the client's certificate (`ssl_c_*`), read once per connection. Plain
//! data: no I/O.

use rustls::{CipherSuite, ProtocolVersion};

/// A TLS connection's facts, computed once after the handshake.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsInfo {
    /// The server name the client sent, if any.
    pub sni: Option<Box<str>>,
    pub version: &'static str,
    pub cipher: &'static str,
    /// The certificate the client sent (`ssl_c_used`), if it sent one.
    pub client_cert: Option<ClientCert>,
}

/// A client certificate the handshake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientCert {
    /// `ssl_c_verify`: 0, or the OpenSSL error an ignore list let through.
    pub verify: i64,
    /// `ssl_c_s_dn`, `ssl_c_i_dn`: OpenSSL's one-line form.
    pub subject: Box<str>,
    pub issuer: Box<str>,
}

impl ClientCert {
    /// From the chain the client sent, leaf first.
    pub fn new(chain: &[rustls::pki_types::CertificateDer<'_>], verify: i64) -> Option<ClientCert> {
        let (subject, issuer) = super::der::subject_issuer(chain.first()?)?;
        Some(ClientCert {
            verify,
            subject: subject.into(),
            issuer: issuer.into(),
        })
    }
}

/// HAProxy's (OpenSSL's) name of a protocol version.
pub fn version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::TLSv1_3 => "TLSv1.3",
        ProtocolVersion::TLSv1_2 => "TLSv1.2",
        ProtocolVersion::TLSv1_1 => "TLSv1.1",
        ProtocolVersion::TLSv1_0 => "TLSv1",
        _ => "unknown",
    }
}

/// OpenSSL's name of a suite rustls can negotiate (the names `ciphers` and
/// `ciphersuites` take).
pub fn cipher_name(s: CipherSuite) -> &'static str {
    match s {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            "ECDHE-ECDSA-CHACHA20-POLY1305"
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_ones_suite_by_name_takes() {
        for s in rustls::crypto::ring::default_provider().cipher_suites {
            let n = cipher_name(s.suite());
            assert_ne!(n, "unknown", "{:?}", s.suite());
            assert_eq!(
                crate::tls::suite_by_name(n).map(|x| x.suite()),
                Some(s.suite())
            );
        }
        assert_eq!(version_name(ProtocolVersion::TLSv1_3), "TLSv1.3");
        assert_eq!(version_name(ProtocolVersion::TLSv1_2), "TLSv1.2");
    }
}
