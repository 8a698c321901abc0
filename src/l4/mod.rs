//! TCP forwarding: the pump that moves bytes both ways between a client and a
//! server socket, zero-copy through pooled pipes for bulk traffic and through
//! pooled buffers for small messages, with half-close and reset propagation.
//! Never blocks: every socket is non-blocking and readiness comes from the ring.

mod pools;
pub mod proxy;
mod pump;
mod ringpump;

pub use pools::{BufferPool, PipePool};
pub use pump::{KillSwitch, Pools, Pump, PumpEnd, PumpLimits, PumpResult, Transport};
pub use ringpump::{RingOutcome, RingPump, RingResult, MAX_QUEUED};
