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
    /// `ssl_fc_alpn`: the protocol ALPN settled on, if any.
    pub alpn: Option<Box<str>>,
    /// `ssl_fc_is_resumed`: the session was resumed (a ticket).
    pub resumed: bool,
    /// The certificate the client sent (`ssl_c_used`), if it sent one.
    pub client_cert: Option<ClientCert>,
}

/// A client certificate the handshake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientCert {
    /// `ssl_c_verify`: 0, or the OpenSSL error an ignore list let through.
    pub verify: i64,
    /// `ssl_c_s_dn`, `ssl_c_i_dn`: OpenSSL's one-line form, and the
    /// attributes one by one (`ssl_c_s_dn(CN)`).
    pub subject: Box<str>,
    pub issuer: Box<str>,
    pub subject_dn: super::der::Dn,
    pub issuer_dn: super::der::Dn,
}

impl ClientCert {
    /// From the chain the client sent, leaf first.
    pub fn new(chain: &[rustls::pki_types::CertificateDer<'_>], verify: i64) -> Option<ClientCert> {
        let (subject_dn, issuer_dn) = super::der::subject_issuer(chain.first()?)?;
        Some(ClientCert {
            verify,
            subject: super::der::oneline(&subject_dn).into(),
            issuer: super::der::oneline(&issuer_dn).into(),
            subject_dn,
            issuer_dn,
        })
    }
}

/// `ssl_c_s_dn(ENTRY[,OCC])`: the OCCth value of attribute ENTRY (1: the
/// first from the start; -1: the last), as HAProxy.
pub fn dn_entry<'a>(dn: &'a [(String, String)], entry: &str, occ: i32) -> Option<&'a str> {
    let mut it = dn
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(entry))
        .map(|(_, v)| v.as_str());
    match occ {
        0 | 1 => it.next(),
        n if n > 0 => it.nth(n as usize - 1),
        n => {
            let all: Vec<&str> = it.collect();
            all.len()
                .checked_sub(n.unsigned_abs() as usize)
                .map(|i| all[i])
        }
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
        for s in crate::tls::provider().cipher_suites {
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

    #[test]
    fn dn_entries_by_occurrence() {
        let dn: Vec<(String, String)> = [("C", "FR"), ("OU", "a"), ("OU", "b"), ("CN", "x")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(dn_entry(&dn, "cn", 0), Some("x"));
        assert_eq!(dn_entry(&dn, "OU", 1), Some("a"));
        assert_eq!(dn_entry(&dn, "OU", 2), Some("b"));
        assert_eq!(dn_entry(&dn, "OU", -1), Some("b"));
        assert_eq!(dn_entry(&dn, "OU", -2), Some("a"));
        assert_eq!(dn_entry(&dn, "OU", 3), None);
        assert_eq!(dn_entry(&dn, "O", 0), None);
    }
}
