//! Session-ticket encryption: `tls-ticket-keys FILE` on a bind, and the
//! ticket lifetime (`tune.ssl.lifetime`) for every ticket the process issues.
//!
//! [`FileKeys`] reads HAProxy's key file (one base64 key per line, 48 or 80
//! bytes decoded, at least three keys): the last three keys decrypt and the
//! next-to-last encrypts, so an operator rotates by appending a key and
//! reloading. Every ringlb process loading the same file seals and opens the
//! same tickets, so a client resumes on another process or after a reload.
//! The first 16 bytes of a key are its name (sent in clear in the ticket, to
//! pick the key); the rest is run through HKDF-SHA256 into an AES-256-GCM key.
//! The ticket's contents are rustls' own session encoding, so tickets are not
//! interchangeable with HAProxy's (OpenSSL's) even with the same file.
//!
//! [`Expiring`] wraps any ticket encrypter (the file's, or the process' own
//! rotating one) and seals the issue time, in milliseconds, with the session:
//! a ticket older than the lifetime does not decrypt. rustls would rather
//! bound a ticket's life by rolling keys, but keys read from a file do not
//! roll, and HAProxy (OpenSSL) also honours a session only for its timeout.
//!
//! Both run on data shards during handshakes: no I/O, no locks, no panics on
//! what a client sends.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;

/// Keys HAProxy uses from the file (its `TLS_TICKETS_NO` build default).
const KEYS_USED: usize = 3;
const NAME_LEN: usize = 16;
const TAG_LEN: usize = 16;
/// HKDF salt: a key from the file is never used as is.
const SALT: &[u8] = b"ringlb tls-ticket-keys v1";
/// How far ahead of this clock another process' may be for its tickets.
const CLOCK_SKEW_MS: u64 = 60_000;

/// One key of the file: its name and the AEAD key derived from the rest.
struct Key {
    name: [u8; NAME_LEN],
    aead: LessSafeKey,
}

/// The keys of a `tls-ticket-keys` file.
pub struct FileKeys {
    /// The last [`KEYS_USED`] keys of the file, in file order.
    keys: Vec<Key>,
    /// Index in `keys` of the one that encrypts (the next-to-last).
    encrypt: usize,
    rng: SystemRandom,
}

