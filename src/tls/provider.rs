//! The process' crypto provider: the one place that names it. Every rustls
//! config ringlb builds (binds, connections to servers, checks) and every test
//! and bench client takes its provider and ticket encrypter from here, so
//! switching providers is a change to this file and to Cargo.toml.
//!
//! `aws-lc-rs`, not `ring`: its RSA signatures are much faster (docs/tls.md,
//! "Crypto provider", has the figures). `ring` stays a dependency for the
//! `tls-ticket-keys` AEAD in [`super::tickets`].

use std::sync::Arc;

use rustls::crypto::aws_lc_rs as chosen;
use rustls::crypto::CryptoProvider;
use rustls::server::ProducesTickets;

/// The provider's defaults: its cipher suites, key exchange groups and
/// signature algorithms, in its order of preference.
pub fn provider() -> CryptoProvider {
    chosen::default_provider()
}

/// A fresh ticket encrypter of the provider's (AEAD-sealed stateless tickets,
/// keys rotated every 6 hours).
pub fn new_ticketer() -> Result<Arc<dyn ProducesTickets>, rustls::Error> {
    chosen::Ticketer::new()
}
