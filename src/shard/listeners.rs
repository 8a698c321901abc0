//! Which listening socket each shard accepts on: one `SO_REUSEPORT` socket per
//! shard per bind address of every enabled frontend, bound here or taken over
//! from a predecessor (`crate::handover`).
//!
//! A different shard count across a reload loses nothing because no taken-over
//! socket is ever closed while its address is still configured: the new process
//! adopts every socket of the address's group. Shard `i` takes the socket the
//! predecessor numbered `i`; sockets numbered `n` and beyond (the predecessor
//! had more shards) are accepted on too, by shard `index % n`, so their queues
//! keep being served; missing ones (it had fewer) are bound fresh and join the
//! group. A group therefore never shrinks below the largest shard count it has
//! seen — a few idle sockets — rather than closing one and relying on
//! `net.ipv4.tcp_migrate_req=1` to move its queue. Sockets for addresses no
//! longer configured are closed: nobody asked for those connections.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::{ShardListeners, StartError};
use crate::config::model::Config;
use crate::handover::Held;
use crate::sys::socket::{NonLocal, Socket};

/// What binding did, for the log: sockets adopted, bound fresh, and closed
/// (taken over for an address no longer configured).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BindReport {
    pub adopted: usize,
    pub bound: usize,
    pub closed: usize,
}

/// Binds one `SO_REUSEPORT` socket per shard per bind address of every enabled
/// frontend.
pub fn bind_all(config: &Config, shards: usize) -> Result<Vec<ShardListeners>, StartError> {
    bind_adopting(config, shards, Vec::new()).map(|(l, _)| l)
}

/// As [`bind_all`], taking the sockets in `inherited` first (see the module
/// comment for how they are spread over `shards`).
pub fn bind_adopting(
    config: &Config,
    shards: usize,
    inherited: Vec<Held>,
) -> Result<(Vec<ShardListeners>, BindReport), StartError> {
    let mut by_addr: HashMap<SocketAddr, BTreeMap<usize, Socket>> = HashMap::new();
    let mut report = BindReport::default();
    for h in inherited {
        // Two sockets claiming one index: keep the first, close the other (its
        // queue is still in the group only if someone else holds it).
        match by_addr.entry(h.addr).or_default().entry(h.index) {
            std::collections::btree_map::Entry::Occupied(_) => report.closed += 1,
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(h.sock);
            }
        }
    }
    let mut out: Vec<ShardListeners> = (0..shards).map(|_| Vec::new()).collect();
    for (fi, fe) in config.frontends.iter().enumerate() {
        // Stats frontends are served by the control shard.
        if fe.disabled || fe.stats.is_some() {
            continue;
        }
        for (bi, bind) in fe.binds.iter().enumerate() {
            let mut group = by_addr.remove(&bind.addr).unwrap_or_default();
            for (shard, list) in out.iter_mut().enumerate() {
                let sock = match group.remove(&shard) {
                    Some(s) => {
                        report.adopted += 1;
                        s
                    }
                    None => {
                        report.bound += 1;
                        let nonlocal = if bind.transparent {
                            NonLocal::Transparent
                        } else if bind.freebind {
                            NonLocal::Freebind
                        } else {
                            NonLocal::No
                        };
                        Socket::listen_with(&bind.addr, bind.backlog, nonlocal).map_err(|err| {
                            StartError::Bind {
                                frontend: fe.name.clone(),
                                addr: bind.addr,
                                err,
                            }
                        })?
                    }
                };
                list.push((fi, bi, sock));
            }
            for (index, sock) in group {
                report.adopted += 1;
                out[index % shards].push((fi, bi, sock));
            }
        }
    }
    report.closed += by_addr.values().map(|g| g.len()).sum::<usize>();
    Ok((out, report))
}

/// Copies of every listener in `listeners`, numbered as a successor expects:
/// per address, shard `i`'s first socket is `i`, extra ones follow from `n`.
pub fn exposed(listeners: &[ShardListeners]) -> std::io::Result<Vec<Held>> {
    let n = listeners.len();
    let mut out = Vec::new();
    let mut extra: HashMap<SocketAddr, usize> = HashMap::new();
    for (shard, list) in listeners.iter().enumerate() {
        let mut seen: Vec<SocketAddr> = Vec::new();
        for (_, _, sock) in list {
            let addr = sock.local_addr()?;
            let index = if seen.contains(&addr) {
                let e = extra.entry(addr).or_insert(n);
                *e += 1;
                *e - 1
            } else {
                seen.push(addr);
                shard
            };
            out.push(Held {
                addr,
                index,
                sock: sock.try_clone()?,
            });
        }
    }
    Ok(out)
}
