//! Configuration: TOML (and later haproxy.cfg) in, a validated [`model::Config`] out.
//! Nothing here opens a socket; a config that fails here changes nothing.

pub mod model;
