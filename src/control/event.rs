//! Server state events the control shard broadcasts to every data shard.
//! (Provisional shape; the control shard's own module owns it.)

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
    pub weight: Option<u32>,
}
