//! Building answers as upstream's stack builds them: Go's `http.Error` (message, newline,
//! `nosniff`), redirects with Go's path escaping, HTML and JSON bodies, the API's CORS
//! headers, and error answers through the one status table ([`HttpError::status`]).

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Response, StatusCode};

use crate::error::HttpError;

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

pub(super) fn plain(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    r
}

/// Go's `http.Error`: the message plus a newline, as plain text.
pub(super) fn http_error(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = plain(status, format!("{message}\n"));
    r.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}

pub(super) fn error_response(e: &HttpError) -> Response<Body> {
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

pub(super) fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

pub(super) fn redirect(method: &Method, location: &[u8], query: Option<&str>, status: u16) -> Response<Body> {
    let mut location = crate::routes::go_escape_path(location);
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

pub(super) fn html(body: String) -> Response<Body> {
    let mut r = plain(StatusCode::OK, body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

/// Upstream's `setCORS` headers, exactly as every version up to 1.11 sends them on
/// `GET /api/v1/status`, `GET /api/v1/metrics` and `OPTIONS /api/v1/*` (and nowhere else:
/// not on the admin API, not on errors): fixed values, whatever the request's `Origin`.
pub(super) fn with_cors(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert("access-control-allow-headers", HeaderValue::from_static("Accept, Authorization, Content-Type, Origin"));
    h.insert("access-control-allow-methods", HeaderValue::from_static("GET, POST, DELETE, OPTIONS"));
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert("access-control-expose-headers", HeaderValue::from_static("Date"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    r
}

pub(super) fn json(body: Vec<u8>) -> Response<Body> {
    let mut r = with_cors(empty(StatusCode::OK));
    *r.body_mut() = Body::from(body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
