//! Docker Engine API: volumes routes.

use axum::Router;

use super::DockerState;

pub fn routes() -> Router<DockerState> {
    Router::new()
}
