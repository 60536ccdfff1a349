//! The group model: grouping keys, metric families as pushed, and groups.
//!
//! Everything here is plain data with deterministic ordering (`BTreeMap`, sorted label
//! vectors), so two nodes that apply the same commands hold byte-identical state.

use std::collections::BTreeMap;
use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Name of the per-group family holding the last successful push time.
pub const PUSH_TIME_NAME: &str = "push_time_seconds";
/// Help of [`PUSH_TIME_NAME`], as upstream writes it.
pub const PUSH_TIME_HELP: &str = "Last Unix time when changing this group in the Pushgateway succeeded.";
/// Name of the per-group family holding the last failed push time.
pub const PUSH_FAILURE_TIME_NAME: &str = "push_failure_time_seconds";
/// Help of [`PUSH_FAILURE_TIME_NAME`], as upstream writes it.
pub const PUSH_FAILURE_TIME_HELP: &str = "Last Unix time when changing this group in the Pushgateway failed.";

/// A point in time, in nanoseconds since the Unix epoch. Zero means "never".
///
/// Time is always carried inside a command (stamped by the node that accepted the
/// request), never read from a clock while applying.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UnixNanos(pub i64);

impl UnixNanos {
    /// Seconds since the epoch as upstream exposes them (`float64(UnixNano()) / 1e9`).
    pub fn as_seconds(self) -> f64 {
        self.0 as f64 / 1e9
    }

    pub fn is_never(self) -> bool {
        self.0 == 0
    }
}

/// The type of a metric family, with upstream's protobuf numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MetricType {
    Counter,
    Gauge,
    Summary,
    Untyped,
    Histogram,
    GaugeHistogram,
}

impl MetricType {
    /// Upper-case name as upstream prints it in messages and the JSON API.
    pub fn upper_name(self) -> &'static str {
        match self {
            MetricType::Counter => "COUNTER",
            MetricType::Gauge => "GAUGE",
            MetricType::Summary => "SUMMARY",
            MetricType::Untyped => "UNTYPED",
            MetricType::Histogram => "HISTOGRAM",
            MetricType::GaugeHistogram => "GAUGE_HISTOGRAM",
        }
    }

    /// Lower-case name used on `# TYPE` lines.
    pub fn lower_name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
        }
    }

    /// Parses a `# TYPE` keyword, case-insensitively, as upstream does.
    pub fn from_keyword(word: &str) -> Option<MetricType> {
        match word.to_ascii_uppercase().as_str() {
            "COUNTER" => Some(MetricType::Counter),
            "GAUGE" => Some(MetricType::Gauge),
            "SUMMARY" => Some(MetricType::Summary),
            "UNTYPED" => Some(MetricType::Untyped),
            "HISTOGRAM" => Some(MetricType::Histogram),
            "GAUGE_HISTOGRAM" => Some(MetricType::GaugeHistogram),
            _ => None,
        }
    }

    /// Protobuf enum number.
    pub fn proto_number(self) -> i32 {
        match self {
            MetricType::Counter => 0,
            MetricType::Gauge => 1,
            MetricType::Summary => 2,
            MetricType::Untyped => 3,
            MetricType::Histogram => 4,
            MetricType::GaugeHistogram => 5,
        }
    }

    pub fn from_proto_number(n: i32) -> Option<MetricType> {
        Some(match n {
            0 => MetricType::Counter,
            1 => MetricType::Gauge,
            2 => MetricType::Summary,
            3 => MetricType::Untyped,
            4 => MetricType::Histogram,
            5 => MetricType::GaugeHistogram,
            _ => return None,
        })
    }
}

/// One label of a series.
///
/// Names and values are [`CompactString`]s: a store of a million series holds several
/// million labels, nearly all short (`instance`, `job`, a host name), which this keeps
/// inline instead of in as many small heap allocations. Serialized as plain strings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LabelPair {
    pub name: CompactString,
    pub value: CompactString,
}

impl LabelPair {
    pub fn new(name: impl Into<CompactString>, value: impl Into<CompactString>) -> Self {
        LabelPair { name: name.into(), value: value.into() }
    }
}

/// A quantile of a summary.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantile {
    pub quantile: f64,
    pub value: f64,
}

/// A cumulative histogram bucket.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub upper_bound: f64,
    pub cumulative_count: u64,
}

/// The value of one series. Which variant a metric carries is checked against its
/// family's type by the consistency check, as upstream does (`... is not a GAUGE`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Counter(f64),
    Gauge(f64),
    Untyped(f64),
    /// Boxed, as is the histogram: most series are scalars, and an unboxed summary would
    /// make every series' value three times as big (48 bytes instead of 16). The encoding
    /// is the same as a struct variant's (bincode writes the fields in order either way).
    Summary(Box<SummaryValue>),
    Histogram(Box<HistogramValue>),
    /// No value field of the family's type was present (protobuf input only).
    Missing,
}

