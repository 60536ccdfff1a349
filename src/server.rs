//! The HTTP server: one entry point that routes with [`RouteTable`] and one handler per
//! endpoint. Handlers only parse and submit; the store decides (see `cluster`).

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use axum::Router;
use http_body_util::BodyExt;

use cluster::node::{Node, ReadError};
use cluster::{Command, GroupingKey, Outcome, UnixNanos};

use crate::body::{self, BodyEncoding};
use crate::config::Config;
use crate::error::HttpError;
use crate::exposition::{protobuf, render, text_parse};
use crate::grouping_key::parse_grouping_key;
use crate::routes::{Endpoint, Params, RouteTable, Routed};
use crate::self_metrics::SelfMetrics;
use crate::web_config::{LiveWebConfig, WebConfig};
use crate::{api, ui};

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub routes: Arc<RouteTable>,
    pub node: Node,
    pub metrics: Arc<SelfMetrics>,
    pub started: UnixNanos,
    /// Notified when `/-/quit` asks the server to stop.
    pub quit: Arc<tokio::sync::Notify>,
    /// `--web.config.file`: basic authentication and answer headers.
    pub web: Arc<LiveWebConfig>,
}

impl AppState {
    /// Without `--web.config.file` (see [`AppState::with_web_config`]).
    pub fn new(config: Config, node: Node) -> Self {
        AppState {
            routes: Arc::new(RouteTable::new(&config)),
            config: Arc::new(config),
            node,
            metrics: Arc::new(SelfMetrics::new()),
            started: now(),
            quit: Arc::new(tokio::sync::Notify::new()),
            web: Arc::new(LiveWebConfig::new("", WebConfig::none())),
        }
    }

    pub fn with_web_config(self, web: Arc<LiveWebConfig>) -> Self {
        AppState { web, ..self }
    }
}

/// The wall clock, read once per request by the node that accepts it.
pub fn now() -> UnixNanos {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    UnixNanos(d.as_nanos() as i64)
}

/// The application: every request goes through [`dispatch`], which consults the one
/// route table.
pub fn router(state: AppState) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

fn plain(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    r
}

/// Go's `http.Error`: the message plus a newline, as plain text.
fn http_error(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = plain(status, format!("{message}\n"));
    r.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}

