//! `/metrics`, and the one read path every page of the store goes through
//! ([`render_view`]).

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body::Frame;

use model::StoreView;

use super::answers::empty;
use super::AppState;
use crate::error::HttpError;
use crate::exposition::escaping::Escaping;
use crate::exposition::negotiate::{negotiate_escaping, ScrapeFormat};
use crate::exposition::render::{self, TimestampText};
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
    let (task, stale) = spawn_render(state, false, render).await?;
    let rendered =
        task.await.map_err(|e| HttpError::Read(cluster::ClusterError::Internal(format!("render task failed: {e}"))))?;
    Ok((rendered, stale))
}

/// Passes the read barrier (none with `node_only`: this node's view as it is), then
/// renders a view on the blocking pool. Returns the rendering task, and whether the read
/// is served stale.
async fn spawn_render<R: Send + 'static>(
    state: &AppState,
    node_only: bool,
    render: impl FnOnce(&StoreView) -> R + Send + 'static,
) -> Result<(tokio::task::JoinHandle<R>, Option<std::time::Duration>), HttpError> {
    let reader = if node_only {
        state.node.local_reader()
    } else {
        state.node.consistent_reader().await.map_err(HttpError::Read)?
    };
    let stale = reader.stale();
    Ok((tokio::task::spawn_blocking(move || render(&reader.view())), stale))
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

/// Size of the pieces a scrape's body is sent in (see [`render::render_text_in_pieces`]).
const PIECE_BYTES: usize = 64 << 10;
/// Pieces rendered ahead of what the client has taken: the most of a scrape's body a
/// node holds, whatever the store's size.
const PIECES_AHEAD: usize = 8;
/// Scrapes sent in pieces at once, each holding a thread of the blocking pool (which
/// RocksDB's operations share) while it waits for its client between pieces: clients
/// that do not read must not take every thread. A scrape beyond them is rendered whole
/// first, as one piece, and holds no thread while it is sent.
pub(super) const MAX_STREAMED_SCRAPES: usize = 32;
/// How long a scrape may take to be rendered and taken by its client, from when a
/// blocking-pool thread starts rendering it; then it is cut off (the client sees the
/// response end early) and its thread is free again.
const SCRAPE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Renders (and compresses) a scrape on the blocking pool, from a view of the store that
/// holds no lock: a scrape of a million series takes long enough to starve the async
/// workers, and holding the lock meanwhile would stall every apply. The body goes out in
/// pieces as it is rendered ([`PieceBody`]), at most [`PIECES_AHEAD`] ahead of the
/// client (unless [`MAX_STREAMED_SCRAPES`] are already sent so); a body of one piece
/// goes out whole, with its length.
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
    let kept_stamps = state.timestamp_text.clone();
    let mut render = move |view: &StoreView, out: &mut PieceSender| {
        own.extend(self_metrics::store_families(view.usage(), &quotas));
        let text = format == ScrapeFormat::Text;
        let kept = if text && !node_only { timestamp_text(&kept_stamps, view, escaping) } else { None };
        let series = if node_only || kept.is_some() { Vec::new() } else { render::timestamp_families(view) };
        let stamps = match &kept {
            Some(kept) => render::Stamps::Text(kept),
            None => render::Stamps::Series(&series),
        };
        let prepare = if text { render::Prepare::Text } else { render::Prepare::Series };
        let families = if node_only { render::gather_own(&own) } else { render::gather(view, stamps, &own, prepare) };
        let whole = match format {
            ScrapeFormat::Text => {
                let piece = out.piece;
                render::render_text_in_pieces(&families, escaping, piece, &mut |piece, last| {
                    out.send(piece.into_bytes(), last)
                });
                return;
            }
            ScrapeFormat::ProtoDelimited => render::render_protobuf(&families, escaping),
            ScrapeFormat::ProtoText => render::render_protobuf_text(&families, false, escaping),
            ScrapeFormat::ProtoCompactText => render::render_protobuf_text(&families, true, escaping),
        };
        out.send(whole, true);
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(PIECES_AHEAD);
    let (turns, runtime) = (state.scrape_turns.clone(), tokio::runtime::Handle::current());
    let (_, stale) = spawn_render(state, node_only, move |view| {
        // Taken on the rendering thread, where it is held while the pieces go out.
        let turn = turns.try_acquire_owned().ok();
        let mut sender = PieceSender {
            piece: if turn.is_some() { PIECE_BYTES } else { usize::MAX },
            tx,
            runtime,
            deadline: tokio::time::Instant::now() + SCRAPE_DEADLINE,
            gzip: gzip.then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())),
            rendered: 0,
        };
        render(view, &mut sender);
        let large = sender.rendered >= LARGE_SCRAPE_BYTES;
        drop((sender, turn));
        if large {
            release_freed_memory();
        }
    })
    .await?;
    let body = match rx.recv().await {
        Some(Piece::Last(whole)) => Body::from(whole),
        Some(Piece::More(first)) => Body::new(PieceBody { first: Some(first), rx, ended: false }),
        None => return Err(HttpError::Read(cluster::ClusterError::Internal("render task failed".into()))),
    };
    let mut r = empty(StatusCode::OK);
    let content_type = if utf8 {
        HeaderValue::from_str(&format!("{}; escaping={}", format.content_type(), escaping.param()))
            .unwrap_or_else(|_| HeaderValue::from_static(format.content_type()))
    } else {
        HeaderValue::from_static(format.content_type())
    };
    r.headers_mut().insert(header::CONTENT_TYPE, content_type);
    if gzip {
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    mark_stale(&mut r, stale);
    *r.body_mut() = body;
    Ok(r)
}

