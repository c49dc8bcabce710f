//! The HTTP API: routing, authorisation, request parsing and responses.
//!
//! [`app`] builds the router; tests drive it without a socket (`tower::ServiceExt::oneshot`)
//! and through a real listening server. Paths under `/v2/` are parsed from the raw URI by
//! [`crate::routes`], never by the router, so `%2F` in a role name stays part of the name.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use vouch_tuf::reference::Gun;

use crate::auth::{Action, Authorizer, Denied, Target};
use crate::error::AppError;
use crate::routes::{self, FileRef, Route, RouteError};
use crate::service::Service;
use crate::store::StoredFile;
use crate::validate::Upload;

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    service: Arc<Service>,
    auth: Arc<Authorizer>,
    max_body_bytes: usize,
}

impl AppState {
    /// State over a service and an authorizer.
    pub fn new(service: Service, auth: Authorizer, max_body_bytes: usize) -> Self {
        AppState {
            service: Arc::new(service),
            auth: Arc::new(auth),
            max_body_bytes,
        }
    }
}

/// The router.
pub fn app(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::internal(format!("blocking task failed: {e}")))?
}

async fn readyz(State(st): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let svc = st.service.clone();
    blocking(move || {
        svc.store().ping().map_err(|e| {
            tracing::warn!(error = %e, "storage not reachable");
            AppError::Unavailable {
                message: "storage is not reachable".into(),
            }
        })
    })
    .await?;
    Ok(Json(json!({"status": "ready"})))
}

fn authorize(
    st: &AppState,
    headers: &HeaderMap,
    target: Target<'_>,
    action: Action,
) -> Result<(), AppError> {
    let authz = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match st.auth.authorize(authz, target, action) {
        Ok(_) => Ok(()),
        Err(Denied::Unauthenticated { scope, reason }) => Err(AppError::Unauthorized {
            message: format!("authentication required: {reason}"),
            challenge: st.auth.challenge(&scope),
        }),
        Err(Denied::Forbidden { scope }) => Err(AppError::Forbidden {
            message: format!("the token does not grant {scope}"),
        }),
    }
}

async fn dispatch(State(st): State<AppState>, req: Request) -> Response {
    match handle(st, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(st: AppState, req: Request) -> Result<Response, AppError> {
    let route = match routes::parse(req.uri().path()) {
        Ok(r) => r,
        Err(RouteError::NotFound) => {
            return Err(AppError::not_found(format!(
                "no such path: {}",
                req.uri().path()
            )))
        }
        Err(RouteError::InvalidGun(m)) => return Err(AppError::bad_request("NAME_INVALID", m)),
        Err(RouteError::InvalidFile(m)) => {
            return Err(AppError::bad_request(
                "NAME_INVALID",
                format!("invalid file name {m}"),
            ))
        }
    };
    let method = req.method().clone();
    let headers = req.headers().clone();
    match (route, method) {
        (Route::Base, Method::GET) => Ok(Json(json!({})).into_response()),
        (Route::Changefeed(gun), Method::GET) => {
            let target = gun.as_ref().map_or(Target::All, Target::Gun);
            authorize(&st, &headers, target, Action::Pull)?;
            let Query(q) = Query::<ChangefeedQuery>::try_from_uri(req.uri()).map_err(|e| {
                AppError::bad_request("INVALID_PARAMETER", format!("changefeed query: {e}"))
            })?;
            changefeed(&st, gun, q).await
        }
        (Route::Repository(gun), Method::POST) => {
            authorize(&st, &headers, Target::Gun(&gun), Action::Push)?;
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(n) = declared.filter(|n| *n > st.max_body_bytes as u64) {
                drain(req.into_body()).await;
                return Err(AppError::TooLarge {
                    message: format!(
                        "request body of {n} bytes exceeds the limit of {} bytes",
                        st.max_body_bytes
                    ),
                });
            }
            let uploads = read_uploads(&st, req).await?;
            let svc = st.service.clone();
            blocking(move || svc.publish(&gun, uploads)).await?;
            Ok(Json(json!({})).into_response())
        }
        (Route::Repository(gun), Method::DELETE) => {
            authorize(&st, &headers, Target::Gun(&gun), Action::Delete)?;
            let svc = st.service.clone();
            let g = gun.clone();
            if blocking(move || svc.delete(&g)).await? {
                Ok(Json(json!({})).into_response())
            } else {
                Err(AppError::not_found(format!("{gun} has no trust data")))
            }
        }
        (Route::File(gun, FileRef::Key(role)), Method::GET) => {
            authorize(&st, &headers, Target::Gun(&gun), Action::Pull)?;
            let svc = st.service.clone();
            let (g, r) = (gun.clone(), role.clone());
            if let Some(k) = blocking(move || svc.key(&g, &r, false)).await? {
                return Ok(key_response(k));
            }
            // Creating a key is a write: it needs push, even when pulls are anonymous.
            authorize(&st, &headers, Target::Gun(&gun), Action::Push)?;
            let svc = st.service.clone();
            let k = blocking(move || svc.key(&gun, &role, true)).await?;
            k.map(key_response)
                .ok_or_else(|| AppError::internal("online key missing after creation"))
        }
        (Route::File(gun, FileRef::Key(role)), Method::POST) => {
            authorize(&st, &headers, Target::Gun(&gun), Action::Push)?;
            let svc = st.service.clone();
            let k = blocking(move || svc.rotate_key(&gun, &role)).await?;
            Ok(key_response(k))
        }
        (Route::File(gun, file), Method::GET | Method::HEAD) => {
            authorize(&st, &headers, Target::Gun(&gun), Action::Pull)?;
            let svc = st.service.clone();
            let immutable = !matches!(file, FileRef::Current(_));
            let f = blocking(move || svc.file(&gun, &file)).await?;
            Ok(file_response(f, immutable, &headers))
        }
        _ => Err(AppError::MethodNotAllowed),
    }
}

/// Reads and discards a refused body (up to a bound), so that the client, which is still
/// sending, gets to read the error response instead of a reset connection.
async fn drain(body: Body) {
    use http_body_util::BodyExt;
    const DRAIN_LIMIT: usize = 64 << 20;
    let mut body = body;
    let mut seen = 0usize;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while seen < DRAIN_LIMIT {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => seen += frame.data_ref().map_or(0, |d| d.len()),
            _ => break,
        }
    }
}

fn key_response(public_json: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        public_json,
    )
        .into_response()
}

