//! The web pages' handlers: the status page (from a view of the store, rendered without
//! its lock, and this node's view of the cluster), the static files and the pprof page;
//! the HTML is built in [`crate::ui`].

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};

use super::answers::{empty, html, http_error, plain};
use super::scrape::render_view;
use super::AppState;
use crate::error::HttpError;
use crate::ui::StaticAnswer;

pub(super) async fn status_page(state: &AppState) -> Result<Response<Body>, HttpError> {
    let prefix = state.routes.prefix().to_string();
    let status = state.node.status();
    let members = state.node.members().await;
    let flags = state.config.flag_map();
    let started = state.started;
    let page =
        render_view(state, move |view| crate::ui::status_page(view, &prefix, &status, &members, &flags, started))
            .await?;
    Ok(html(page))
}

/// `GET /static/*`; `query` is the request's raw query, which a redirect keeps.
pub(super) fn static_file(path: &[u8], query: Option<&str>) -> Response<Body> {
    match crate::ui::static_file(path) {
        StaticAnswer::File(content_type, text) => {
            let mut r = plain(StatusCode::OK, text);
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r
        }
        // Go's `localRedirect`: the location as it is, no body, no content type.
        StaticAnswer::Moved(mut location) => {
            if let Some(q) = query.filter(|q| !q.is_empty()) {
                location.push('?');
                location.push_str(q);
            }
            let mut r = empty(StatusCode::MOVED_PERMANENTLY);
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        StaticAnswer::NotFound => http_error(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// `GET /debug/pprof/*name`: the page saying what exists instead of Go's profiles, or,
/// for a name Go's pprof handlers do not know, their 404 (which they answer only without
/// a route prefix: behind one, upstream's index serves every name).
pub(super) fn pprof(name: &[u8], prefixed: bool) -> Response<Body> {
    const KNOWN: &[&[u8]] = &[
        b"",
        b"cmdline",
        b"profile",
        b"symbol",
        b"goroutine",
        b"threadcreate",
        b"heap",
        b"allocs",
        b"block",
        b"mutex",
    ];
    let name = name.strip_prefix(b"/").unwrap_or(name);
    if !prefixed && !KNOWN.contains(&name) {
        let mut r = http_error(StatusCode::NOT_FOUND, "Unknown profile");
        r.headers_mut().insert("x-go-pprof", HeaderValue::from_static("1"));
        return r;
    }
    html(crate::ui::pprof_page().to_string())
}
