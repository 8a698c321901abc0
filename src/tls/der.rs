//! Just enough DER to read what a certificate file check needs from an X.509
//! certificate: its DNS names (subjectAltName, else the subject's CN) for SNI,
//! and its notAfter for the expiry warning. Anything unexpected is `None`; the
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
}
