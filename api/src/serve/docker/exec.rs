//! Docker Engine API: exec instances (`POST /containers/{id}/exec`, `/exec/{id}/start`,
//! `/exec/{id}/resize`, `/exec/{id}/json`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;

use super::DockerState;

/// The exec instances made through the Docker API: Docker's exec is made first and started
/// later, and inspected after it ends for its exit code.
#[derive(Clone, Default)]
pub struct Execs(Arc<Mutex<HashMap<String, ()>>>);

pub fn routes() -> Router<DockerState> {
    Router::new()
}
