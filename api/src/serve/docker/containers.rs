//! Docker Engine API: containers routes.

use axum::Router;

use super::DockerState;

pub fn routes() -> Router<DockerState> {
    Router::new()
}
