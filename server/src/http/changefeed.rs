//! The changefeed: `GET /v2/_trust/changefeed` (every repository, which needs a wildcard
//! scope) and `GET /v2/{gun}/_trust/changefeed`, a page of publishes and deletions from
//! `change_id`, `records` of them (negative: backwards).

use axum::extract::Query;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use vouch_tuf::reference::Gun;

use super::auth::authorize;
use super::{blocking, AppState};
use crate::auth::{Action, Target};
use crate::error::AppError;

/// A page of the changefeed of `gun`, or of every repository.
pub(super) async fn get(
    st: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    gun: Option<Gun>,
) -> Result<Response, AppError> {
    let target = gun.as_ref().map_or(Target::All, Target::Gun);
    authorize(st, headers, target, Action::Pull)?;
    let page = parse_query(uri)?;
    changefeed(st, gun, page).await
}

/// The query string: `change_id` (0 or absent: the start, or the newest backwards) and
/// `records` (default 100).
#[derive(Debug, Deserialize)]
struct ChangefeedQuery {
    #[serde(default)]
    change_id: Option<String>,
    #[serde(default)]
    records: Option<i64>,
}

/// A page of the changefeed as the query string asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Page {
    /// Where to start: 0 for the start (or, backwards, the newest change).
    pub(crate) change_id: i64,
    /// How many records: never 0; negative reads backwards.
    pub(crate) records: i64,
}

/// Reads `uri`'s query string (`change_id`, `records`) as a [`Page`], or the `400` it is
/// answered with. Pure: nothing but the URI is read.
pub(crate) fn parse_query(uri: &Uri) -> Result<Page, AppError> {
    let Query(q) = Query::<ChangefeedQuery>::try_from_uri(uri).map_err(|e| {
        AppError::bad_request(
            vouch_tuf::api::code::INVALID_PARAMETER,
            format!("changefeed query: {e}"),
        )
    })?;
    let change_id: i64 = match q.change_id.as_deref() {
        None | Some("") => 0,
        Some(s) => s.parse().map_err(|_| {
            AppError::bad_request(
                vouch_tuf::api::code::INVALID_PARAMETER,
                format!("change_id {s:?} is not an integer"),
            )
        })?,
    };
    let records = q.records.unwrap_or(100);
    if records == 0 {
        return Err(AppError::bad_request(
            vouch_tuf::api::code::INVALID_PARAMETER,
            "records must not be 0",
        ));
    }
    Ok(Page { change_id, records })
}

async fn changefeed(st: &AppState, gun: Option<Gun>, page: Page) -> Result<Response, AppError> {
    let Page { change_id, records } = page;
    let svc = st.service.clone();
    let changes = blocking(move || svc.changes(gun.as_ref(), change_id, records)).await?;
    let records: Vec<_> = changes
        .iter()
        .map(|c| {
            json!({
                "ID": c.id.to_string(),
                "CreatedAt": c.created_at.to_string(),
                "GUN": c.gun,
                "Version": c.version,
                "SHA256": c.sha256,
                "Category": c.category.as_str(),
            })
        })
        .collect();
    Ok(Json(json!({"count": records.len(), "records": records})).into_response())
}
