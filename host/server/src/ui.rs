//! The dashboard: a single page under `/app/` served from files embedded at build time
//! (`ui/`, see `build.rs`), and its sessions under `/ui/session`. The page itself calls the same
//! `/api/v1` everyone else does; the only thing the dashboard adds is how a browser
//! authenticates: signing in with a key opens a session held in an HttpOnly, SameSite=Strict
//! cookie, and changes carry the session's CSRF token ([`crate::auth`]).

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::api::keys::WhoAmI;
use crate::api::time;
use crate::auth::{CSRF_HEADER, SESSION_COOKIE, cookie, csrf_echoed, session};
use crate::error::ApiJson;
use crate::{ApiError, AppState};

mod assets {
    include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));
}

/// What every dashboard response says about itself: only this origin's scripts, styles and
/// connections; images also from `data:` and https (a partner's logo); never framed (no
/// clickjacking of the approve button).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: https:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/app/") }))
        .route("/app", get(|| async { Redirect::to("/app/") }))
        .route("/app/", get(|State(state): State<AppState>| file(state, String::new())))
        .route(
            "/app/{*path}",
            get(|State(state): State<AppState>, Path(path): Path<String>| file(state, path)),
        )
        .route("/ui/session", get(current).post(sign_in).delete(sign_out))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// A file under `assets/`, or the page itself for every other path (the page routes on the
/// client, so `/app/runs/42` is a link one can share and reload).
async fn file(state: AppState, path: String) -> Response {
    let (name, is_asset) = match path.strip_prefix("assets/") {
        Some(_) => (path.as_str(), true),
        None => ("index.html", false),
    };
    let mut headers = HeaderMap::new();
    let bytes: std::borrow::Cow<'static, [u8]> = match &state.ui_dir {
        // Working on the dashboard: read from disk on every request, so a reload shows an edit
        // without rebuilding the server. Only plain names under the directory are read.
        Some(dir) if !name.split('/').any(|c| c.is_empty() || c.starts_with('.')) => {
            match std::fs::read(dir.join(name)) {
                Ok(b) => b.into(),
                Err(_) => return ApiError::NotFound(format!("no file /app/{path}")).into_response(),
            }
        }
        Some(_) => return ApiError::NotFound(format!("no file /app/{path}")).into_response(),
        None => {
            let Some((_, bytes, etag)) = assets::ASSETS.iter().find(|(p, _, _)| *p == name) else {
                return ApiError::NotFound(format!("no file /app/{path}")).into_response();
            };
            headers.insert(header::ETAG, HeaderValue::from_static(etag));
            (*bytes).into()
        }
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    // Revalidated on every load: an upgraded server is picked up at once, and an unchanged file
    // costs a 304.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !is_asset {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    (headers, bytes).into_response()
}

/// Signing in: the key to sign in with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub key: String,
}

/// An open session: who it is, and the token its changes must carry in `X-CSRF-Token`.
#[derive(Debug, Serialize)]
pub struct SessionInfo {
    pub whoami: WhoAmI,
    pub csrf: String,
    pub expires_at: String,
}

impl From<mc_store::Session> for SessionInfo {
    fn from(s: mc_store::Session) -> SessionInfo {
        SessionInfo {
            whoami: s.principal.into(),
            csrf: s.csrf,
            expires_at: time(s.expires_at),
        }
    }
}

/// `Secure` when the request came over https (directly or through a proxy that says so); left
/// off on plain http so signing in works on `http://127.0.0.1`.
fn secure(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    if https { "; Secure" } else { "" }
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    let session = match state.store.sign_in(body.key.trim()).await? {
        Ok(s) => s,
        Err(mc_store::KeyRefusal::Unknown) => {
            return Err(ApiError::Unauthorized(
                "that key is not valid: check it, or ask for a new one".into(),
            ));
        }
        Err(mc_store::KeyRefusal::Expired(at)) => {
            return Err(ApiError::Unauthorized(format!("that key expired at {}", time(at))));
        }
    };
    let max_age = mc_store::SESSION_LIFETIME_MICROS / 1_000_000;
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        session.token,
        secure(&headers)
    );
    let mut response = Json(SessionInfo::from(session)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}

fn no_session() -> ApiError {
    ApiError::Unauthorized("not signed in".into())
}

async fn current(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<SessionInfo>, ApiError> {
    let token = cookie(&headers, SESSION_COOKIE).ok_or_else(no_session)?;
    Ok(Json(session(&state, token).await?.into()))
}

async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = cookie(&headers, SESSION_COOKIE).ok_or_else(no_session)?;
    let open = session(&state, token).await?;
    if !csrf_echoed(&headers, &open) {
        return Err(ApiError::Forbidden(format!(
            "missing or wrong CSRF token: signing out sends the session's token in `{CSRF_HEADER}`"
        )));
    }
    state.store.sign_out(token).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("mc_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}
