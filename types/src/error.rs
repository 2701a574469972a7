//! The body of every error answer.

use serde::{Deserialize, Serialize};

/// `{"message": "...", "field": "..."}`: what went wrong, in Docker's words where Docker has
/// them, and for a refused request body the field it is about, so that a form can show the
/// message under that field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub message: String,
    /// The request field the error is about, as the request names it (`name`, `image`,
    /// `ports`...); absent when it is about no one field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::ErrorBody;

    #[test]
    fn field_is_left_out_when_absent() {
        let plain = ErrorBody { message: "no such image: x".into(), field: None };
        assert_eq!(serde_json::to_string(&plain).unwrap(), r#"{"message":"no such image: x"}"#);
        let old: ErrorBody = serde_json::from_str(r#"{"message":"m"}"#).unwrap();
        assert_eq!(old, ErrorBody { message: "m".into(), field: None });
        let named = ErrorBody { message: "m".into(), field: Some("name".into()) };
        assert_eq!(serde_json::to_string(&named).unwrap(), r#"{"message":"m","field":"name"}"#);
    }
}