fn error_response(e: &HttpError) -> Response<Body> {
    let status = e.status();
    if status.is_server_error() {
        tracing::warn!(error = %e, "request failed");
    } else {
        tracing::debug!(error = %e, "request refused");
    }
    let mut r = http_error(status, &e.to_string());
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
    }
    r
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// Percent-decodes a request path; `None` if an escape is malformed.
fn decode_path(raw: &str) -> Option<Vec<u8>> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let s = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Go's path escaping for a `Location` header.
fn escape_path(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path {
        if b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn redirect(method: &Method, location: &[u8], query: Option<&str>, status: u16) -> Response<Body> {
    let mut location = escape_path(location);
    if let Some(q) = query {
        location.push('?');
        location.push_str(q);
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    let mut r = if *method == Method::GET || *method == Method::HEAD {
        let text = status.canonical_reason().unwrap_or("");
        let mut r = empty(status);
        *r.body_mut() = Body::from(format!("<a href=\"{}\">{text}</a>.\n\n", html_escape(&location)));
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        r
    } else {
        empty(status)
    };
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&#34;").replace('\'', "&#39;")
}

/// Checks the request's credentials (every path, as upstream: the UI, the API, the
/// health checks and `/metrics`), then routes it; adds the configured headers to the
/// answer. A refused request's body is not read, so nothing of it is stored.
async fn dispatch(State(state): State<AppState>, request: Request) -> Response<Body> {
    let access = state.web.current().access.clone();
    let mut response = if access.authorized(request.headers()).await {
        route(&state, request).await
    } else {
        error_response(&HttpError::Unauthorized)
    };
    access.add_headers(response.headers_mut());
    response
}

/// Routes one request and runs its handler. The body is read first, whatever the
/// route: answering before reading it would make the connection reset under the client.
async fn route(state: &AppState, request: Request) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match read_body(state, body).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let request = axum::http::Request::from_parts(parts, body);
    let method = request.method().clone();
    let Some(path) = decode_path(request.uri().path()) else {
        return plain(StatusCode::BAD_REQUEST, "400 Bad Request");
    };
    let query = request.uri().query().map(str::to_string);
    match state.routes.route(&method, &path) {
        Routed::Redirect { location, status } => redirect(&method, &location, query.as_deref(), status),
        Routed::NotFound => http_error(StatusCode::NOT_FOUND, "404 page not found"),
        Routed::MethodNotAllowed { allow } => {
            let mut r = http_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            if let Ok(v) = HeaderValue::from_str(&allow) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            r
        }
        Routed::Options { allow } => {
            let mut r = empty(StatusCode::OK);
            if let Ok(v) = HeaderValue::from_str(&allow) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            r
        }
        Routed::Matched { endpoint, params, api } => {
            let response = matched(state, endpoint, params, api, request).await;
            if endpoint != Endpoint::Scrape {
                state.metrics.observe_request(response.status().as_u16(), endpoint.metric_name(), method.as_str());
            }
            response
        }
    }
}

/// Reads a request body up to the configured limit (413 beyond it).
async fn read_body(state: &AppState, body: Body) -> Result<Bytes, HttpError> {
    let limit = state.config.push_max_body_bytes;
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(HttpError::BodyTooLarge(limit)),
        Err(e) => Err(HttpError::Encoding(e.to_string())),
    }
}

async fn matched(
    state: &AppState,
    endpoint: Endpoint,
    params: Params,
    api: bool,
    request: axum::http::Request<Bytes>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let encoding = BodyEncoding::from_header(headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes()));
    // Upstream's gzip wrapper covers every non-API route and reads the gzip header
    // before routing to the handler.
    if !api && encoding == BodyEncoding::Gzip {
        if let Some(e) = body::gzip_header_error(&body) {
            return error_response(&e);
        }
    }
    let result = match endpoint {
        Endpoint::Healthy => Ok(plain(StatusCode::OK, "OK")),
        Endpoint::Ready => ready(state).await,
        Endpoint::Scrape => scrape(state, &headers).await,
        Endpoint::Push { replace, job_base64 } => {
            let started = Instant::now();
            let size = body.len();
            let r = push(state, &params, job_base64, replace, encoding, &headers, &body).await;
            let method = if replace { "put" } else { "post" };
            state.metrics.observe_push(method, started.elapsed().as_secs_f64(), size);
            r
        }
        Endpoint::Delete { job_base64 } => delete(state, &params, job_base64).await,
        Endpoint::ApiWipe => propose(state, Command::Wipe).await.map(|_| with_cors(empty(StatusCode::ACCEPTED))),
        Endpoint::Static => Ok(match ui::static_file(&params.rest) {
            Some((content_type, text)) => {
                let mut r = plain(StatusCode::OK, text);
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                r
            }
            None => http_error(StatusCode::NOT_FOUND, "404 page not found"),
        }),
        Endpoint::StatusPage => status_page(state).await,
        Endpoint::Pprof => Ok(html(ui::pprof_page().to_string())),
        Endpoint::Quit => {
            state.quit.notify_one();
            Ok(plain(StatusCode::OK, "Requesting termination... Goodbye!"))
        }
        Endpoint::QuitForbidden => Ok(plain(StatusCode::FORBIDDEN, "Lifecycle API is not enabled.")),
        Endpoint::QuitWrongMethod => Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "Only POST or PUT requests allowed.")),
        Endpoint::ApiStatus => {
            Ok(json(api::status_document(&state.config.flag_map(), state.started, cluster_json(state))))
        }
        Endpoint::ApiMetrics => state.node.read(api::metrics_document).await.map(json).map_err(HttpError::from),
        Endpoint::ApiOptions => Ok(with_cors(empty(StatusCode::OK))),
        Endpoint::ApiCluster => Ok(json(serde_json::to_vec(&cluster_json(state)).unwrap_or_default())),
        Endpoint::ApiClusterAdd => cluster_add(state, &body).await,
        Endpoint::ApiClusterRemove => cluster_remove(state, &body).await,
        Endpoint::ApiClusterCheckpoint => cluster_checkpoint(state, &body).await,
    };
    result.unwrap_or_else(|e| error_response(&e))
}