impl fmt::Debug for FileKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileKeys")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl FileKeys {
    /// Reads and checks a key file; errors name the file and the line.
    pub fn load(path: &Path) -> Result<FileKeys, String> {
        let f = path.display();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("tls-ticket-keys {f}: {e}"))?;
        FileKeys::parse(&f.to_string(), &text)
    }

    fn parse(file: &str, text: &str) -> Result<FileKeys, String> {
        let mut raw: Vec<Vec<u8>> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let at = format!("tls-ticket-keys {file}:{}", i + 1);
            let key = base64::engine::general_purpose::STANDARD
                .decode(line)
                .map_err(|e| format!("{at}: not a base64 key ({e})"))?;
            if key.len() != 48 && key.len() != 80 {
                return Err(format!(
                    "{at}: a key is 48 or 80 bytes (openssl rand 80 | openssl base64 -A), this one is {}",
                    key.len()
                ));
            }
            if let Some(first) = raw.first() {
                if first.len() != key.len() {
                    return Err(format!(
                        "{at}: a {}-byte key after {}-byte ones (the first key sets the length)",
                        key.len(),
                        first.len()
                    ));
                }
            }
            raw.push(key);
        }
        if raw.len() < KEYS_USED {
            return Err(format!(
                "tls-ticket-keys {file}: {} key(s), at least {KEYS_USED} needed (the last {KEYS_USED} decrypt, the next-to-last encrypts)",
                raw.len()
            ));
        }
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT);
        let keys = raw[raw.len() - KEYS_USED..]
            .iter()
            .map(|k| {
                let (name, secret) = k.split_at(NAME_LEN);
                let mut derived = [0u8; 32];
                salt.extract(secret)
                    .expand(&[name], &AES_256_GCM)
                    .and_then(|okm| okm.fill(&mut derived))
                    .map_err(|_| format!("tls-ticket-keys {file}: key derivation failed"))?;
                let aead = UnboundKey::new(&AES_256_GCM, &derived)
                    .map_err(|_| format!("tls-ticket-keys {file}: unusable key"))?;
                Ok(Key {
                    name: name.try_into().expect("split at NAME_LEN"),
                    aead: LessSafeKey::new(aead),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(FileKeys {
            keys,
            encrypt: KEYS_USED - 2,
            rng: SystemRandom::new(),
        })
    }
}

impl ProducesTickets for FileKeys {
    fn enabled(&self) -> bool {
        true
    }

    /// Not used: [`Expiring`] says the lifetime.
    fn lifetime(&self) -> u32 {
        0
    }

    /// `name || nonce || AES-256-GCM(plain) || tag`, the name as AAD.
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let key = &self.keys[self.encrypt];
        let mut nonce = [0u8; NONCE_LEN];
        // A random nonce: a counter would link a client's tickets.
        self.rng.fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(NAME_LEN + NONCE_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(&key.name);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = key
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&key.name),
                &mut out[NAME_LEN + NONCE_LEN..],
            )
            .ok()?;
        out.extend_from_slice(tag.as_ref());
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < NAME_LEN + NONCE_LEN + TAG_LEN {
            return None;
        }
        let (name, rest) = cipher.split_at(NAME_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        // The name is public (it travels in clear); the tag is what is checked.
        let key = self.keys.iter().find(|k| k.name == name)?;
        let mut buf = sealed.to_vec();
        let plain_len = key
            .aead
            .open_in_place(
                Nonce::try_assume_unique_for_key(nonce).ok()?,
                Aad::from(&key.name),
                &mut buf,
            )
            .ok()?
            .len();
        buf.truncate(plain_len);
        Some(buf)
    }
}

/// A ticket encrypter whose tickets are honoured for `lifetime` seconds.
#[derive(Debug)]
pub struct Expiring {
    inner: Arc<dyn ProducesTickets>,
    lifetime_secs: u32,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Expiring {
    pub fn new(inner: Arc<dyn ProducesTickets>, lifetime_secs: u32) -> Expiring {
        Expiring {
            inner,
            lifetime_secs,
        }
    }

    /// `plain` prefixed with when it was issued (milliseconds since the epoch).
    fn stamp(plain: &[u8], at_ms: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(8 + plain.len());
        v.extend_from_slice(&at_ms.to_be_bytes());
        v.extend_from_slice(plain);
        v
    }

    /// The session of a stamped ticket if it is younger than the lifetime.
    fn unstamp(&self, mut stamped: Vec<u8>, now_ms: u64) -> Option<Vec<u8>> {
        let issued = u64::from_be_bytes(stamped.get(..8)?.try_into().ok()?);
        // Processes on other machines may run a little ahead of this one.
        if issued > now_ms + CLOCK_SKEW_MS {
            return None;
        }
        let age = now_ms.saturating_sub(issued);
        if age >= u64::from(self.lifetime_secs) * 1000 {
            return None;
        }
        stamped.drain(..8);
        Some(stamped)
    }
}

impl ProducesTickets for Expiring {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }

    fn lifetime(&self) -> u32 {
        self.lifetime_secs
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.inner.encrypt(&Expiring::stamp(plain, now_ms()))
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.unstamp(self.inner.decrypt(cipher)?, now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_line(seed: u8, len: usize) -> String {
        let k: Vec<u8> = (0..len).map(|i| seed.wrapping_add(i as u8)).collect();
        base64::engine::general_purpose::STANDARD.encode(k)
    }

    fn file(seeds: &[u8], len: usize) -> String {
        seeds.iter().map(|&s| key_line(s, len) + "\n").collect()
    }

    #[test]
    fn the_same_file_opens_the_other_process_tickets() {
        let a = FileKeys::parse("k", &file(&[1, 2, 3], 80)).unwrap();
        let b = FileKeys::parse("k", &file(&[1, 2, 3], 80)).unwrap();
        let t = a.encrypt(b"session").unwrap();
        assert_eq!(b.decrypt(&t).unwrap(), b"session");
        let other = FileKeys::parse("k", &file(&[4, 5, 6], 80)).unwrap();
        assert!(other.decrypt(&t).is_none());
    }

    #[test]
    fn rotation_by_appending_a_key() {
        let old = FileKeys::parse("k", &file(&[1, 2, 3], 48)).unwrap();
        let new = FileKeys::parse("k", &file(&[1, 2, 3, 4], 48)).unwrap();
        // The old process encrypted with key 2, which the new one still has.
        let t = old.encrypt(b"s").unwrap();
        assert_eq!(new.decrypt(&t).unwrap(), b"s");
        // The new one encrypts with key 3, which the old one decrypts too.
        let t = new.encrypt(b"s").unwrap();
        assert_eq!(&t[..NAME_LEN], &key_bytes(3, 48)[..NAME_LEN]);
        assert_eq!(old.decrypt(&t).unwrap(), b"s");
        // Key 1 has left the ring of the new process.
        let gone = FileKeys::parse("k", &file(&[0, 1, 2], 48)).unwrap();
        assert!(new.decrypt(&gone.encrypt(b"s").unwrap()).is_none());
    }

    fn key_bytes(seed: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn tampered_or_short_tickets_do_not_open() {
        let k = FileKeys::parse("k", &file(&[1, 2, 3], 80)).unwrap();
        let mut t = k.encrypt(b"session").unwrap();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(k.decrypt(&t).is_none());
        assert!(k.decrypt(&t[..20]).is_none());
        assert!(k.decrypt(&[]).is_none());
    }

    #[test]
    fn bad_files_name_the_line() {
        let e = FileKeys::parse("keys", &file(&[1, 2], 80)).unwrap_err();
        assert!(e.contains("keys: 2 key(s), at least 3"), "{e}");
        let text = file(&[1], 80) + "not base64!\n" + &file(&[2], 80);
        let e = FileKeys::parse("keys", &text).unwrap_err();
        assert!(
            e.starts_with("tls-ticket-keys keys:2: not a base64 key"),
            "{e}"
        );
        let text = file(&[1, 2], 80) + &key_line(3, 64) + "\n";
        let e = FileKeys::parse("keys", &text).unwrap_err();
        assert!(e.contains("keys:3: a key is 48 or 80 bytes"), "{e}");
        let text = file(&[1, 2], 80) + &key_line(3, 48) + "\n";
        let e = FileKeys::parse("keys", &text).unwrap_err();
        assert!(
            e.contains("keys:3: a 48-byte key after 80-byte ones"),
            "{e}"
        );
        let e = FileKeys::load(Path::new("/nonexistent/keys")).unwrap_err();
        assert!(e.starts_with("tls-ticket-keys /nonexistent/keys: "), "{e}");
    }

    #[test]
    fn expired_tickets_do_not_open() {
        let inner: Arc<dyn ProducesTickets> =
            Arc::new(FileKeys::parse("k", &file(&[1, 2, 3], 80)).unwrap());
        let e = Expiring::new(inner, 2);
        assert_eq!(e.lifetime(), 2);
        let t = e.encrypt(b"session").unwrap();
        assert_eq!(e.decrypt(&t).unwrap(), b"session");
        let stamped = e.inner.decrypt(&t).unwrap();
        let issued = u64::from_be_bytes(stamped[..8].try_into().unwrap());
        assert!(e.unstamp(stamped.clone(), issued + 1999).is_some());
        assert!(e.unstamp(stamped.clone(), issued + 2000).is_none());
        // Another machine's clock a little ahead is fine; far ahead is not.
        assert!(e.unstamp(stamped.clone(), issued - 1).is_some());
        assert!(e.unstamp(stamped, issued - CLOCK_SKEW_MS - 1).is_none());
    }
}
