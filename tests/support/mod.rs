//! Test support shared by every integration test: ephemeral ports, starting ringlb
//! with a config and waiting for its readiness line, and (in `servers`) starting
//! the real servers users run — nginx, redis-server, PostgreSQL — on loopback.
#![allow(dead_code)]

pub mod servers;