fn file_response(f: StoredFile, immutable: bool, req_headers: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", f.sha256);
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else if f.role == "timestamp" {
        "no-cache"
    } else {
        "public, max-age=30, must-revalidate"
    };
    let not_modified = req_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(f.bytes))
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

/// Reads the multipart body: one part per role, field `files`, file name = role name.
async fn read_uploads(st: &AppState, req: Request) -> Result<Vec<Upload>, AppError> {
    let mut mp = Multipart::from_request(req, st).await.map_err(|e| {
        AppError::bad_request(
            "MALFORMED_REQUEST",
            format!("expected multipart/form-data: {}", e.body_text()),
        )
    })?;
    let mut uploads = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e)),
        };
        if field.name() != Some("files") {
            return Err(AppError::bad_request(
                "MALFORMED_REQUEST",
                format!(
                    "unexpected form field {:?}: every part must be named \"files\"",
                    field.name().unwrap_or("")
                ),
            ));
        }
        let role = field
            .file_name()
            .map(str::to_owned)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                AppError::bad_request(
                    "MALFORMED_REQUEST",
                    "a part has no file name: it must be the role name",
                )
            })?;
        let role = role.strip_suffix(".json").unwrap_or(&role).to_owned();
        let bytes = field.bytes().await.map_err(multipart_error)?;
        uploads.push(Upload {
            role,
            bytes: bytes.to_vec(),
        });
    }
    Ok(uploads)
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::TooLarge {
            message: "request body exceeds the configured limit".into(),
        }
    } else {
        AppError::bad_request(
            "MALFORMED_REQUEST",
            format!("malformed multipart body: {}", e.body_text()),
        )
    }
}

#[derive(Debug, Deserialize)]
struct ChangefeedQuery {
    #[serde(default)]
    change_id: Option<String>,
    #[serde(default)]
    records: Option<i64>,
}

async fn changefeed(
    st: &AppState,
    gun: Option<Gun>,
    q: ChangefeedQuery,
) -> Result<Response, AppError> {
    let change_id: i64 = match q.change_id.as_deref() {
        None | Some("") => 0,
        Some(s) => s.parse().map_err(|_| {
            AppError::bad_request(
                "INVALID_PARAMETER",
                format!("change_id {s:?} is not an integer"),
            )
        })?,
    };
    let records = q.records.unwrap_or(100);
    if records == 0 {
        return Err(AppError::bad_request(
            "INVALID_PARAMETER",
            "records must not be 0",
        ));
    }
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
