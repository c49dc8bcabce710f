//! The one mapping from server errors to HTTP responses.
//!
//! The layers below have errors of their own that know nothing of HTTP
//! ([`crate::service::ServiceError`], [`crate::store::StoreError`], [`crate::keys::KeyError`]);
//! each becomes an [`AppError`] here, and an [`AppError`] becomes a status, a code, a message
//! and a `detail`.
//!
//! Client errors say exactly what was wrong, in the registry's error shape
//! `{"errors":[{"code","message","detail"}]}`, written by [`vouch_tuf::api::ErrorBody`] (the
//! type clients decode it with) with the codes of [`vouch_tuf::api::code`]. Server errors
//! answer with a generic body and log their cause, so internals never leak to clients.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use vouch_tuf::api::{code, ApiError, ErrorBody, ErrorDetail};

/// An error as the HTTP layer reports it.
#[derive(Debug)]
pub enum AppError {
    /// 400 with a code, message and detail.
    BadRequest {
        /// Machine-readable code, e.g. `METADATA_INVALID`.
        code: &'static str,
        /// What was wrong.
        message: String,
        /// Structured detail (role, check).
        detail: Option<ErrorDetail>,
    },
    /// 401 with a `WWW-Authenticate` challenge.
    Unauthorized {
        /// Why.
        message: String,
        /// The challenge header value.
        challenge: String,
    },
    /// 403.
    Forbidden {
        /// The scope that was needed.
        message: String,
    },
    /// 404.
    NotFound {
        /// What was not found.
        message: String,
    },
    /// 405.
    MethodNotAllowed,
    /// 409: someone published first.
    Conflict {
        /// What conflicted.
        message: String,
        /// Structured detail.
        detail: Option<ErrorDetail>,
    },
    /// 409 with another code than `VERSION_CONFLICT`: a proposal closed, or the cap on open
    /// proposals reached.
    ConflictWith {
        /// The code, e.g. `PROPOSAL_CLOSED`.
        code: &'static str,
        /// What conflicted.
        message: String,
    },
    /// 413.
    TooLarge {
        /// What was too large.
        message: String,
    },
    /// 503 (storage unreachable).
    Unavailable {
        /// Why.
        message: String,
    },
    /// 500: the cause is logged, never returned.
    Internal(String),
}

impl AppError {
    /// A 400 for a malformed request.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        AppError::NotFound {
            message: message.into(),
        }
    }

    /// A 500 whose cause is logged.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        AppError::Internal(cause.to_string())
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "storage unavailable");
                AppError::Unavailable {
                    message: "storage is not reachable: retry later".into(),
                }
            }
            e => AppError::internal(e),
        }
    }
}

impl From<crate::keys::KeyError> for AppError {
    fn from(e: crate::keys::KeyError) -> Self {
        match e {
            crate::keys::KeyError::CreationLimit { .. } => AppError::Unavailable {
                message: e.to_string(),
            },
            crate::keys::KeyError::Store(e) => e.into(),
            e => AppError::internal(e),
        }
    }
}

impl From<crate::service::ServiceError> for AppError {
    fn from(e: crate::service::ServiceError) -> Self {
        use crate::service::ServiceError;
        use crate::validate::Rejection;
        match e {
            ServiceError::Rejected(Rejection::Invalid {
                role,
                check,
                message,
            }) => AppError::BadRequest {
                code: code::METADATA_INVALID,
                message: format!("{role}: {message}"),
                detail: Some(ErrorDetail::rejected(role.to_string(), check.as_str())),
            },
            ServiceError::Rejected(Rejection::Conflict { role, message }) => AppError::Conflict {
                message: format!("{role}: {message}"),
                detail: Some(ErrorDetail::rejected(role.to_string(), "version")),
            },
            e @ ServiceError::Contended => AppError::Conflict {
                message: e.to_string(),
                detail: Some(ErrorDetail::default()),
            },
            e @ ServiceError::TooLarge { .. } => AppError::TooLarge {
                message: e.to_string(),
            },
            e @ ServiceError::NameInvalid { .. } => {
                AppError::bad_request(code::NAME_INVALID, e.to_string())
            }
            e @ (ServiceError::NotFound { .. } | ServiceError::ProposalNotFound { .. }) => {
                AppError::not_found(e.to_string())
            }
            e @ ServiceError::ProposalClosed { .. } => AppError::ConflictWith {
                code: code::PROPOSAL_CLOSED,
                message: e.to_string(),
            },
            e @ ServiceError::ProposalLimit { .. } => AppError::ConflictWith {
                code: code::PROPOSAL_LIMIT,
                message: e.to_string(),
            },
            ServiceError::ProposalRequest(message) => {
                AppError::bad_request(code::MALFORMED_REQUEST, message)
            }
            ServiceError::Store(e) => e.into(),
            ServiceError::Key(e) => e.into(),
            ServiceError::Internal(cause) => AppError::Internal(cause),
        }
    }
}

/// A response with `status` and the error body of one error.
pub fn body(
    status: StatusCode,
    code: &str,
    message: &str,
    detail: Option<ErrorDetail>,
) -> Response {
    let error = ApiError {
        code: code.to_owned(),
        message: message.to_owned(),
        detail,
    };
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        ErrorBody::from(error).encode(),
    )
        .into_response()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::BadRequest {
                code,
                message,
                detail,
            } => body(StatusCode::BAD_REQUEST, code, &message, detail),
            AppError::Unauthorized { message, challenge } => {
                let mut r = body(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, &message, None);
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                r
            }
            AppError::Forbidden { message } => {
                body(StatusCode::FORBIDDEN, code::DENIED, &message, None)
            }
            AppError::NotFound { message } => body(
                StatusCode::NOT_FOUND,
                code::METADATA_NOT_FOUND,
                &message,
                None,
            ),
            AppError::MethodNotAllowed => body(
                StatusCode::METHOD_NOT_ALLOWED,
                code::UNSUPPORTED,
                "method not allowed on this path",
                None,
            ),
            AppError::Conflict { message, detail } => body(
                StatusCode::CONFLICT,
                code::VERSION_CONFLICT,
                &message,
                detail,
            ),
            AppError::ConflictWith { code, message } => {
                body(StatusCode::CONFLICT, code, &message, None)
            }
            AppError::TooLarge { message } => body(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::SIZE_INVALID,
                &message,
                None,
            ),
            AppError::Unavailable { message } => {
                let mut r = body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::UNAVAILABLE,
                    &message,
                    None,
                );
                // The HTTP layer replaces it with the configured value where it has one.
                r.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("1"),
                );
                r
            }
            AppError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code::INTERNAL_ERROR,
                    "internal server error",
                    None,
                )
            }
        }
    }
}
