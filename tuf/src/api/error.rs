//! The server's error body, in the registry's shape:
//! `{"errors":[{"code":"…","message":"…","detail":…}]}`.
//!
//! The server writes it with [`ErrorBody::encode`]; clients read it with
//! [`ErrorBody::decode`]. `detail` is `null`, or an object naming the role and the failed
//! check of a rejected update (`{"role":"targets","check":"threshold"}`); the codes the
//! server uses are the constants in [`code`]. The written form is compact, with object keys
//! sorted (`code`, `detail`, `message`).

use thiserror::Error;

use crate::json::{self, Map, Value};

/// The error codes the server answers with.
pub mod code {
    /// 400: an update's metadata failed a check (`detail` names the role and the check).
    pub const METADATA_INVALID: &str = "METADATA_INVALID";
    /// 400: a GUN, role or file name is malformed.
    pub const NAME_INVALID: &str = "NAME_INVALID";
    /// 400: a query parameter is malformed.
    pub const INVALID_PARAMETER: &str = "INVALID_PARAMETER";
    /// 400: the request body is malformed (e.g. the multipart form).
    pub const MALFORMED_REQUEST: &str = "MALFORMED_REQUEST";
    /// 401: no token, or the token was refused (with a `WWW-Authenticate` challenge).
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    /// 403: the token does not grant the action.
    pub const DENIED: &str = "DENIED";
    /// 404.
    pub const METADATA_NOT_FOUND: &str = "METADATA_NOT_FOUND";
    /// 405: the path exists, the method does not.
    pub const UNSUPPORTED: &str = "UNSUPPORTED";
    /// 408: the request body was not received in time.
    pub const TIMEOUT: &str = "TIMEOUT";
    /// 409: someone published first.
    pub const VERSION_CONFLICT: &str = "VERSION_CONFLICT";
    /// 409: the proposal is no longer open (published, withdrawn, stale or expired); the
    /// message says which and why.
    pub const PROPOSAL_CLOSED: &str = "PROPOSAL_CLOSED";
    /// 409: the repository already has as many open proposals as the server allows.
    pub const PROPOSAL_LIMIT: &str = "PROPOSAL_LIMIT";
    /// 413.
    pub const SIZE_INVALID: &str = "SIZE_INVALID";
    /// 503: storage is not reachable.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    /// 500: the cause is logged by the server, never returned.
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
}

/// A whole error body: the list of errors (the server sends exactly one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// The errors, most important first.
    pub errors: Vec<ApiError>,
}

/// One error of an [`ErrorBody`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiError {
    /// Machine-readable code, one of [`code`] (another server may send others).
    pub code: String,
    /// What was wrong, for people.
    pub message: String,
    /// Which role and which check, for a rejected update; `None` is written as `null`.
    pub detail: Option<ErrorDetail>,
}

/// The structured `detail` of an error: both members are optional (`{}` is a detail with
/// neither).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorDetail {
    /// The role whose metadata was rejected.
    pub role: Option<String>,
    /// The check it failed (`threshold`, `version`, …).
    pub check: Option<String>,
}

/// A body that is not an error body of this shape.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ErrorBodyError {
    /// Not JSON.
    #[error("the error body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not `{"errors":[{…}]}`.
    #[error("the error body is not of the form {{\"errors\":[…]}}: {0}")]
    Shape(&'static str),
}

impl ApiError {
    /// An error without detail.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            code: code.into(),
            message: message.into(),
            detail: None,
        }
    }

    /// `code: message`, how clients quote what the server said.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.code, self.message)
    }

    fn to_value(&self) -> Value {
        let detail = match &self.detail {
            None => Value::Null,
            Some(d) => {
                let mut m = Map::new();
                if let Some(role) = &d.role {
                    m.insert("role".into(), Value::from(role.as_str()));
                }
                if let Some(check) = &d.check {
                    m.insert("check".into(), Value::from(check.as_str()));
                }
                Value::from(m)
            }
        };
        let mut m = Map::new();
        m.insert("code".into(), Value::from(self.code.as_str()));
        m.insert("message".into(), Value::from(self.message.as_str()));
        m.insert("detail".into(), detail);
        Value::from(m)
    }

    fn from_value(v: &Value) -> Result<Self, ErrorBodyError> {
        let m = v
            .as_object()
            .ok_or(ErrorBodyError::Shape("an error is not an object"))?;
        let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let detail = m.get("detail").and_then(Value::as_object).map(|d| {
            let member = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_owned);
            ErrorDetail {
                role: member("role"),
                check: member("check"),
            }
        });
        Ok(ApiError {
            code: text("code"),
            message: text("message"),
            detail,
        })
    }
}