fn html(body: String) -> Response<Body> {
    let mut r = plain(StatusCode::OK, body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

/// Upstream's `setCORS` headers of the API.
fn with_cors(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert("access-control-allow-headers", HeaderValue::from_static("Accept, Authorization, Content-Type, Origin"));
    h.insert("access-control-allow-methods", HeaderValue::from_static("GET, OPTIONS"));
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert("access-control-expose-headers", HeaderValue::from_static("Date"));
    r
}

fn json(body: Vec<u8>) -> Response<Body> {
    let mut r = with_cors(empty(StatusCode::OK));
    *r.body_mut() = Body::from(body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn cluster_json(state: &AppState) -> serde_json::Value {
    serde_json::to_value(state.node.status()).unwrap_or_default()
}

/// Body of `POST /api/v1/admin/cluster/add`.
#[derive(serde::Deserialize)]
struct AddMember {
    id: u64,
    address: String,
    #[serde(default)]
    learner_only: bool,
}

/// Body of `POST /api/v1/admin/cluster/remove`.
#[derive(serde::Deserialize)]
struct RemoveMember {
    id: u64,
}

/// Body of `POST /api/v1/admin/cluster/checkpoint`.
#[derive(serde::Deserialize)]
struct CheckpointRequest {
    path: String,
}

fn members_json(members: std::collections::BTreeMap<u64, String>) -> Response<Body> {
    json(
        serde_json::to_vec(&serde_json::json!({ "status": "success", "data": { "members": members } }))
            .unwrap_or_default(),
    )
}

async fn cluster_add(state: &AppState, body: &[u8]) -> Result<Response<Body>, HttpError> {
    let req: AddMember = serde_json::from_slice(body).map_err(|e| HttpError::BadRequest(e.to_string()))?;
    Ok(members_json(state.node.add_member(req.id, req.address, req.learner_only).await?))
}

async fn cluster_remove(state: &AppState, body: &[u8]) -> Result<Response<Body>, HttpError> {
    let req: RemoveMember = serde_json::from_slice(body).map_err(|e| HttpError::BadRequest(e.to_string()))?;
    Ok(members_json(state.node.remove_member(req.id).await?))
}

async fn cluster_checkpoint(state: &AppState, body: &[u8]) -> Result<Response<Body>, HttpError> {
    let req: CheckpointRequest = serde_json::from_slice(body).map_err(|e| HttpError::BadRequest(e.to_string()))?;
    state.node.checkpoint(req.path.clone().into()).await?;
    let answer = serde_json::json!({ "status": "success", "data": { "path": req.path } });
    Ok(json(serde_json::to_vec(&answer).unwrap_or_default()))
}

async fn propose(state: &AppState, command: Command) -> Result<Outcome, HttpError> {
    Ok(state.node.propose(command).await?)
}

/// 200 once a leader is known and this node has applied its log (see `Node::ready`).
async fn ready(state: &AppState) -> Result<Response<Body>, HttpError> {
    state.node.ready().map_err(HttpError::NotReady)?;
    Ok(plain(StatusCode::OK, "OK"))
}

async fn status_page(state: &AppState) -> Result<Response<Body>, HttpError> {
    let prefix = state.config.route_prefix();
    let status = state.node.status();
    let flags = state.config.flag_map();
    let page = state.node.read(move |store| ui::status_page(store, &prefix, &status, &flags)).await?;
    Ok(html(page))
}

/// Exposition formats a scrape can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScrapeFormat {
    Text,
    ProtoDelimited,
    ProtoText,
    ProtoCompactText,
}

impl ScrapeFormat {
    fn content_type(self) -> &'static str {
        match self {
            ScrapeFormat::Text => "text/plain; version=0.0.4; charset=utf-8",
            ScrapeFormat::ProtoDelimited => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
            ScrapeFormat::ProtoText => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=text"
            }
            ScrapeFormat::ProtoCompactText => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=compact-text"
            }
        }
    }
}

/// A media type with lower-cased type and parameter names (Go's `mime.ParseMediaType`).
fn parse_media_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string()))
        })
        .collect();
    (media, params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A media range of an `Accept` header: quality, media type, parameters.
type MediaRange = (f64, String, Vec<(String, String)>);

/// `expfmt.Negotiate`: the first acceptable format by descending quality.
pub fn negotiate(accept: Option<&str>) -> ScrapeFormat {
    let mut ranges: Vec<MediaRange> = accept
        .unwrap_or("")
        .split(',')
        .map(|r| {
            let (media, params) = parse_media_type(r);
            let q = param(&params, "q").and_then(|q| q.parse().ok()).unwrap_or(1.0);
            (q, media, params)
        })
        .collect();
    ranges.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    for (_, media, params) in &ranges {
        if media == "application/vnd.google.protobuf"
            && param(params, "proto") == Some("io.prometheus.client.MetricFamily")
        {
            match param(params, "encoding") {
                Some("delimited") => return ScrapeFormat::ProtoDelimited,
                Some("text") => return ScrapeFormat::ProtoText,
                Some("compact-text") => return ScrapeFormat::ProtoCompactText,
                _ => {}
            }
        }
        if media == "text/plain" && matches!(param(params, "version"), None | Some("0.0.4")) {
            return ScrapeFormat::Text;
        }
    }
    ScrapeFormat::Text
}

fn gzip_accepted(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |part| {
            let part = part.trim();
            part == "gzip" || part.starts_with("gzip;")
        },
    )
}