/// A summary's count, sum and quantiles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryValue {
    pub count: u64,
    pub sum: f64,
    pub quantiles: Vec<Quantile>,
}

/// A histogram's count, sum and cumulative buckets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramValue {
    pub count: u64,
    pub sum: f64,
    pub buckets: Vec<Bucket>,
}

impl Value {
    pub fn summary(count: u64, sum: f64, quantiles: Vec<Quantile>) -> Value {
        Value::Summary(Box::new(SummaryValue { count, sum, quantiles }))
    }

    pub fn histogram(count: u64, sum: f64, buckets: Vec<Bucket>) -> Value {
        Value::Histogram(Box::new(HistogramValue { count, sum, buckets }))
    }

    /// Whether this value is what a family of type `t` must hold.
    pub fn fits(&self, t: MetricType) -> bool {
        matches!(
            (self, t),
            (Value::Counter(_), MetricType::Counter)
                | (Value::Gauge(_), MetricType::Gauge)
                | (Value::Untyped(_), MetricType::Untyped)
                | (Value::Summary(_), MetricType::Summary)
                | (Value::Histogram(_), MetricType::Histogram | MetricType::GaugeHistogram)
        )
    }

    /// The scalar of a counter, gauge or untyped value.
    pub fn scalar(&self) -> Option<f64> {
        match self {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
            _ => None,
        }
    }
}

/// One series: labels sorted by name once stored, a value, and the timestamp a client
/// may have sent (which the consistency check rejects).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub labels: Vec<LabelPair>,
    pub value: Value,
    pub timestamp_ms: Option<i64>,
}

impl Metric {
    /// The order of series in a scrape, Go's `metricSorter`: fewer labels first, then
    /// label values position by position (labels are sorted by name).
    pub fn exposition_cmp(&self, other: &Metric) -> std::cmp::Ordering {
        self.labels.len().cmp(&other.labels.len()).then_with(|| {
            let a = self.labels.iter().map(|l| l.value.as_str());
            let b = other.labels.iter().map(|l| l.value.as_str());
            a.cmp(b)
        })
    }
}

/// A metric family as pushed: name, optional help, type, series in pushed order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricFamily {
    pub name: String,
    pub help: Option<String>,
    pub metric_type: MetricType,
    pub metrics: Vec<Metric>,
}

/// The families of one push, by name (a later family of the same name replaces an
/// earlier one, as upstream's map does).
pub type PushedFamilies = BTreeMap<String, MetricFamily>;

/// The labels that identify a group: `job` plus any further pairs from the URL.
///
/// Ordered by `job` first, then by the remaining pairs, so all groups of one job are
/// adjacent in an ordered map; the consistency check relies on that.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupingKey {
    labels: BTreeMap<String, String>,
}

impl GroupingKey {
    /// Builds a key; `labels` must contain `job`.
    pub fn new(labels: BTreeMap<String, String>) -> Self {
        debug_assert!(labels.contains_key("job"));
        GroupingKey { labels }
    }

    pub fn job(&self) -> &str {
        self.labels.get("job").map(String::as_str).unwrap_or("")
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// Whether `self` and `other` agree on every label name they share. Only such
    /// groups can ever expose identical series.
    pub fn compatible_with(&self, other: &GroupingKey) -> bool {
        self.labels.iter().all(|(k, v)| other.labels.get(k).is_none_or(|w| w == v))
    }

    /// The labels every series of this group carries: the grouping labels plus
    /// `instance=""` when the key has no instance, sorted by name.
    pub fn series_labels(&self) -> Vec<LabelPair> {
        let mut out: Vec<LabelPair> = self.labels.iter().map(|(k, v)| LabelPair::new(k.as_str(), v.as_str())).collect();
        if !self.labels.contains_key("instance") {
            out.push(LabelPair::new("instance", ""));
            out.sort();
        }
        out
    }

    /// A canonical byte form, stable across versions: `job` value, then `name=value`
    /// pairs in name order, separated by 0xFF (which never occurs in UTF-8).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.job().as_bytes());
        for (k, v) in self.labels.iter().filter(|(k, _)| k.as_str() != "job") {
            out.push(0xFF);
            out.extend_from_slice(k.as_bytes());
            out.push(0xFF);
            out.extend_from_slice(v.as_bytes());
        }
        out
    }
}

