//! Errors as the API answers them: an HTTP status and `{"message": "..."}`, with `field` when
//! the error is about one field of the request (a form shows it there), and `exit_code` when a
//! command could not be run (`CommandError`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::ErrorKind;
use berth_types::{CommandError, ErrorBody};
use serde::de::DeserializeOwned;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// The request's field the error is about.
    pub field: Option<String>,
    /// The exit code of a command that could not be run.
    pub exit_code: Option<i32>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), field: None, exit_code: None }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The same error, about the request's `field`.
    pub fn with_field(mut self, field: &str) -> ApiError {
        self.field = Some(field.to_string());
        self
    }
}

impl From<berth_engine::Error> for ApiError {
    fn from(e: berth_engine::Error) -> ApiError {
        let status = match (&e, e.kind()) {
            (_, ErrorKind::NotFound) => StatusCode::NOT_FOUND,
            (_, ErrorKind::InvalidInput) => StatusCode::BAD_REQUEST,
            (_, ErrorKind::Conflict) => StatusCode::CONFLICT,
            (_, ErrorKind::Forbidden) => StatusCode::FORBIDDEN,
            // A registry that cannot be reached or fails is not the daemon's fault: the gateway's
            // status, as a proxy answers for its upstream.
            (berth_engine::Error::Registry { .. }, ErrorKind::Internal) => StatusCode::BAD_GATEWAY,
            (_, ErrorKind::Internal) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "engine error");
        }
        let exit_code = match &e {
            berth_engine::Error::CommandFailed { exit_code, .. } => Some(*exit_code),
            _ => None,
        };
        let field = match &e {
            berth_engine::Error::InvalidField { field, .. } => Some(field.to_string()),
            _ => None,
        };
        let message = match e {
            berth_engine::Error::CommandFailed { message, .. } => message,
            other => other.to_string(),
        };
        ApiError { status, message, field, exit_code }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self.exit_code {
            // A command that could not be run: its exit code, as `CommandError`.
            Some(exit_code) => {
                (self.status, Json(CommandError { message: self.message, exit_code })).into_response()
            }
            None => {
                (self.status, Json(ErrorBody { message: self.message, field: self.field })).into_response()
            }
        }
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
    ApiError::new(status, rejection.body_text())
}
