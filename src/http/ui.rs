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

/// `GET /debug/pprof/`.
pub(super) fn pprof() -> Response<Body> {
    html(crate::ui::pprof_page().to_string())
}
