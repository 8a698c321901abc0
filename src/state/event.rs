//! Server state events: what the control shard broadcasts to every data shard,
//! which applies them, in order, to its replica (`state::replica::HealthReplica::apply`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    Up,
    Down,
    Maint,
    Drain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    pub backend: usize,
    pub server: usize,
    pub state: ServerState,
    /// A new weight, when the event changes it.
    pub weight: Option<u32>,
}
