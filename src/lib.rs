//! A drop-in replacement for the Prometheus Pushgateway whose groups live in the
//! replicated store of the `cluster` crate.
//!
//! Layout, in the order a request flows through it:
//! - [`config`]: the one configuration struct (upstream's flags, also from the environment);
//! - [`routes`]: the one list of routes and upstream-exact routing (redirects, 405, 404);
//! - [`http`]: the request pipeline and the handlers, one room per kind of endpoint;
//! - [`body`]: body size limit and `Content-Encoding` (gzip, snappy);
//! - [`grouping_key`]: the grouping key in the URL;
//! - [`exposition`]: text and protobuf parsing of pushes, content negotiation and
//!   rendering of scrapes;
//! - [`api`], [`ui`]: the JSON API and the web pages;
//! - [`self_metrics`]: the server's own `process_*` and `pushgateway_*` metrics;
//! - [`web_config`], [`listener`]: `--web.config.file` (TLS, basic authentication) and
//!   the HTTPS listener;
//! - [`access`]: `--web.access-config.file` (roles and push scopes of users and tokens);
//!   [`passwords`]: the bcrypt checks both files' users share; [`live_file`]: both files
//!   read again when they change;
//! - [`error`]: the HTTP error enum and its status table.
//!
//! ```text
//! request ─► http::pipeline (auth, body, routes::RouteTable, role, push scope) ─► http::push
//!         ─► grouping_key + body + exposition ─► model::Command ─► Node::propose
//!         ─► (replicated) model::GroupStore::apply ─► Outcome ─► status
//! scrape  ─► http::scrape ─► Node::consistent_reader ─► StoreView ─► exposition::render
//! ```
//!
//! Nothing here names a Raft or storage type: the store is reached only through
//! the facade of the `cluster` crate (`cluster::Node`); the group model is the `model`
//! crate.

pub mod access;
pub mod api;
pub mod body;
pub mod config;
pub mod error;
pub mod exposition;
pub mod grouping_key;
pub mod http;
pub mod import;
pub mod listener;
pub mod live_file;
pub mod logfmt;
pub mod passwords;
pub mod routes;
pub mod self_metrics;
pub mod systemd;
pub mod ui;
pub mod web_config;
pub mod x509_names;
