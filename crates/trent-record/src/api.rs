//! The HTTP layer: one router for the FHIR R4 REST API under `/fhir` and the sign-in
//! endpoints under `/auth`, authentication of every FHIR request, the purpose-of-use
//! headers, and errors as OperationOutcome.
//!
//! Why so thin: access decisions and audit happen in `crate::service` on every path; this
//! file only turns HTTP into a [`Ctx`] (who, why, when) and results back into HTTP. The
//! request log names the method, the route template (never ids or query values), the
//! status and the latency — no tokens, no person data.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use trent_access::auth::{
    ACCESS_TOKEN_TTL_SECONDS, OAuthError, Session, SessionPolicy, TokenRejection, needs_rehash,
    sha256_hex, verify_password_or_dummy,
};
use trent_access::throttle::{Throttle, ThrottlePolicy};
use trent_access::{Policy, Principal, Purpose, Role};

use crate::service::{Ctx, FhirError, capability_statement, parse_etag};
use crate::store::Store;

/// The clock the service reads (injectable for tests of expiry and throttling).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Service settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest request body accepted (413 beyond). Default 16 MiB.
    pub max_body_bytes: usize,
    /// Most resources a search may match before it must be narrowed (400 `too-costly`).
    pub search_cap: usize,
    /// Print one line per request to stderr (method, route template, status, latency).
    pub log_requests: bool,
    /// The public base URL of the FHIR endpoint (`https://record.example/fhir`); by default
    /// `http://<Host header>/fhir`.
    pub public_base: Option<String>,
    /// Access policy.
    pub policy: Policy,
    /// Session lifetimes.
    pub sessions: SessionPolicy,
    /// Login throttling.
    pub throttle: ThrottlePolicy,
    /// OAuth2 access-token lifetime.
    pub token_ttl: Duration,
    /// Where resources accepted from messages are exported as NDJSON for the lake's next
    /// ingest (`<store dir>/outgoing-lake`); `None` exports nothing.
    pub lake_export: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_body_bytes: 16 * 1024 * 1024,
            search_cap: 10_000,
            log_requests: true,
            public_base: None,
            policy: Policy::default(),
            sessions: SessionPolicy::default(),
            throttle: ThrottlePolicy::default(),
            token_ttl: Duration::seconds(ACCESS_TOKEN_TTL_SECONDS),
            lake_export: None,
        }
    }
}

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The record store.
    pub store: Store,
    /// Settings.
    pub config: Arc<Config>,
    throttle: Arc<Mutex<Throttle>>,
    clock: Clock,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// A state over a store with the given settings and the system clock.
    pub fn new(store: Store, config: Config) -> Self {
        AppState {
            store,
            throttle: Arc::new(Mutex::new(Throttle::new(config.throttle))),
            config: Arc::new(config),
            clock: Arc::new(Utc::now),
        }
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}

const FHIR_JSON: &str = "application/fhir+json";

fn fhir_response(status: u16, body: &Value) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    r
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let mut r = fhir_response(self.status, &self.outcome());
        if self.status == 401 {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"trent\""),
            );
        }
        r
    }
}

/// The router: `/fhir/…` and `/auth/…`.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/fhir/metadata", get(metadata))
        .route("/openapi.json", get(openapi))
        .route("/fhir/$process-message", post(process_message))
        .route("/record/worklist", post(worklist))
        .route("/fhir", post(bundle))
        .route("/fhir/", post(bundle))
        .route("/fhir/{res_type}", get(search).post(create))
        .route(
            "/fhir/{res_type}/{id}",
            get(read).put(update).delete(delete),
        )
        .route("/fhir/{res_type}/{id}/{op}", get(operation))
        .route("/record/carer-grants", get(list_grants).post(grant))
        .route("/record/carer-grants/{id}/revoke", post(revoke_grant))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/token", post(token))
        .fallback(|| async {
            FhirError::new(404, "not-found", "no such endpoint (see /fhir/metadata)")
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), log_requests))
        .with_state(state)
}

