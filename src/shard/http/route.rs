//! Where a request goes: the backend (`route`, the hook `use_backend` rules
//! plug into) and what `balance uri|url_param|hdr|source` hashes for it.

use std::net::IpAddr;

use super::super::ctx::ShardCtx;
use crate::balance::HashKey;
use crate::config::model::{Backend, Balance};
use crate::http::hashkey::{hdr_key, uri_key, url_param, UriOptions};
use crate::http::head::RequestHead;

/// Which backend serves this request: the hook `use_backend` rules plug into.
/// Today every request goes to the frontend's default backend.
pub(super) fn route(
    ctx: &ShardCtx,
    frontend: usize,
    _head: &RequestHead,
    _buf: &[u8],
) -> Option<usize> {
    ctx.config.frontends[frontend].default_backend
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
        Balance::Uri => Some(uri_key(target, &UriOptions::default())),
        Balance::UrlParam => be
            .balance_arg
            .as_deref()
            .and_then(|n| url_param(target, n.as_bytes())),
        Balance::Hdr => be
            .balance_arg
            .as_deref()
            .and_then(|n| hdr_key(&head.headers, buf, n, false)),
        _ => None,
    };
    key.map_or(OwnedKey::None, |k| OwnedKey::Bytes(k.to_vec()))
}
