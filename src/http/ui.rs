//! The web pages' handlers: the status page (from a view of the store, rendered without
//! its lock, and this node's view of the cluster), the static files and the pprof page;
//! the HTML is built in [`crate::ui`].

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};

use super::answers::{html, http_error, plain};
use super::scrape::render_view;
use super::AppState;
use crate::error::HttpError;

pub(super) async fn status_page(state: &AppState) -> Result<Response<Body>, HttpError> {
    let prefix = state.config.route_prefix();
    let status = state.node.status();
    let members = state.node.members().await;
    let flags = state.config.flag_map();
    let started = state.started;
    let page =
        render_view(state, move |view| crate::ui::status_page(view, &prefix, &status, &members, &flags, started))
            .await?;
    Ok(html(page))
}

/// `GET /static/*`.
pub(super) fn static_file(path: &[u8]) -> Response<Body> {
    match crate::ui::static_file(path) {
        Some((content_type, text)) => {
            let mut r = plain(StatusCode::OK, text);
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r
        }
        None => http_error(StatusCode::NOT_FOUND, "404 page not found"),
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
