//! Authorisation of a request, as the handlers ask for it: the bearer token of its
//! `Authorization` header checked by [`crate::auth`] against the repository (or all of them)
//! and the action, and a refusal as the 401 (with its challenge) or 403 to answer.

use axum::http::{header, HeaderMap};

use super::AppState;
use crate::auth::{Action, Denied, Principal, Target};
use crate::error::AppError;

/// `Ok` when the request's token (or anonymous access) may do `action` on `target`: who the
/// caller is.
pub(super) fn authorize(
    st: &AppState,
    headers: &HeaderMap,
    target: Target<'_>,
    action: Action,
) -> Result<Principal, AppError> {
    let authz = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match st.auth.authorize(authz, target, action) {
        Ok(who) => Ok(who),
        Err(Denied::Unauthenticated {
            scope,
            reason,
            error,
        }) => Err(AppError::Unauthorized {
            message: format!("authentication required: {reason}"),
            challenge: st.auth.challenge(&scope, error),
        }),
        Err(Denied::InsufficientScope { scope }) => Err(AppError::Unauthorized {
            message: format!("the token does not grant {scope}"),
            challenge: st.auth.challenge(&scope, Some("insufficient_scope")),
        }),
        Err(Denied::Forbidden { scope }) => Err(AppError::Forbidden {
            message: format!("the token does not grant {scope}"),
        }),
    }
}
