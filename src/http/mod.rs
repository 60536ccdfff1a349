//! The HTTP side of the server, in rooms that follow a request:
//!
//! - [`pipeline`]: authentication, the body (size limit, `Content-Encoding`, read once),
//!   routing with the one route table, what the principal may do (its role, a push's
//!   group), and the endpoint → handler switch;
//! - [`push`]: pushes and deletes (grouping key + body → `Command` → `Node::propose`);
//! - [`batch`]: several groups in one push, all or none;
//! - [`scrape`]: `/metrics`, and the one read path every page of the store uses;
//! - [`api`]: the JSON API (`/api/v1/status`, `/api/v1/metrics`, `/api/v1/cluster`);
//! - [`admin`]: wipe, delete by match, membership changes and checkpoints;
//! - [`ui`]: the status page, its static files, the pprof page;
//! - [`answers`]: building responses as upstream's stack answers (Go's `http.Error`,
//!   redirects, CORS), and the one use of the error → status table.
//!
//! Handlers only parse and submit; the store decides (see the `model` crate).

use std::sync::Arc;

use axum::Router;

use cluster::Node;
use model::UnixNanos;

use crate::access::{AccessConfig, LiveAccessConfig};
use crate::config::Config;
use crate::routes::RouteTable;
use crate::self_metrics::SelfMetrics;
use crate::web_config::{LiveWebConfig, WebConfig};

mod admin;
mod answers;
mod api;
mod batch;
pub mod import;
mod pipeline;
mod push;
mod scrape;
mod ui;

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
    /// Its `rate_limit` as it was at start-up (upstream makes its limiter once).
    pub rate_limit: Option<Arc<crate::web_config::RateLimiter>>,
    /// `--web.access-config.file`: roles and push scopes of users and tokens.
    pub access: Arc<LiveAccessConfig>,
    /// Turns to send a scrape in pieces as it is rendered ([`scrape::MAX_STREAMED_SCRAPES`]).
    pub scrape_turns: Arc<tokio::sync::Semaphore>,
    /// The timestamp families' text of the last text scrape, for the next one while the
    /// groups stay the same.
    pub timestamp_text: Arc<std::sync::Mutex<Option<Arc<crate::exposition::render::TimestampText>>>>,
    /// Held while this node's start-up import of `--persistence.file` is undecided
    /// ([`import::ImportHold`]).
    pub import_hold: import::ImportHold,
}

impl AppState {
    /// Without `--web.config.file` and `--web.access-config.file` (see
    /// [`AppState::with_web_config`], [`AppState::with_access_config`]).
    pub fn new(config: Config, node: Node) -> Self {
        AppState {
            routes: Arc::new(RouteTable::new(&config)),
            config: Arc::new(config),
            node,
            metrics: Arc::new(SelfMetrics::new()),
            started: now(),
            quit: Arc::new(tokio::sync::Notify::new()),
            web: Arc::new(LiveWebConfig::new("", WebConfig::none())),
            rate_limit: None,
            access: Arc::new(LiveAccessConfig::new("", AccessConfig::off())),
            scrape_turns: Arc::new(tokio::sync::Semaphore::new(scrape::MAX_STREAMED_SCRAPES)),
            timestamp_text: Arc::default(),
            import_hold: import::ImportHold::none(),
        }
    }

    pub fn with_web_config(self, web: Arc<LiveWebConfig>) -> Self {
        let rate_limit = web.current().rate_limit.clone();
        AppState { web, rate_limit, ..self }
    }

    pub fn with_access_config(self, access: Arc<LiveAccessConfig>) -> Self {
        AppState { access, ..self }
    }
}

/// The wall clock, read once per request by the node that accepts it (the same clock the
/// leader's expiry reads).
pub fn now() -> UnixNanos {
    cluster::wall_clock()
}

/// The application: every request goes through [`pipeline::dispatch`], which consults the one
/// route table.
pub fn router(state: AppState) -> Router {
    Router::new().fallback(pipeline::dispatch).with_state(state)
}
