//! Groups: the stored families of one grouping key and the group's two timestamps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::grouping_key::GroupingKey;
use crate::labels::Labels;
use crate::metric::{Metric, MetricFamily, MetricType, Timestamp, UnixNanos, Value};
use crate::quota::Usage;

/// Name of the per-group family holding the last successful push time.
pub const PUSH_TIME_NAME: &str = "push_time_seconds";
/// Help of [`PUSH_TIME_NAME`], as upstream writes it.
pub const PUSH_TIME_HELP: &str = "Last Unix time when changing this group in the Pushgateway succeeded.";
/// Name of the per-group family holding the last failed push time.
pub const PUSH_FAILURE_TIME_NAME: &str = "push_failure_time_seconds";
/// Help of [`PUSH_FAILURE_TIME_NAME`], as upstream writes it.
pub const PUSH_FAILURE_TIME_HELP: &str = "Last Unix time when changing this group in the Pushgateway failed.";

/// A stored family with the time of the push that last wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredFamily {
    pub family: MetricFamily,
    pub pushed_at: UnixNanos,
    /// The family's series in exposition order, computed on first use (see
    /// [`StoredFamily::sorted_metrics`]); not stored, not compared.
    #[serde(skip)]
    exposition_order: Derived<Vec<u32>>,
    /// The text of those series, rendered on first use (see [`StoredFamily::series_text`]);
    /// not stored, not compared.
    #[serde(skip)]
    series_text: Derived<SeriesText>,
    /// What the family counts against the store's quotas ([`Usage::of_family`]).
    #[serde(skip)]
    usage: Derived<Usage>,
}

impl StoredFamily {
    pub fn new(family: MetricFamily, pushed_at: UnixNanos) -> Self {
        StoredFamily {
            family,
            pushed_at,
            exposition_order: Derived::default(),
            series_text: Derived::default(),
            usage: Derived::default(),
        }
    }

    /// What the family counts against the store's quotas: computed once (linear in the
    /// family), then kept with it.
    pub fn usage(&self) -> Usage {
        *self.usage.0.get_or_init(|| Usage::of_family(&self.family, 0))
    }

    /// The family's series sorted as a scrape exposes them ([`Metric::exposition_cmp`]),
    /// while the family itself keeps the pushed order (the JSON API shows that order).
    /// Sorted once per push, so that a scrape merging many groups finds every group's
    /// series already in order.
    pub fn sorted_metrics(&self) -> impl Iterator<Item = &Metric> {
        self.exposition_order().iter().map(|i| &self.family.metrics[*i as usize])
    }

    /// The positions in `family.metrics` of [`StoredFamily::sorted_metrics`].
    pub fn exposition_order(&self) -> &[u32] {
        self.exposition_order.0.get_or_init(|| {
            let mut order: Vec<u32> = (0..self.family.metrics.len() as u32).collect();
            order.sort_by(|a, b| self.family.metrics[*a as usize].exposition_cmp(&self.family.metrics[*b as usize]));
            order
        })
    }

    /// The exposition text of [`StoredFamily::sorted_metrics`], rendered by `render` on
    /// first use and kept while the family is unchanged (a push replaces the family, and
    /// the cache with it). A scrape of a large store then copies text instead of
    /// formatting every number again. `render` must be the same function on every call:
    /// the format is the caller's, this crate does not know it.
    pub fn series_text(&self, render: impl FnOnce(&StoredFamily) -> SeriesText) -> &SeriesText {
        self.series_text.0.get_or_init(|| render(self))
    }
}

/// The text of a family's series in exposition order, in one buffer; none for a family
/// whose text depends on the scrape (names a scrape may escape).
#[derive(Clone, Debug, Default)]
pub struct SeriesText(Option<Box<str>>);

impl SeriesText {
    /// Kept in an allocation of exactly its length, copied out of the buffer it was
    /// rendered in: shrinking that buffer in place (as an allocator may do for a realloc to
    /// more than half the size) would keep up to twice the text for as long as the family
    /// is stored.
    pub fn new(text: Option<String>) -> Self {
        SeriesText(text.map(|t| if t.capacity() == t.len() { t.into_boxed_str() } else { Box::from(t.as_str()) }))
    }

    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// A value derived from its owner and cached there: equal whatever it holds, so the
/// owner's equality ignores it.
#[derive(Clone, Default)]
struct Derived<T>(std::sync::OnceLock<T>);

impl<T> PartialEq for Derived<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> std::fmt::Debug for Derived<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "Derived(cached)" } else { "Derived(empty)" })
    }
}

