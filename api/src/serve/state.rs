//! What every handler and operation works with. A leaf: it names the stores and the engine,
//! and nothing of the routes or operations that use it.

use std::path::PathBuf;

use berth_engine::Engine;

use super::auth::store::AuthStore;
use super::events::EventLog;
use super::history::Audit;

/// JSON request bodies larger than this are refused with 413. Streamed bodies (import, load,
/// build) are not limited: they are read as streams, not buffered.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// The daemon's shared state.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub events: EventLog,
    pub root: PathBuf,
    pub run_dir: PathBuf,
    /// Users, teams, tokens, sessions and ownership.
    pub auth: AuthStore,
    /// The audit log of mutating calls and exec sessions.
    pub audit: Audit,
}
