//! The request pipeline: credentials first (every path, as upstream), then the body
//! (read once, whatever the route, up to the size limit), then the route table, then
//! what the principal may do (the endpoint's role; a push's or delete's group), then the
//! endpoint's handler. The body's `Content-Encoding` is read here, once, and a gzip
//! header checked here, once, before any handler (as upstream's gzip wrapper does).

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use model::{GroupingKey, Ttl};

use super::answers::{empty, error_response, http_error, plain, redirect, with_cors};
use super::{admin, api, batch, import, push, scrape, ui, AppState};
use crate::access::{self, Principal};
use crate::body::{self, BodyEncoding};
use crate::error::HttpError;
use crate::grouping_key::{parse_push_target, GroupingKeyError};
use crate::routes::{Endpoint, Params, Routed};

/// Authenticates the request (every path, as upstream: the UI, the API, the health
/// checks and `/metrics`), then routes it; adds the configured headers to the answer. A
/// request without valid credentials is refused before its body is read, so nothing of
/// it is stored.
pub(super) async fn dispatch(State(state): State<AppState>, request: Request) -> Response<Body> {
    if state.rate_limit.as_ref().is_some_and(|limit| !limit.allow()) {
        return plain(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n");
    }
    // The request target `*`: Go's server answers it before any handler, credentials
    // and routes unread (`OPTIONS *`: 200, empty; any other method: 400).
    if request.uri() == "*" {
        return if request.method() == axum::http::Method::OPTIONS {
            empty(StatusCode::OK)
        } else {
            let mut r = empty(StatusCode::BAD_REQUEST);
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        };
    }
    let web = state.web.current();
    let scoped = state.access.current();
    let mut response = match access::authenticate(&web.access, &scoped, request.headers()).await {
        Some(principal) => route(&state, &principal, request).await,
        None => error_response(&HttpError::Unauthorized),
    };
    web.access.add_headers(response.headers_mut());
    response
}

/// Routes one request and runs its handler. The body is read first, whatever the
/// route: answering before reading it would make the connection reset under the client.
async fn route(state: &AppState, principal: &Principal, request: Request) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match read_body(state, body).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let request = axum::http::Request::from_parts(parts, body);
    let method = request.method().clone();
    let Some((routed, gzip_wrapped)) = state.routes.route_sent(&method, request.uri().path()) else {
        return plain(StatusCode::BAD_REQUEST, "400 Bad Request");
    };
    let query = request.uri().query().map(str::to_string);
    // Upstream's gzip wrapper reads the gzip header before its main tree answers anything.
    let encoding = BodyEncoding::from_header(request.headers().get(header::CONTENT_ENCODING).map(|v| v.as_bytes()));
    if gzip_wrapped && encoding == BodyEncoding::Gzip {
        if let Some(e) = body::gzip_header_error(request.body()) {
            return error_response(&e);
        }
    }
    match routed {
        Routed::Redirect { location, status } => redirect(&method, &location, query.as_deref(), status),
        Routed::MuxRedirect { location } => {
            redirect(&method, &location, query.as_deref().filter(|q| !q.is_empty()), 301)
        }
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
        Routed::Matched { endpoint, params } => {
            let response = matched(state, principal, endpoint, params, encoding, request).await;
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
        Err(e) if serve::is_body_timeout(e.as_ref()) => Err(HttpError::BodyTimeout(e.to_string())),
        Err(e) => Err(HttpError::Encoding(e.to_string())),
    }
}

/// Whether the request says its body is JSON. The admin POSTs demand it: a web page can
/// send a form or plain text to any address without asking (a CORS-simple request), but
/// not JSON, so a page a member of staff opens cannot change the membership.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    declared(headers, "application/json")
}

/// Whether the request declares its body of media type `media`.
fn declared(headers: &axum::http::HeaderMap, media: &str) -> bool {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    crate::exposition::negotiate::parse_media_type(ct).is_some_and(|(declared, _)| declared == media)
}

