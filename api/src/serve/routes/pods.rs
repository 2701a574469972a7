//! Pod routes: the list of the CRI face's pods with their containers (the dashboard's Pods page).

use axum::extract::State;
use axum::Json;
use berth_types::pod::PodSummary;

use crate::serve::error::ApiError;
use crate::serve::ops::{pods, Caller};
use crate::serve::state::AppState;

#[utoipa::path(get, path = "/api/v1/pods", tag = "pods", responses((status = 200, body = Vec<PodSummary>)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn list_pods(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<PodSummary>>, ApiError> {
    Ok(Json(pods::summaries(&state, &caller).await?))
}
