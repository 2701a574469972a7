//! Talking to the daemon: HTTP calls ([`api`]), WebSockets ([`ws`]), and the data a page keeps
//! current from the daemon's event feed ([`live`]).

pub mod api;
pub mod live;
pub mod ws;
