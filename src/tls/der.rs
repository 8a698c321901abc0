//! Just enough DER to read what a certificate file check needs from an X.509
//! certificate: its DNS names (subjectAltName, else the subject's CN) for SNI,
//! its notAfter for the expiry warning, and its subject and issuer as
//! HAProxy's `ssl_c_s_dn`/`ssl_c_i_dn` print them (`/C=FR/O=Org/CN=name`). Anything unexpected is `None`; the
//! certificate itself is validated by rustls/webpki when it is used.

/// One TLV: (tag, contents, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&l0, mut b) = b.split_first()?;
    let len = if l0 < 0x80 {
        l0 as usize
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &x in &b[..n] {
            len = (len << 8) | x as usize;
        }
        b = &b[n..];
        len
    };
    if b.len() < len {
        return None;
    }
    Some((tag, &b[..len], &b[len..]))
}

/// All TLVs of a constructed value's contents.
fn items(mut b: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((t, v, rest)) = tlv(b) {
        out.push((t, v));
        b = rest;
    }
    out
}

const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

/// What a certificate check needs.
#[derive(Debug, Default, PartialEq)]
pub struct CertInfo {
    /// Lowercase DNS names (`*.example.com` kept as written).
    pub names: Vec<String>,
    /// notAfter as seconds since the epoch.
    pub not_after: Option<i64>,
}

pub fn cert_info(der: &[u8]) -> Option<CertInfo> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let fields = items(tbs);
    // [0] version is optional.
    let mut i = usize::from(fields.first()?.0 == 0xa0);
    i += 2; // serial, signature algorithm
    let _issuer = fields.get(i)?;
    let validity = fields.get(i + 1)?;
    let subject = fields.get(i + 2)?;
    let times = items(validity.1);
    let not_after = times.get(1).and_then(|(t, v)| time(*t, v));
    let mut names = Vec::new();
    for (tag, ext) in fields.iter().skip(i + 4) {
        if *tag != 0xa3 {
            continue;
        }
        let (_, exts, _) = tlv(ext)?;
        for (_, e) in items(exts) {
            let parts = items(e);
            if parts.first().map(|p| p.1) != Some(OID_SAN) {
                continue;
            }
            let (_, octets) = parts.last()?;
            let (_, gn, _) = tlv(octets)?;
            for (t, v) in items(gn) {
                if t == 0x82 {
                    names.push(String::from_utf8_lossy(v).to_ascii_lowercase());
                }
            }
        }
    }
    if names.is_empty() {
        for (_, rdn) in items(subject.1) {
            for (_, atv) in items(rdn) {
                let p = items(atv);
                if p.first().map(|x| x.1) == Some(OID_CN) {
                    if let Some((_, v)) = p.get(1) {
                        names.push(String::from_utf8_lossy(v).to_ascii_lowercase());
                    }
                }
            }
        }
    }
    Some(CertInfo { names, not_after })
}

/// A distinguished name: (short name, value) per attribute, in order.
pub type Dn = Vec<(String, String)>;

/// The subject's and the issuer's names.
pub fn subject_issuer(der: &[u8]) -> Option<(Dn, Dn)> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let fields = items(tbs);
    let i = usize::from(fields.first()?.0 == 0xa0) + 2;
    let issuer = fields.get(i)?;
    let subject = fields.get(i + 2)?;
    Some((dn(subject.1), dn(issuer.1)))
}

/// A Name's attributes: OpenSSL's short names, else the dotted OID.
fn dn(name: &[u8]) -> Dn {
    let mut out = Vec::new();
    for (_, rdn) in items(name) {
        for (_, atv) in items(rdn) {
            let p = items(atv);
            let (Some((_, oid)), Some((_, v))) = (p.first(), p.get(1)) else {
                continue;
            };
            let key = short_name(oid).map_or_else(|| dotted(oid), String::from);
            out.push((key, String::from_utf8_lossy(v).into_owned()));
        }
    }
    out
}

/// `/SN=value` per attribute, in order: what HAProxy's
/// `ssl_sock_get_dn_oneline` writes for `ssl_c_s_dn`.
pub fn oneline(dn: &Dn) -> String {
    let mut out = String::new();
    for (k, v) in dn {
        out.push('/');
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn short_name(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "street",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x55, 0x04, 0x0c] => "title",
        [0x55, 0x04, 0x2a] => "GN",
        [0x55, 0x04, 0x04] => "SN",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

fn dotted(oid: &[u8]) -> String {
    let mut arcs = Vec::new();
    let mut v: u64 = 0;
    for &b in oid {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(v);
            v = 0;
        }
    }
    let Some(&first) = arcs.first() else {
        return String::new();
    };
    let (a, b) = if first < 80 {
        (first / 40, first % 40)
    } else {
        (2, first - 80)
    };
    let mut s = format!("{a}.{b}");
    for x in &arcs[1..] {
        s.push_str(&format!(".{x}"));
    }
    s
}

/// UTCTime (0x17, YYMMDDHHMMSSZ) or GeneralizedTime (0x18, YYYYMMDDHHMMSSZ).
fn time(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s.strip_suffix('Z')?;
    let (y, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| rest.get(r)?.parse::<i64>().ok();
    let (mo, d, h, mi, se) = (n(0..2)?, n(2..4)?, n(4..6)?, n(6..8)?, n(8..10)?);
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        assert_eq!(time(0x17, b"491231235959Z"), Some(2524607999));
        assert_eq!(time(0x18, b"20380119031408Z"), Some(2147483648));
    }

    #[test]
    fn names_in_one_line() {
        use rustls::pki_types::pem::PemObject;
        let pem = include_str!("testdata/unit.pem");
        let der = rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let (s, i) = subject_issuer(&der).unwrap();
        let (s, i) = (oneline(&s), oneline(&i));
        assert!(s.starts_with('/') && s.contains("CN="), "{s}");
        assert!(i.starts_with('/'), "{i}");
        assert_eq!(
            dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            "1.2.840.113549"
        );
    }
}