/// Serves the router on `addr` until `shutdown` completes (in-flight requests are
/// finished first). `trent serve` passes Ctrl-C: see [`ctrl_c`].
pub async fn serve(
    state: AppState,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(state, listener, shutdown).await
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn ctrl_c() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Serves the router on a bound listener until `shutdown` completes.
pub async fn serve_on(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn log_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.config.log_requests {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_string(), |m| m.as_str().to_string());
    let t = Instant::now();
    let resp = next.run(req).await;
    eprintln!(
        "trent-record {method} {route} {} {:.1} ms",
        resp.status().as_u16(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    resp
}

fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(b) = &state.config.public_base {
        return b.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("http://{host}/fhir")
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn unauthenticated(why: &str) -> FhirError {
    FhirError::new(401, "login", format!("authentication required: {why}"))
}

/// How stale a session's stored `last_seen` may get before a request writes it again: a
/// tenth of the idle timeout, at most a minute.
///
/// Why not every request: writing `last_seen` made every read a write transaction (on
/// PostgreSQL an fsync) besides its audit line. Storing it at most this often means an
/// idle session may end up to this much *earlier* than the idle timeout after the last
/// request — never later, so the timeout stays a guarantee.
fn touch_every(policy: &SessionPolicy) -> Duration {
    (policy.idle / 10).min(Duration::minutes(1))
}

/// Resolves the bearer token to a principal: a session (people) or an OAuth2 access token
/// (systems). Expired and idle sessions are removed.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Principal, FhirError> {
    let token =
        bearer(headers).ok_or_else(|| unauthenticated("send Authorization: Bearer <token>"))?;
    let hash = sha256_hex(token.as_bytes());
    let store = &state.store;
    if let Some((mut session, account)) = store.session_with_account(&hash).await? {
        let stored_seen = session.last_seen;
        match session.validate(token, now, &state.config.sessions) {
            Ok(()) => {
                if session.last_seen - stored_seen >= touch_every(&state.config.sessions) {
                    store.touch_session(&hash, session.last_seen).await?;
                }
                let Some(account) = account else {
                    return Err(unauthenticated("the account no longer exists"));
                };
                if account.disabled {
                    store.delete_session(&hash).await?;
                    return Err(unauthenticated("the account is disabled"));
                }
                return Ok(account.principal());
            }
            Err(e) => {
                store.delete_session(&hash).await?;
                return Err(unauthenticated(&e.to_string()));
            }
        }
    }
    if let Some(t) = store.token(&hash).await? {
        return match t.validate(token, now) {
            Ok(()) => Ok(t.principal()),
            Err(e) => Err(unauthenticated(&e.to_string())),
        };
    }
    Err(unauthenticated(&TokenRejection::Invalid.to_string()))
}

/// The purpose of use: `X-Purpose-Of-Use` (a trent purpose code), defaulting to the
/// role's usual purpose; break-glass takes its reason from `X-Break-Glass-Reason`.
fn purpose(headers: &HeaderMap, role: Role) -> Result<Purpose, FhirError> {
    let text = |name: &str| -> Result<Option<String>, FhirError> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v.to_str().map(|s| Some(s.trim().to_string())).map_err(|_| {
                FhirError::new(
                    400,
                    "invalid",
                    format!("header {name} must be visible ASCII"),
                )
            }),
        }
    };
    let code = text("x-purpose-of-use")?;
    let code = code.as_deref().unwrap_or(match role {
        Role::Citizen => "self-access",
        Role::Carer => "carer-access",
        Role::Clinician | Role::CaseManager | Role::System => "direct-care",
        Role::Analyst => "secondary",
        Role::Administrator => "administration",
    });
    Ok(match code {
        "direct-care" => Purpose::DirectCare,
        "self-access" => Purpose::SelfAccess,
        "carer-access" => Purpose::CarerAccess,
        "secondary" => Purpose::Secondary,
        "administration" => Purpose::Administration,
        "break-glass" => Purpose::BreakGlass {
            reason: text("x-break-glass-reason")?.unwrap_or_default(),
        },
        other => {
            return Err(FhirError::new(
                400,
                "invalid",
                format!(
                    "X-Purpose-Of-Use {other:?}: expected direct-care, break-glass, self-access, carer-access, secondary or administration"
                ),
            ));
        }
    })
}

async fn context(state: &AppState, headers: &HeaderMap) -> Result<Ctx, FhirError> {
    let now = state.now();
    let principal = authenticate(state, headers, now).await?;
    let purpose = purpose(headers, principal.role)?;
    Ok(Ctx {
        principal,
        purpose,
        now,
        base: base_url(state, headers),
        policy: state.config.policy,
    })
}

fn body_json(body: Result<Bytes, BytesRejection>, headers: &HeaderMap) -> Result<Value, FhirError> {
    let bytes = body.map_err(|e| {
        let status = e.status().as_u16();
        if status == 413 {
            FhirError::new(
                413,
                "too-costly",
                "request body is larger than this server accepts",
            )
        } else {
            FhirError::new(
                400,
                "structure",
                format!("request body could not be read: {e}"),
            )
        }
    })?;
    parse_json(&bytes, headers)
}

fn parse_json(bytes: &[u8], headers: &HeaderMap) -> Result<Value, FhirError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !matches!(mime, "application/fhir+json" | "application/json") {
            return Err(FhirError::new(
                415,
                "not-supported",
                format!("Content-Type {mime:?}: send application/fhir+json"),
            ));
        }
    }
    serde_json::from_slice(bytes).map_err(|e| {
        FhirError::new(
            400,
            "structure",
            format!(
                "malformed JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })
}

fn pairs(
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, FhirError> {
    q.map(|Query(p)| p)
        .map_err(|e| FhirError::new(400, "invalid", format!("query string: {e}")))
}

async fn openapi() -> Response {
    json_response(StatusCode::OK, crate::openapi::document())
}

/// `POST /fhir/$process-message`: a transfer of care (see `crate::messaging`).
async fn process_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let ctx = context(&state, &headers).await?;
    let body = body_json(body, &headers)?;
    let r = state
        .store
        .process_message(&ctx, body, state.config.lake_export.as_deref())
        .await?;
    Ok(fhir_response(r.status, &r.body))
}

/// `POST /record/worklist` `{"practice", "rows": [{"person", "score", "reasons"}]}`.
async fn worklist(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let ctx = context(&state, &headers).await?;
    let v = body_json(body, &headers)?;
    let (practice, rows) = crate::worklist::parse_request(&v)?;
    let out = state.store.worklist(&ctx, &practice, &rows).await?;
    Ok(json_response(StatusCode::OK, out))
}

async fn metadata(State(state): State<AppState>, headers: HeaderMap) -> Response {
    fhir_response(200, &capability_statement(&base_url(&state, &headers)))
}

async fn read(
    State(state): State<AppState>,
    Path((res_type, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let ctx = context(&state, &headers).await?;
    let r = state.store.read(&ctx, &res_type, &id).await?;
    let mut resp = fhir_response(200, &r.body);
    if let Ok(v) = HeaderValue::from_str(&format!("W/\"{}\"", r.version)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&r.last_modified) {
        resp.headers_mut().insert(header::LAST_MODIFIED, v);
    }
    Ok(resp)
}

async fn search(
    State(state): State<AppState>,
    Path(res_type): Path<String>,
    headers: HeaderMap,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, FhirError> {
    let ctx = context(&state, &headers).await?;
    let pairs = pairs(q)?;
    let b = state
        .store
        .search_fhir(&ctx, &res_type, &pairs, state.config.search_cap)
        .await?;
    Ok(fhir_response(200, &b))
}

async fn operation(
    State(state): State<AppState>,
    Path((res_type, id, op)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    if res_type != "Patient" || op != "$everything" {
        return Err(FhirError::new(
            404,
            "not-supported",
            format!("{res_type}/{{id}}/{op} is not supported (Patient/{{id}}/$everything is)"),
        ));
    }
    let ctx = context(&state, &headers).await?;
    Ok(fhir_response(
        200,
        &state.store.everything(&ctx, &id).await?,
    ))
}

/// `Prefer: return=minimal` (FHIR RESTful API, "Managing Return Content"): a write answers
/// with its status, `Location` and `ETag` only, and a transaction or batch response's
/// entries without their resources. Feeds posting large bundles do not need every resource
/// echoed back; the default stays `return=representation`.
fn prefers_minimal(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split([',', ';'])
                .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"))
        })
    })
}

fn write_response(
    state: &AppState,
    headers: &HeaderMap,
    r: crate::service::WriteResult,
) -> Response {
    if r.status == 204 {
        return StatusCode::NO_CONTENT.into_response();
    }
    let mut resp = if prefers_minimal(headers) {
        StatusCode::from_u16(r.status)
            .unwrap_or(StatusCode::OK)
            .into_response()
    } else {
        fhir_response(r.status, &r.body)
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/{}", base_url(state, headers), r.location)) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("W/\"{}\"", r.version)) {
        h.insert(header::ETAG, v);
    }
    resp
}

async fn create(
    State(state): State<AppState>,
    Path(res_type): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let ctx = context(&state, &headers).await?;
    let body = body_json(body, &headers)?;
    let r = state.store.create(&ctx, &res_type, body).await?;
    Ok(write_response(&state, &headers, r))
}

async fn update(
    State(state): State<AppState>,
    Path((res_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let ctx = context(&state, &headers).await?;
    let body = body_json(body, &headers)?;
    let if_match = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => Some(v.to_str().ok().and_then(parse_etag).ok_or_else(|| {
            FhirError::new(400, "invalid", "If-Match must be an ETag W/\"<version>\"")
        })?),
    };
    let r = state
        .store
        .update(&ctx, &res_type, &id, body, if_match)
        .await?;
    Ok(write_response(&state, &headers, r))
}

async fn delete(
    State(state): State<AppState>,
    Path((res_type, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let ctx = context(&state, &headers).await?;
    let r = state.store.delete(&ctx, &res_type, &id).await?;
    Ok(write_response(&state, &headers, r))
}

async fn bundle(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let mut t = crate::trace::Steps::start(|| "POST /fhir".into());
    let ctx = context(&state, &headers).await?;
    let body = body_json(body, &headers)?;
    crate::trace::step(&mut t, "authenticate and parse");
    let mut out = state.store.bundle(&ctx, body).await?;
    if prefers_minimal(&headers)
        && let Some(entries) = out.get_mut("entry").and_then(Value::as_array_mut)
    {
        for e in entries {
            if let Some(o) = e.as_object_mut() {
                o.remove("resource");
            }
        }
    }
    crate::trace::step(&mut t, "bundle");
    let r = fhir_response(200, &out);
    crate::reclaim::later(out);
    crate::trace::step(&mut t, "response");
    crate::trace::done(t);
    Ok(r)
}

/// `POST /record/carer-grants` `{"carer", "kinds": [...], "expires"?, "patient"?}`: a
/// citizen shares part of their record with a carer's account.
async fn grant(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, FhirError> {
    let ctx = context(&state, &headers).await?;
    let v = body_json(body, &headers)?;
    let carer = v.get("carer").and_then(Value::as_str).ok_or_else(|| {
        FhirError::new(400, "required", "carer is required (an account id)").at("carer")
    })?;
    let kinds: Vec<String> = match v.get("kinds") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|k| {
                k.as_str().map(str::to_string).ok_or_else(|| {
                    FhirError::new(400, "structure", "kinds must be resource type names")
                        .at("kinds")
                })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(FhirError::new(
                400,
                "required",
                "kinds is required (an array of resource types)",
            )
            .at("kinds"));
        }
    };
    let expires = match v.get("expires").and_then(Value::as_str) {
        None => None,
        Some(e) => Some(
            DateTime::parse_from_rfc3339(e)
                .map_err(|err| {
                    FhirError::new(400, "value", format!("expires {e:?}: {err}")).at("expires")
                })?
                .with_timezone(&Utc),
        ),
    };
    let patient = v.get("patient").and_then(Value::as_str);
    let g = state
        .store
        .grant_carer(&ctx, patient, carer, &kinds, expires)
        .await?;
    Ok(json_response(StatusCode::CREATED, g))
}

/// `GET /record/carer-grants[?patient=id]`: the grants a citizen has made.
async fn list_grants(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, FhirError> {
    let ctx = context(&state, &headers).await?;
    let pairs = pairs(q)?;
    let patient = pairs
        .iter()
        .find(|(k, _)| k == "patient")
        .map(|(_, v)| v.as_str());
    Ok(json_response(
        StatusCode::OK,
        state.store.list_carer_grants(&ctx, patient).await?,
    ))
}

/// `POST /record/carer-grants/{id}/revoke`: ends a grant now.
async fn revoke_grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let ctx = context(&state, &headers).await?;
    state.store.revoke_carer(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /auth/login` `{"username": …, "password": …}` → `{"token", "expires", "role"}`.
async fn login(State(state): State<AppState>, req: Request) -> Result<Response, FhirError> {
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string());
    let headers = req.headers().clone();
    let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|_| FhirError::new(413, "too-costly", "login body larger than 64 KiB"));
    let v = parse_json(&bytes?, &headers)?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                FhirError::new(
                    400,
                    "required",
                    format!("login: {k} is required (a string)"),
                )
                .at(k.to_string())
            })
    };
    let (username, password) = (field("username")?, field("password")?);
    let now = state.now();
    if let Err(t) = state
        .throttle
        .lock()
        .expect("throttle lock")
        .check(&username, &address, now)
    {
        let wait = (t.until - now).num_seconds().max(1);
        let mut r = FhirError::new(
            429,
            "throttled",
            format!("too many failed sign-ins; try again in {wait} s"),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(r);
    }
    let account = state.store.account(&username).await?;
    let stored = account.as_ref().map(|(_, h)| h.clone());
    let pw = password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password_or_dummy(&pw, stored.as_deref()))
        .await
        .map_err(|e| FhirError::new(500, "exception", format!("password check: {e}")))?
        .map_err(|e| FhirError::new(500, "exception", format!("password check: {e}")))?;
    let account = match account {
        Some((a, hash)) if ok && !a.disabled => {
            if needs_rehash(&hash).unwrap_or(false)
                && let Ok(new) = trent_access::auth::hash_password(&password)
            {
                state.store.set_password_hash(&a.user, &new).await?;
            }
            a
        }
        _ => {
            state
                .throttle
                .lock()
                .expect("throttle lock")
                .record_failure(&username, &address, now);
            return Err(FhirError::new(
                401,
                "login",
                "unknown account or wrong password",
            ));
        }
    };
    state
        .throttle
        .lock()
        .expect("throttle lock")
        .record_success(&username, &address, now);
    let (token, session) = Session::start(account.user.clone(), now, &state.config.sessions)
        .map_err(|e| FhirError::new(500, "exception", e.to_string()))?;
    state.store.insert_session(&session).await?;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "token": token.expose(),
            "token_type": "bearer",
            "expires": session.expires.to_rfc3339(),
            "idle_timeout_seconds": state.config.sessions.idle.num_seconds(),
            "role": account.role.code(),
        }),
    ))
}

/// `POST /auth/logout`: ends the presented session.
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, FhirError> {
    let token =
        bearer(&headers).ok_or_else(|| unauthenticated("send Authorization: Bearer <token>"))?;
    state
        .store
        .delete_session(&sha256_hex(token.as_bytes()))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    json_response(
        status,
        json!({"error": code, "error_description": description}),
    )
}

/// `POST /auth/token`: the OAuth2 client-credentials grant (RFC 6749 §4.4), form-encoded;
/// the client authenticates with HTTP Basic or `client_id`/`client_secret` in the form.
async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send application/x-www-form-urlencoded with grant_type=client_credentials",
        );
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        );
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| decode_base64(b.trim()))
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let (id, secret) = match (basic, form.get("client_id"), form.get("client_secret")) {
        (Some(b), _, _) => b,
        (None, Some(i), Some(s)) => (i.clone(), s.clone()),
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication is required",
            );
        }
    };
    let reg = match state.store.client(&id).await {
        Ok(r) => r,
        Err(e) => return FhirError::from(e).into_response(),
    };
    let Some(reg) = reg else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    };
    let scope = form.get("scope").map(String::as_str).unwrap_or("");
    let now = state.now();
    match reg.issue_token(&secret, scope, now, state.config.token_ttl) {
        Ok((token, record)) => {
            if let Err(e) = state.store.insert_token(&record).await {
                return FhirError::from(e).into_response();
            }
            json_response(
                StatusCode::OK,
                json!({
                    "access_token": token.expose(),
                    "token_type": "bearer",
                    "expires_in": state.config.token_ttl.num_seconds(),
                    "scope": record.scope_string(),
                }),
            )
        }
        Err(e @ OAuthError::InvalidClient) => oauth_error(
            StatusCode::UNAUTHORIZED,
            e.error_code(),
            "client authentication failed",
        ),
        Err(e) => oauth_error(
            if matches!(e, OAuthError::Server(_)) {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            },
            e.error_code(),
            &e.to_string(),
        ),
    }
}

/// Standard base64 (RFC 4648 §4) decoding to UTF-8 text, for HTTP Basic credentials.
fn decode_base64(s: &str) -> Option<String> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_purposes() {
        assert_eq!(
            decode_base64("YWxhZGRpbjpvcGVuc2VzYW1l").as_deref(),
            Some("aladdin:opensesame")
        );
        assert_eq!(decode_base64("YQ==").as_deref(), Some("a"));
        assert_eq!(decode_base64("*"), None);
        let mut h = HeaderMap::new();
        assert_eq!(purpose(&h, Role::Citizen).unwrap(), Purpose::SelfAccess);
        h.insert("x-purpose-of-use", HeaderValue::from_static("break-glass"));
        h.insert(
            "x-break-glass-reason",
            HeaderValue::from_static("unconscious in ED"),
        );
        assert_eq!(
            purpose(&h, Role::Clinician).unwrap(),
            Purpose::BreakGlass {
                reason: "unconscious in ED".into()
            }
        );
        h.insert("x-purpose-of-use", HeaderValue::from_static("curiosity"));
        assert_eq!(purpose(&h, Role::Clinician).unwrap_err().status, 400);
    }
}
