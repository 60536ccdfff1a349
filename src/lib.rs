//! A drop-in replacement for the Prometheus Pushgateway whose groups live in the
//! replicated store of the `cluster` crate.
//!
//! Layout, in the order a request flows through it:
//! - [`config`]: the one configuration struct (upstream's flags, also from the environment);
//! - [`routes`]: the one list of routes and upstream-exact routing (redirects, 405, 404);
//! - [`server`]: the axum application, one handler per endpoint, the status table use;
//! - [`body`]: body size limit and `Content-Encoding` (gzip, snappy);
//! - [`grouping_key`]: the grouping key in the URL;
//! - [`exposition`]: text and protobuf parsing of pushes, rendering of scrapes;
//! - [`api`], [`ui`]: the JSON API and the web pages;
//! - [`self_metrics`]: the server's own `process_*` and `pushgateway_*` metrics;
//! - [`web_config`], [`listener`]: `--web.config.file` (TLS, basic authentication) and
//!   the HTTPS listener;
//! - [`error`]: the HTTP error enum and its status table.
//!
//! ```text
//! request ─► routes::RouteTable::route ─► server handler ─► grouping_key + body + exposition
//!         ─► cluster::Command ─► Node::propose ─► GroupStore::apply ─► Outcome ─► status
//! scrape  ─► Node::read ─► exposition::render (sorted, merged with own metrics)
//! ```
//!
//! Nothing here names a Raft or storage type: the store is reached only through
//! `cluster::node::Node`.

pub mod api;
pub mod body;
pub mod config;
pub mod error;
pub mod exposition;
pub mod grouping_key;
pub mod listener;
pub mod routes;
pub mod self_metrics;
pub mod server;
pub mod ui;
pub mod web_config;
