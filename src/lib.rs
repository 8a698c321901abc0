//! ringlb: a load balancer and reverse proxy for Linux on per-core io_uring shards.
//!
//! The crate is laid out as `../DESIGN.md` describes: `config` turns files into a
//! resolved [`config::model::Config`]; `shard` runs one data shard per core on its
//! own `ring`; `l4` forwards bytes; `balance` picks servers; `control` checks health
//! and broadcasts server state; `log` writes session lines without blocking a shard;
//! `kernel` compares what a config needs with what the kernel allows; `state` is
//! what the control and data shards share (they never import each other).
//! `unsafe` code lives only in `ring` and `sys`: denied here, allowed there.

#![deny(unsafe_code)]

pub mod balance;
pub mod config;
pub mod control;
pub mod demo;
pub mod handover;
pub mod http;
pub mod kernel;
pub mod l4;
pub mod log;
pub mod master;
#[allow(unsafe_code)]
pub mod ring;
pub mod run;
pub mod shard;
pub mod state;
#[allow(unsafe_code)]
pub mod sys;
pub mod tls;