/// Runs the endpoint's handler once the principal may: it has the role the endpoint
/// needs, and a push or delete is within its push rules (403 otherwise, before anything
/// is proposed).
async fn matched(
    state: &AppState,
    principal: &Principal,
    endpoint: Endpoint,
    params: Params,
    encoding: BodyEncoding,
    request: axum::http::Request<Bytes>,
) -> Response<Body> {
    if let Err(denied) = principal.may(endpoint.required_role()) {
        return error_response(&HttpError::Forbidden(denied));
    }
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let result = match endpoint {
        Endpoint::Healthy => Ok(plain(StatusCode::OK, "OK")),
        Endpoint::Ready => api::ready(state).await,
        Endpoint::Scrape => scrape::scrape(state, &headers, false).await,
        Endpoint::NodeMetrics => scrape::scrape(state, &headers, true).await,
        Endpoint::Push { replace, job_base64 } => {
            let started = Instant::now();
            let size = body.len();
            let r = match permitted_key(state, principal, &params, job_base64, "push to") {
                Ok(key) => push::push(state, key, replace, encoding, &headers, body.clone()).await,
                Err(e) => Err(e),
            };
            let method = if replace { "put" } else { "post" };
            state.metrics.observe_push(method, started.elapsed().as_secs_f64(), size);
            r
        }
        Endpoint::Delete { job_base64 } => match permitted_key(state, principal, &params, job_base64, "delete") {
            Ok((key, _)) => push::delete(state, key).await,
            // No group has such a key (no push to it is taken): nothing to delete.
            Err(HttpError::GroupingKey(GroupingKeyError::NotUtf8(_))) => Ok(empty(StatusCode::ACCEPTED)),
            Err(e) => Err(e),
        },
        Endpoint::Batch { replace } => {
            batch::push_batch(state, principal, replace, encoding, &headers, body.clone()).await
        }
        Endpoint::ApiDeleteMatching => admin::delete_matching(state, parts.uri.query()).await,
        Endpoint::ApiWipe => admin::wipe(state).await,
        // An import replaces groups: like the other admin POSTs, it takes only a body a web
        // page cannot send without the browser asking first.
        Endpoint::ApiImport if !declared(&headers, "application/octet-stream") => Err(HttpError::NotOctetStream),
        Endpoint::ApiImport => import::import_request(state, body).await,
        Endpoint::Static => Ok(ui::static_file(&params.rest, parts.uri.query())),
        Endpoint::StatusPage => ui::status_page(state).await,
        Endpoint::Pprof => Ok(ui::pprof(&params.rest, !state.routes.prefix().is_empty())),
        Endpoint::Quit => {
            state.quit.notify_one();
            Ok(plain(StatusCode::OK, "Requesting termination... Goodbye!"))
        }
        Endpoint::QuitForbidden => Ok(plain(StatusCode::FORBIDDEN, "Lifecycle API is not enabled.")),
        Endpoint::QuitWrongMethod => Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "Only POST or PUT requests allowed.")),
        Endpoint::ApiStatus => Ok(api::status(state)),
        Endpoint::ApiMetrics => api::metrics(state).await,
        Endpoint::ApiOptions => Ok(with_cors(empty(StatusCode::OK))),
        Endpoint::ApiCluster => Ok(api::cluster(state)),
        Endpoint::ApiClusterMembers => Ok(api::cluster_members(state).await),
        Endpoint::ApiClusterAdd | Endpoint::ApiClusterRemove | Endpoint::ApiClusterCheckpoint if !is_json(&headers) => {
            Err(HttpError::NotJson)
        }
        Endpoint::ApiClusterAdd => admin::cluster_add(state, &body).await,
        Endpoint::ApiClusterRemove => admin::cluster_remove(state, &body).await,
        Endpoint::ApiClusterCheckpoint => admin::cluster_checkpoint(state, &body).await,
    };
    result.unwrap_or_else(|e| error_response(&e))
}

/// The grouping key of a push or delete (parsed once, here), if the principal's push
/// rules allow `change` (`push to`, `delete`) on its group.
fn permitted_key(
    state: &AppState,
    principal: &Principal,
    params: &Params,
    job_base64: bool,
    change: &'static str,
) -> Result<(GroupingKey, Option<Ttl>), HttpError> {
    let (key, ttl) = parse_push_target(&params.job, job_base64, &params.rest, state.config.names())?;
    principal.may_change(&key, change)?;
    Ok((key, ttl))
}