/// Renders (and compresses) a scrape on the blocking pool, from a view of the store that
/// holds no lock: a scrape of a million series takes long enough to starve the async
/// workers, and holding the lock meanwhile would stall every apply.
async fn scrape(state: &AppState, headers: &HeaderMap) -> Result<Response<Body>, HttpError> {
    let format = negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let own = state.metrics.gather(&state.node.status(), &state.node.proposal_stats());
    let view = state.node.read(|store| store.view()).await?;
    let gzip = gzip_accepted(headers);
    let (body, gzipped) = tokio::task::spawn_blocking(move || {
        let timestamps = render::timestamp_families(&view);
        let prepare = if format == ScrapeFormat::Text { render::Prepare::Text } else { render::Prepare::Series };
        let families = render::gather(&view, &timestamps, &own, prepare);
        let body = match format {
            ScrapeFormat::Text => render::render_text(&families),
            ScrapeFormat::ProtoDelimited => render::render_protobuf(&families),
            ScrapeFormat::ProtoText => render::render_protobuf_text(&families, false),
            ScrapeFormat::ProtoCompactText => render::render_protobuf_text(&families, true),
        };
        if gzip {
            use std::io::Write;
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            if let Ok(compressed) = encoder.write_all(&body).and_then(|_| encoder.finish()) {
                return (compressed, true);
            }
        }
        (body, false)
    })
    .await
    .map_err(|e| ReadError::Unavailable(format!("render task failed: {e}")))?;
    let mut r = empty(StatusCode::OK);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if gzipped {
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    *r.body_mut() = Body::from(body);
    Ok(r)
}

fn is_protobuf_push(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let (media, params) = parse_media_type(ct);
    media == "application/vnd.google.protobuf"
        && param(&params, "encoding") == Some("delimited")
        && param(&params, "proto") == Some("io.prometheus.client.MetricFamily")
}

fn grouping_key(params: &Params, job_base64: bool) -> Result<GroupingKey, HttpError> {
    Ok(parse_grouping_key(&params.job, job_base64, &params.rest)?)
}

async fn push(
    state: &AppState,
    params: &Params,
    job_base64: bool,
    replace: bool,
    encoding: BodyEncoding,
    headers: &HeaderMap,
    raw: &[u8],
) -> Result<Response<Body>, HttpError> {
    let key = grouping_key(params, job_base64)?;
    let body = body::decode(raw, encoding, state.config.push_max_body_bytes)?;
    let (families, defect) = if is_protobuf_push(headers) {
        let decoded = protobuf::parse_delimited(&body)?;
        (decoded.families, decoded.defect)
    } else {
        (text_parse::parse_text(&body)?, None)
    };
    let time = now();
    if replace && state.config.debug_unsafe_ack_before_commit {
        tracing::warn!("--debug.unsafe-ack-before-commit: acknowledging a push that is not replicated");
        return Ok(empty(StatusCode::OK));
    }
    let outcome = propose(state, Command::Push { key, families, replace, time, defect }).await?;
    let unchecked = state.config.push_disable_consistency_check;
    match outcome {
        _ if unchecked => Ok(empty(StatusCode::ACCEPTED)),
        Outcome::Rejected { reason } => Err(HttpError::Inconsistent(reason)),
        _ => Ok(empty(StatusCode::OK)),
    }
}

async fn delete(state: &AppState, params: &Params, job_base64: bool) -> Result<Response<Body>, HttpError> {
    let key = grouping_key(params, job_base64)?;
    propose(state, Command::Delete { key }).await?;
    Ok(empty(StatusCode::ACCEPTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_cases() {
        let cases = [
            ("none", None, ScrapeFormat::Text),
            ("protobuf", Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"), ScrapeFormat::ProtoDelimited),
            (
                "prometheus prefers protobuf",
                Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1"),
                ScrapeFormat::ProtoDelimited,
            ),
            (
                "openmetrics falls back to text",
                Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
                ScrapeFormat::Text,
            ),
            ("text over protobuf by q", Some("text/plain;q=0.9,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5"), ScrapeFormat::Text),
            ("compact text", Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=compact-text"), ScrapeFormat::ProtoCompactText),
        ];
        for (name, accept, want) in cases {
            assert_eq!(negotiate(accept), want, "case {name}");
        }
    }

    #[test]
    fn path_decoding() {
        assert_eq!(decode_path("/a%20b").unwrap(), b"/a b");
        assert_eq!(decode_path("/%FF").unwrap(), b"/\xff");
        assert!(decode_path("/%zz").is_none());
        assert!(decode_path("/%2").is_none());
    }
}
