//! The shard as rules see it ([`ShardCounters`]: `nbsrv`, `be_conn`,
//! `fe_conn`...) and what `balance uri|url_param|hdr|source` hashes for a
//! request. Which backend and server a request goes to is `super::rules`.

use std::cell::Cell;
use std::net::IpAddr;
use std::time::SystemTime;

use super::super::ctx::ShardCtx;
use crate::balance::HashKey;
use crate::config::model::{Backend, Balance};
use crate::http::acl::Counters;
use crate::http::hashkey::{hdr_key, uri_key, url_param};
use crate::http::head::RequestHead;

/// The shard's state as the fetches of a rule see it (`nbsrv`, `be_conn`,
/// `fe_conn`, `date`, `rand`, `fe_name`).
pub(crate) struct ShardCounters<'a> {
    pub ctx: &'a ShardCtx,
    pub frontend: usize,
    pub rng: Cell<u64>,
}

impl<'a> ShardCounters<'a> {
    /// The fetches' view for one client's session; `rand` is seeded by its
    /// port.
    pub fn new(ctx: &'a ShardCtx, frontend: usize, client: std::net::SocketAddr) -> Self {
        ShardCounters {
            ctx,
            frontend,
            rng: Cell::new(0x9e37_79b9_7f4a_7c15 ^ client.port() as u64),
        }
    }
}

impl Counters for ShardCounters<'_> {
    fn nbsrv(&self, backend: usize) -> u32 {
        // HAProxy's usable servers: the active ones, else the backups.
        let active = self.ctx.usable_active_servers(backend);
        if active > 0 {
            return active as u32;
        }
        let cfg = &self.ctx.config.backends[backend];
        (0..cfg.servers.len())
            .filter(|&i| cfg.servers[i].backup && self.ctx.replica(backend, i).usable())
            .count() as u32
    }
    fn be_conn(&self, backend: usize) -> u32 {
        self.ctx.shared.backends[backend].active.get()
    }
    fn fe_conn(&self) -> u32 {
        self.ctx.shared.frontends[self.frontend].active.get()
    }
    fn unix_time(&self) -> u64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
    fn random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }
    fn frontend_name(&self) -> Option<&str> {
        Some(&self.ctx.config.frontends[self.frontend].name)
    }
}

/// What `balance` hashes for a request, kept past the request head's buffer
/// (a retry or redispatch hashes it again).
pub(super) enum OwnedKey {
    None,
    Addr(IpAddr),
    Bytes(Vec<u8>),
}

impl OwnedKey {
    pub(super) fn key(&self) -> HashKey<'_> {
        match self {
            OwnedKey::None => HashKey::None,
            OwnedKey::Addr(ip) => HashKey::Addr(*ip),
            OwnedKey::Bytes(b) => HashKey::Bytes(b),
        }
    }
}

/// What `balance` hashes for this request.
pub(super) fn hash_key(be: &Backend, head: &RequestHead, buf: &[u8], client: IpAddr) -> OwnedKey {
    let target = head.target.get(buf);
    let key = match be.balance {
        Balance::Source => return OwnedKey::Addr(client),
        Balance::Uri => Some(uri_key(target, &be.balance_opts.uri)),
        Balance::UrlParam => be
            .balance_arg
            .as_deref()
            .and_then(|n| url_param(target, n.as_bytes())),
        Balance::Hdr => be
            .balance_arg
            .as_deref()
            .and_then(|n| hdr_key(&head.headers, buf, n, be.balance_opts.use_domain_only)),
        _ => None,
    };
    key.map_or(OwnedKey::None, |k| OwnedKey::Bytes(k.to_vec()))
}
