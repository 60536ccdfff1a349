//! The pure core of the Pushgateway: what a group is, what a push may contain, and the
//! one function that changes the stored groups.
//!
//! Layout:
//! - [`metric`]: metric families as pushed (types, labels, values, series, time);
//! - [`grouping_key`]: the labels in the URL that name a group;
//! - [`labels`]: a series' labels, packed into one allocation;
//! - [`group`]: a stored group and its two timestamp families;
//! - [`command`]: the [`Command`]s that change the store and their [`Outcome`]s;
//! - [`limits`]: what one push may carry, judged first and in linear time;
//! - [`check`]: the whole consistency check of a push;
//! - [`selector`]: label matchers on grouping keys (delete by match);
//! - [`quota`]: what the store holds ([`Usage`], counted by `apply`) and its quotas;
//! - [`store`]: the [`GroupStore`] and its only writer, [`GroupStore::apply`];
//! - [`own_families`]: the server's own families, pinned data the check depends on;
//! - [`version`]: the replicated format's version, which gates new commands and rules;
//! - [`go_format`]: Go-compatible float formatting and quoting, for renderers and messages;
//! - [`wire`]: the protobuf wire format's fields, for values kept whole.
//!
//! ```text
//! HTTP side: parse key + body ─► Command::Push { key, families, replace, time }
//!     ─► (replication) ─► GroupStore::apply ─► check ─► Outcome::{Pushed | Rejected}
//! ```
//!
//! No I/O, no clock, no environment: the same commands give the same state and the same
//! outcomes on every node, at every restart. Every input of a verdict is either in the
//! command or pinned here as data ([`own_families::OWN_FAMILIES`],
//! [`limits::PushLimits::CEILING`]).

pub mod check;
pub mod command;
pub mod go_format;
pub mod group;
pub mod grouping_key;
pub mod labels;
pub mod limits;
pub mod metric;
pub mod own_families;
pub mod quota;
pub mod selector;
pub mod store;
pub mod version;
pub mod wire;

pub use command::{Command, Outcome, Push, MAX_BATCH_GROUPS};
pub use group::{
    Group, SeriesText, StoredFamily, Ttl, PUSH_FAILURE_TIME_HELP, PUSH_FAILURE_TIME_NAME, PUSH_TIME_HELP,
    PUSH_TIME_NAME,
};
pub use grouping_key::GroupingKey;
pub use labels::{Label, Labels};
pub use limits::{LimitExceeded, PushLimits};
pub use metric::{
    Bucket, HistogramValue, LabelPair, Metric, MetricFamily, MetricType, ProtoValue, PushedFamilies, Quantile,
    SummaryValue, Timestamp, UnixNanos, Value,
};
pub use own_families::OwnFamily;
pub use quota::{QuotaExceeded, StoreQuotas, Usage};
pub use store::{GroupStore, StoreView};
pub use version::FormatVersion;