impl ErrorDetail {
    /// The detail of a rejected update of `role` that failed `check`.
    pub fn rejected(role: impl Into<String>, check: impl Into<String>) -> Self {
        ErrorDetail {
            role: Some(role.into()),
            check: Some(check.into()),
        }
    }
}

impl From<ApiError> for ErrorBody {
    fn from(e: ApiError) -> Self {
        ErrorBody { errors: vec![e] }
    }
}

impl ErrorBody {
    /// The body as the server sends it.
    ///
    /// ```
    /// use vouch_tuf::api::{code, ApiError, ErrorBody, ErrorDetail};
    /// let mut e = ApiError::new(code::METADATA_INVALID, "targets: too few signatures");
    /// e.detail = Some(ErrorDetail::rejected("targets", "threshold"));
    /// assert_eq!(
    ///     ErrorBody::from(e).encode(),
    ///     br#"{"errors":[{"code":"METADATA_INVALID","detail":{"check":"threshold","role":"targets"},"message":"targets: too few signatures"}]}"#
    /// );
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let errors = self
            .errors
            .iter()
            .map(ApiError::to_value)
            .collect::<Vec<_>>();
        let mut m = Map::new();
        m.insert("errors".into(), Value::from(errors));
        json::to_json(&Value::from(m))
    }

    /// Reads a body the server sent. Lenient where it costs nothing: a missing or non-text
    /// `code` or `message` reads as empty, and a `detail` that is not an object as `None`.
    pub fn decode(bytes: &[u8]) -> Result<Self, ErrorBodyError> {
        let v = json::parse(bytes).map_err(|e| ErrorBodyError::NotJson(e.to_string()))?;
        let items = v
            .as_object()
            .and_then(|m| m.get("errors"))
            .and_then(Value::as_array)
            .ok_or(ErrorBodyError::Shape("no \"errors\" array"))?;
        let errors = items
            .iter()
            .map(ApiError::from_value)
            .collect::<Result<_, _>>()?;
        Ok(ErrorBody { errors })
    }

    /// The first error, if any.
    pub fn first(&self) -> Option<&ApiError> {
        self.errors.first()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bodies_round_trip() {
        let details = [
            None,
            Some(ErrorDetail::default()),
            Some(ErrorDetail::rejected("targets/releases", "version")),
            Some(ErrorDetail {
                role: Some("root".into()),
                check: None,
            }),
        ];
        for detail in details {
            let body = ErrorBody::from(ApiError {
                code: code::VERSION_CONFLICT.into(),
                message: "a \"quoted\" \\ message\nwith é".into(),
                detail,
            });
            let text = body.encode();
            assert_eq!(ErrorBody::decode(&text).unwrap(), body, "{text:?}");
        }
    }

    #[test]
    fn the_written_form_is_the_registry_shape() {
        assert_eq!(
            ErrorBody::from(ApiError::new(code::DENIED, "no push on org/app")).encode(),
            br#"{"errors":[{"code":"DENIED","detail":null,"message":"no push on org/app"}]}"#
        );
        let mut e = ApiError::new(code::VERSION_CONFLICT, "retry");
        e.detail = Some(ErrorDetail::default());
        assert_eq!(
            ErrorBody::from(e).encode(),
            br#"{"errors":[{"code":"VERSION_CONFLICT","detail":{},"message":"retry"}]}"#
        );
    }

    #[test]
    fn decoding_is_lenient_about_members_and_strict_about_shape() {
        let b = ErrorBody::decode(br#"{"errors":[{"message":"m","detail":[1]}],"x":1}"#).unwrap();
        assert_eq!(b.first().unwrap().summary(), ": m");
        assert_eq!(b.first().unwrap().detail, None);
        assert!(ErrorBody::decode(br#"{"errors":[]}"#)
            .unwrap()
            .first()
            .is_none());
        assert!(matches!(
            ErrorBody::decode(b"not json"),
            Err(ErrorBodyError::NotJson(_))
        ));
        assert!(matches!(
            ErrorBody::decode(br#"{"error":"x"}"#),
            Err(ErrorBodyError::Shape(_))
        ));
        assert!(matches!(
            ErrorBody::decode(br#"{"errors":["x"]}"#),
            Err(ErrorBodyError::Shape(_))
        ));
    }
}