impl Ord for GroupingKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.job().cmp(other.job()).then_with(|| {
            let a = self.labels.iter().filter(|(k, _)| k.as_str() != "job");
            let b = other.labels.iter().filter(|(k, _)| k.as_str() != "job");
            a.cmp(b)
        })
    }
}

impl PartialOrd for GroupingKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for GroupingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

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
}

impl StoredFamily {
    pub fn new(family: MetricFamily, pushed_at: UnixNanos) -> Self {
        StoredFamily { family, pushed_at, exposition_order: Derived::default(), series_text: Derived::default() }
    }

    /// The family's series sorted as a scrape exposes them ([`Metric::exposition_cmp`]),
    /// while the family itself keeps the pushed order (the JSON API shows that order).
    /// Sorted once per push, so that a scrape merging many groups finds every group's
    /// series already in order.
    pub fn sorted_metrics(&self) -> impl Iterator<Item = &Metric> {
        let order = self.exposition_order.0.get_or_init(|| {
            let mut order: Vec<u32> = (0..self.family.metrics.len() as u32).collect();
            order.sort_by(|a, b| self.family.metrics[*a as usize].exposition_cmp(&self.family.metrics[*b as usize]));
            order
        });
        order.iter().map(|i| &self.family.metrics[*i as usize])
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

/// The text of a family's series in exposition order, in one buffer.
#[derive(Clone, Debug, Default)]
pub struct SeriesText(Box<str>);

impl SeriesText {
    pub fn new(text: String) -> Self {
        SeriesText(text.into_boxed_str())
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
    pub key: GroupingKey,
    pub families: BTreeMap<String, StoredFamily>,
    /// Last successful change; never when the group was created by a failed push.
    pub push_time: UnixNanos,
    /// Last failed push; never when no push failed.
    pub push_failure_time: UnixNanos,
    /// When the group was created (used as the JSON `time_stamp` of a timestamp family
    /// that was never set).
    pub created_at: UnixNanos,
}

impl Group {
    pub fn new(key: GroupingKey, created_at: UnixNanos) -> Self {
        Group {
            key,
            families: BTreeMap::new(),
            push_time: UnixNanos::default(),
            push_failure_time: UnixNanos::default(),
            created_at,
        }
    }

    /// As upstream: the last push succeeded unless a failure is newer than it.
    pub fn last_push_successful(&self) -> bool {
        self.push_failure_time <= self.push_time
    }

    /// The two timestamp families of this group, as they are exposed.
    pub fn timestamp_families(&self) -> [(MetricFamily, UnixNanos); 2] {
        let gauge = |name: &str, help: &str, t: UnixNanos| MetricFamily {
            name: name.to_string(),
            help: Some(help.to_string()),
            metric_type: MetricType::Gauge,
            metrics: vec![Metric {
                labels: self.key.series_labels(),
                value: Value::Gauge(t.as_seconds()),
                timestamp_ms: None,
            }],
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape `Value` had before its summary and histogram payloads were boxed: what
    /// existing data directories and peers of an earlier build hold and send.
    #[derive(Serialize, Deserialize)]
    enum UnboxedValue {
        Counter(f64),
        Gauge(f64),
        Untyped(f64),
        Summary { count: u64, sum: f64, quantiles: Vec<Quantile> },
        Histogram { count: u64, sum: f64, buckets: Vec<Bucket> },
        Missing,
    }

    #[test]
    fn boxed_values_encode_as_the_unboxed_ones_did() {
        let quantiles = vec![Quantile { quantile: 0.5, value: 2.5 }];
        let buckets = vec![Bucket { upper_bound: 1.0, cumulative_count: 3 }];
        let pairs = [
            (Value::Gauge(1.5), UnboxedValue::Gauge(1.5)),
            (Value::Counter(2.0), UnboxedValue::Counter(2.0)),
            (Value::Untyped(-1.0), UnboxedValue::Untyped(-1.0)),
            (
                Value::summary(7, 3.5, quantiles.clone()),
                UnboxedValue::Summary { count: 7, sum: 3.5, quantiles: quantiles.clone() },
            ),
            (
                Value::histogram(9, 4.5, buckets.clone()),
                UnboxedValue::Histogram { count: 9, sum: 4.5, buckets: buckets.clone() },
            ),
            (Value::Missing, UnboxedValue::Missing),
        ];
        for (value, old) in pairs {
            let old_bytes = crate::codec::encode(&old).unwrap();
            assert_eq!(crate::codec::encode(&value).unwrap(), old_bytes);
            assert_eq!(crate::codec::decode::<Value>(&old_bytes).unwrap(), value);
        }
    }

    #[test]
    fn a_scalar_series_value_is_two_words() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
    }
}