/// The text of `view`'s timestamp families under `escaping`: the one `kept` holds when it
/// is still this view's, else made and kept in its place (not under the lock). None when
/// the timestamp families cannot be kept as text ([`TimestampText::of`]).
fn timestamp_text(
    kept: &Mutex<Option<Arc<TimestampText>>>,
    view: &StoreView,
    escaping: Escaping,
) -> Option<Arc<TimestampText>> {
    // What the lock guards is replaced whole, never left half-changed: a panic elsewhere
    // while it was held leaves it usable.
    let lock = || kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(same) = lock().as_ref().filter(|k| k.is_for(view, escaping)) {
        return Some(same.clone());
    }
    let made = Arc::new(TimestampText::of(view, escaping)?);
    // The text it replaces (a weak reference per group) is dropped after the lock is let go.
    let replaced = lock().replace(made.clone());
    drop(replaced);
    Some(made)
}

/// A scrape of at least this many bytes (rendered, before compression) gives back what
/// it freed when it ends ([`release_freed_memory`]); a smaller one frees too little to be
/// worth the pages the next scrape must then fault in again.
const LARGE_SCRAPE_BYTES: usize = 16 << 20;

/// Gives the memory this thread freed back to the system at once. A scrape frees what it
/// used on the thread that rendered it: the buffers the changed families' text was
/// rendered in before it was kept in exact copies, its list of series, its pieces.
/// mimalloc returns freed pages only when the thread that freed them allocates again, and
/// a blocking-pool thread may sit idle for long: measured at a million series, 30 MB (8%)
/// more resident after scrapes without this.
fn release_freed_memory() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread at any
    // time; with another global allocator it collects mimalloc's own (empty) heap.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// A piece of a scrape's body, and whether it is the last.
enum Piece {
    More(Bytes),
    Last(Bytes),
}

/// The rendering side of a scrape: compresses pieces when the client takes gzip, and
/// waits (on its blocking-pool thread) while [`PIECES_AHEAD`] pieces are not taken yet.
struct PieceSender {
    /// Size of a piece; `usize::MAX` (one piece, which never waits) without a turn.
    piece: usize,
    tx: tokio::sync::mpsc::Sender<Piece>,
    runtime: tokio::runtime::Handle,
    deadline: tokio::time::Instant,
    gzip: Option<flate2::write::GzEncoder<Vec<u8>>>,
    /// Bytes rendered so far (before compression).
    rendered: usize,
}

impl PieceSender {
    /// Sends `bytes` (compressed, when gzip is on: then a piece goes out once the
    /// compressed bytes fill one). False when the client is gone or the deadline passed:
    /// the rendering stops.
    fn send(&mut self, bytes: Vec<u8>, last: bool) -> bool {
        self.rendered += bytes.len();
        let bytes = match self.compress(bytes, last) {
            Ok(Some(out)) => out,
            Ok(None) => return true,
            Err(_) => return false,
        };
        let piece = if last { Piece::Last(bytes.into()) } else { Piece::More(bytes.into()) };
        let sent = self.runtime.block_on(tokio::time::timeout_at(self.deadline, self.tx.send(piece)));
        matches!(sent, Ok(Ok(())))
    }

    /// What goes out for `bytes`: themselves without gzip; with it, the compressed bytes
    /// once they fill a piece (everything left, at the last), none while they do not. The
    /// encoder writes to memory, so an error is not expected; it stops the scrape.
    fn compress(&mut self, bytes: Vec<u8>, last: bool) -> std::io::Result<Option<Vec<u8>>> {
        use std::io::Write;
        let Some(encoder) = self.gzip.as_mut() else {
            return Ok(Some(bytes));
        };
        encoder.write_all(&bytes)?;
        if last {
            return self.gzip.take().map(|e| e.finish()).transpose();
        }
        Ok((encoder.get_ref().len() >= self.piece).then(|| std::mem::take(encoder.get_mut())))
    }
}

/// The body of a scrape of more than one piece. Ends in an error, so that the client
/// sees a cut-off response and not a complete one, when the rendering stopped before
/// its last piece (deadline, or a panic).
struct PieceBody {
    first: Option<Bytes>,
    rx: tokio::sync::mpsc::Receiver<Piece>,
    ended: bool,
}

/// The rendering of a scrape stopped before its end.
#[derive(Debug, thiserror::Error)]
#[error("the scrape stopped before its end")]
struct ScrapeCutOff;

impl HttpBody for PieceBody {
    type Data = Bytes;
    type Error = ScrapeCutOff;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, ScrapeCutOff>>> {
        use std::task::Poll;
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        match std::task::ready!(this.rx.poll_recv(cx)) {
            Some(Piece::More(bytes)) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            Some(Piece::Last(bytes)) => {
                this.ended = true;
                Poll::Ready((!bytes.is_empty()).then(|| Ok(Frame::data(bytes))))
            }
            None => {
                this.ended = true;
                Poll::Ready(Some(Err(ScrapeCutOff)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.ended
    }
}
