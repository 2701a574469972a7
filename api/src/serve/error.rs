//! Errors as the API answers them: an HTTP status and `{"message": "..."}`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::ErrorKind;
use berth_types::ErrorBody;
use serde::de::DeserializeOwned;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into() }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: message.into() }
    }
}

impl From<berth_engine::Error> for ApiError {
    fn from(e: berth_engine::Error) -> ApiError {
        let status = match (&e, e.kind()) {
            (_, ErrorKind::NotFound) => StatusCode::NOT_FOUND,
            (_, ErrorKind::InvalidInput) => StatusCode::BAD_REQUEST,
            (_, ErrorKind::Conflict) => StatusCode::CONFLICT,
            // A registry that cannot be reached or fails is not the daemon's fault: the gateway's
            // status, as a proxy answers for its upstream.
            (berth_engine::Error::Registry { .. }, ErrorKind::Internal) => StatusCode::BAD_GATEWAY,
            (_, ErrorKind::Internal) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "engine error");
        }
        ApiError { status, message: e.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { message: self.message })).into_response()
    }
}

/// `axum::Json`, with its rejections (bad JSON, unknown fields, body over the limit → 413)
/// answered in the API's error shape instead of plain text. The body must be a JSON object:
/// serde's derived structs also take an array of the fields in order (`[]` for one whose
/// fields all have defaults), which no client means.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(v)) => v,
            Err(rejection) => return Err(json_rejection(rejection)),
        };
        if !value.is_object() {
            return Err(ApiError::bad_request(format!(
                "the request body must be a JSON object, not {}",
                json_kind(&value)
            )));
        }
        serde_json::from_value(value).map(ApiJson).map_err(|e| {
            // axum's words for the same failure, which clients and tests already know.
            ApiError::bad_request(format!("Failed to deserialize the JSON body into the target type: {e}"))
        })
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    // axum answers well-formed JSON of the wrong shape (an unknown field, a missing one) with
    // 422; the API's convention is 400 for every bad input.
    let status = match rejection {
        JsonRejection::JsonDataError(_) => StatusCode::BAD_REQUEST,
        ref other => other.status(),
    };
    ApiError { status, message: rejection.body_text() }
}
