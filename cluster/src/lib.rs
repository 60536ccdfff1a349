//! The replicated group store of the Pushgateway.
//!
//! Layout:
//! - [`model`]: grouping keys, metric families, groups (plain ordered data);
//! - [`validate`]: checks of a push that do not depend on the store;
//! - [`store`]: the [`GroupStore`] and its only writer, [`GroupStore::apply`], which
//!   judges every push against the state it is applied to;
//! - [`command`]: the [`Command`]s that change the store and their [`Outcome`]s;
//! - [`float`]: Go's float formatting, shared by messages and renderers.
//!
//! Data flow:
//!
//! ```text
//! HTTP handler: parse key + body ─► Command::Push { key, families, replace, time }
//!     ─► (replication) ─► GroupStore::apply ─► Outcome::{Pushed | Rejected} ─► 200 | 400
//! ```
//!
//! This crate never parses HTTP or exposition text, and `apply` never reads a clock:
//! the same commands give the same state and outcomes on every node.

pub mod codec;
pub mod command;
pub mod float;
pub mod log_store;
pub mod model;
pub mod node;
pub mod peer;
pub mod raft_types;
pub mod recovery;
pub mod state_machine;
pub mod store;
pub mod validate;

pub use command::{Command, Outcome};
pub use model::{
    Bucket, Group, GroupingKey, HistogramValue, LabelPair, Metric, MetricFamily, MetricType, PushedFamilies, Quantile,
    SeriesText, StoredFamily, SummaryValue, UnixNanos, Value,
};
pub use store::{GroupStore, OwnFamily, StoreView};
