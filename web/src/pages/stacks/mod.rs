//! Compose stacks: the list, `up` from a pasted compose file with its progress as it streams,
//! one stack's services with their containers and states, stop/start/restart/down, and the
//! stack's logs from every container merged over one WebSocket.

pub mod detail;
pub mod list;
mod logs;
mod progress;
mod up;

pub use detail::StackPage;
pub use list::Stacks;
