//! Docker Engine API: build routes.

use axum::Router;

use super::DockerState;

pub fn routes() -> Router<DockerState> {
    Router::new()
}