/// One group: its pushed families (labels already completed with the grouping labels)
/// and its two timestamps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Never changed once the group exists: the group's timestamp series labels are
    /// derived from it and kept ([`Group::series_labels`]).
    pub key: GroupingKey,
    pub families: BTreeMap<String, StoredFamily>,
    /// Last successful change; never when the group was created by a failed push.
    pub push_time: UnixNanos,
    /// Last failed push; never when no push failed.
    pub push_failure_time: UnixNanos,
    /// When the group was created (used as the JSON `time_stamp` of a timestamp family
    /// that was never set).
    pub created_at: UnixNanos,
    /// The time to live its last successful push named ([`crate::Command::PushWith`]);
    /// none: the cluster's default, if any. Not in the serde form, which the earlier
    /// formats fixed: the storage keeps it beside the group.
    #[serde(skip)]
    pub ttl: Option<Ttl>,
    /// The labels of its timestamp series ([`GroupingKey::series_labels`]), derived from
    /// the key (which never changes) on first use and kept: every scrape exposes them.
    #[serde(skip)]
    series_labels: Derived<Labels>,
}

/// How long a group lives after its last successful push (or, never pushed successfully,
/// its creation) before [`crate::Command::Expire`] removes it; in milliseconds, positive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ttl(pub u64);

impl Ttl {
    pub fn millis(self) -> u64 {
        self.0
    }

    fn nanos(self) -> i64 {
        i64::try_from(self.0.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
    }
}

impl Group {
    pub fn new(key: GroupingKey, created_at: UnixNanos) -> Self {
        Group {
            key,
            families: BTreeMap::new(),
            push_time: UnixNanos::default(),
            push_failure_time: UnixNanos::default(),
            created_at,
            ttl: None,
            series_labels: Derived::default(),
        }
    }

    /// The time its TTL counts from: the last successful push, or its creation.
    pub fn last_pushed(&self) -> UnixNanos {
        if self.push_time.is_never() {
            self.created_at
        } else {
            self.push_time
        }
    }

    /// When the group expires, by its own TTL or else `default`; never without either.
    pub fn expires_at(&self, default: Option<Ttl>) -> Option<UnixNanos> {
        let ttl = self.ttl.or(default)?;
        Some(UnixNanos(self.last_pushed().0.saturating_add(ttl.nanos())))
    }

    /// Whether an expiry judged at `now` removes it.
    pub fn expired(&self, now: UnixNanos, default: Option<Ttl>) -> bool {
        self.expires_at(default).is_some_and(|at| at <= now)
    }

    /// As upstream: the last push succeeded unless a failure is newer than it.
    pub fn last_push_successful(&self) -> bool {
        self.push_failure_time <= self.push_time
    }

    /// The labels of its timestamp series: the grouping labels, and `instance=""` when
    /// the key has no instance.
    pub fn series_labels(&self) -> &Labels {
        self.series_labels.0.get_or_init(|| self.key.series_labels())
    }

    /// Its series of a timestamp family: `t` in seconds (zero when never).
    pub fn timestamp_series(&self, t: UnixNanos) -> Metric {
        Metric {
            labels: self.series_labels().clone(),
            value: Value::Gauge(t.as_seconds()),
            timestamp_ms: Timestamp::NONE,
        }
    }

    /// The two timestamp families of this group, as they are exposed.
    pub fn timestamp_families(&self) -> [(MetricFamily, UnixNanos); 2] {
        let gauge = |name: &str, help: &str, t: UnixNanos| MetricFamily {
            name: name.to_string(),
            help: Some(help.to_string()),
            metric_type: MetricType::Gauge,
            metrics: vec![self.timestamp_series(t)],
        };
        let stamp = |t: UnixNanos| if t.is_never() { self.created_at } else { t };
        [
            (
                gauge(PUSH_FAILURE_TIME_NAME, PUSH_FAILURE_TIME_HELP, self.push_failure_time),
                stamp(self.push_failure_time),
            ),
            (gauge(PUSH_TIME_NAME, PUSH_TIME_HELP, self.push_time), stamp(self.push_time)),
        ]
    }
}
