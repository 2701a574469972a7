//! Finding images in registries: search (Docker's `docker search`, and the Docker API's
//! `GET /images/search`) and the tags of a remote repository. Viewers may search; the daemon's
//! stored credentials for the registry are used, as for pulls.

use axum::http::StatusCode;
use berth_types::auth::Role;
use berth_types::{RemoteManifest, RemoteTag, SearchFilter, SearchResult};

use super::Caller;
use crate::serve::error::ApiError;
use crate::serve::state::AppState;

/// Docker's default and largest number of results.
pub const DEFAULT_LIMIT: usize = 25;
pub const MAX_LIMIT: usize = 100;

/// Up to `limit` repositories whose names contain `term` (`registry/term` searches that
/// registry), those `filter` lets through.
pub async fn search(
    state: &AppState,
    caller: &Caller,
    term: &str,
    limit: Option<usize>,
    filter: &SearchFilter,
) -> Result<Vec<SearchResult>, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!("limit {limit} is outside the range [1, {MAX_LIMIT}]")));
    }
    if term.trim().is_empty() {
        return Err(ApiError::bad_request("a search term is needed"));
    }
    // Filtering happens after the registry answers, so ask for the most it gives.
    let ask = if *filter == SearchFilter::default() { limit } else { MAX_LIMIT };
    let found = state.engine.search_images(term.trim(), ask, None).await?;
    Ok(found.into_iter().filter(|r| filter.matches(r)).take(limit).collect())
}

/// The tags of a remote repository with their digests, sizes and platforms.
pub async fn remote_tags(
    state: &AppState,
    caller: &Caller,
    repository: &str,
) -> Result<Vec<RemoteTag>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(state.engine.remote_tags(repository, None).await?)
}

/// A remote tag's manifest with each image's platform, config and layers. Viewers.
pub async fn remote_manifest(
    state: &AppState,
    caller: &Caller,
    reference: &str,
) -> Result<RemoteManifest, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(state.engine.remote_manifest(reference, None).await?)
}

/// Deletes a tag of a remote repository where the registry allows it, with the daemon's
/// credentials for it: operators, as other deletes.
pub async fn delete_remote_tag(state: &AppState, caller: &Caller, reference: &str) -> Result<(), ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        Ok(state.engine.delete_remote_tag(reference, None).await?)
    }
    .await;
    caller.audited(state, StatusCode::NO_CONTENT, result).await
}
