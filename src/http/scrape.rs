//! `/metrics`, and the one read path every page of the store goes through
//! ([`render_view`]).

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use model::StoreView;

use super::answers::empty;
use super::AppState;
use crate::error::HttpError;
use crate::exposition::escaping::Escaping;
use crate::exposition::negotiate::{negotiate_escaping, ScrapeFormat};
use crate::exposition::render;
use crate::self_metrics;

/// The one read path of every page of the store (`/metrics`' view, the JSON API, the
/// status page): pass the read barrier, then take a view and render it in one hop to
/// the blocking pool. The store's lock is held only while the view is taken, never
/// while `render` runs, so applies (and the pushes waiting on them) do not wait for it.
pub(super) async fn render_view<R: Send + 'static>(
    state: &AppState,
    render: impl FnOnce(&StoreView) -> R + Send + 'static,
) -> Result<R, HttpError> {
    Ok(render_view_marked(state, render).await?.0)
}

/// [`render_view`], and whether the read was served stale (see
/// `--cluster.stale-reads-after`): how long since this node last confirmed it was up to date.
pub(super) async fn render_view_marked<R: Send + 'static>(
    state: &AppState,
    render: impl FnOnce(&StoreView) -> R + Send + 'static,
) -> Result<(R, Option<std::time::Duration>), HttpError> {
    let reader = state.node.consistent_reader().await.map_err(HttpError::Read)?;
    let stale = reader.stale();
    let rendered = tokio::task::spawn_blocking(move || render(&reader.view()))
        .await
        .map_err(|e| HttpError::Read(cluster::ClusterError::Internal(format!("render task failed: {e}"))))?;
    Ok((rendered, stale))
}

/// The header that marks an answer served stale: seconds since this node last confirmed
/// it was up to date.
pub(super) fn mark_stale(r: &mut Response<Body>, stale: Option<std::time::Duration>) {
    if let Some(age) = stale {
        if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", age.as_secs_f64())) {
            r.headers_mut().insert("x-pushgateway-stale-seconds", v);
        }
    }
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
///
/// `node_only` (`/-/metrics`): only this node's own families (`process_*`,
/// `pushgateway_*`), without the pushed groups and without the read barrier, for a
/// per-node scrape job beside the load-balanced one.
pub(super) async fn scrape(
    state: &AppState,
    headers: &HeaderMap,
    node_only: bool,
) -> Result<Response<Body>, HttpError> {
    // Names outside the legacy set are escaped by the scheme the client asks for (1.11);
    // without --push.enable-utf8-names the scrape is 1.5.1's (no escaping parameter) and
    // such names, which then only an earlier flagged push can have stored, are written
    // with underscores.
    let (format, escaping) = negotiate_escaping(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let utf8 = state.config.push_enable_utf8_names;
    let escaping = if utf8 { escaping } else { Escaping::Underscores };
    let mut own = state.metrics.gather(&state.node.status(), &state.node.proposal_stats());
    let quotas = state.config.store_quotas();
    let gzip = gzip_accepted(headers);
    let mut render = move |view: &StoreView| {
        own.extend(self_metrics::store_families(view.usage(), &quotas));
        let timestamps = if node_only { Vec::new() } else { render::timestamp_families(view) };
        let prepare = if format == ScrapeFormat::Text { render::Prepare::Text } else { render::Prepare::Series };
        let families =
            if node_only { render::gather_own(&own) } else { render::gather(view, &timestamps, &own, prepare) };
        let body = match format {
            ScrapeFormat::Text => render::render_text(&families, escaping),
            ScrapeFormat::ProtoDelimited => render::render_protobuf(&families, escaping),
            ScrapeFormat::ProtoText => render::render_protobuf_text(&families, false, escaping),
            ScrapeFormat::ProtoCompactText => render::render_protobuf_text(&families, true, escaping),
        };
        if gzip {
            use std::io::Write;
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            if let Ok(compressed) = encoder.write_all(&body).and_then(|_| encoder.finish()) {
                return (compressed, true);
            }
        }
        (body, false)
    };
    let ((body, gzipped), stale) = if node_only {
        let reader = state.node.local_reader();
        let rendered = tokio::task::spawn_blocking(move || render(&reader.view()))
            .await
            .map_err(|e| HttpError::Read(cluster::ClusterError::Internal(format!("render task failed: {e}"))))?;
        (rendered, None)
    } else {
        render_view_marked(state, render).await?
    };
    let mut r = empty(StatusCode::OK);
    let content_type = if utf8 {
        HeaderValue::from_str(&format!("{}; escaping={}", format.content_type(), escaping.param()))
            .unwrap_or_else(|_| HeaderValue::from_static(format.content_type()))
    } else {
        HeaderValue::from_static(format.content_type())
    };
    r.headers_mut().insert(header::CONTENT_TYPE, content_type);
    if gzipped {
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    mark_stale(&mut r, stale);
    *r.body_mut() = Body::from(body);
    Ok(r)
}
