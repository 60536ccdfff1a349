//! Metric families as pushed: types, labels, values, series, and time.
//!
//! Everything here is plain data with deterministic ordering (`BTreeMap`, sorted label
//! vectors), so two nodes that apply the same commands hold byte-identical state.

use std::collections::BTreeMap;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::labels::Labels;

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

/// One label of a series, owned: while labels are parsed, merged or changed. A stored
/// series keeps its labels packed ([`Labels`]), which serializes as a sequence of these.
///
/// Names and values are [`CompactString`]s: nearly all are short (`instance`, `job`, a
/// host name) and stay inline instead of in as many small heap allocations. Serialized as
/// plain strings.
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
    /// A value pushed in protobuf with fields the variants above cannot hold (native
    /// histogram buckets, float counts, exemplars, created timestamps, fields of later
    /// versions of `metrics.proto`, unknown fields): kept as pushed, and served back so in
    /// protobuf scrapes. New in replicated-format version 3 ([`crate::version::V3`]):
    /// builds before it cannot decode it.
    Proto(Box<ProtoValue>),
}

/// A protobuf-pushed value kept whole: its classic reading, which the consistency check,
/// text scrapes and the JSON API use, and the fields of the `Metric` message other than
/// its labels (length-delimited field 1) and timestamp (varint field 6), as they were on
/// the wire.
///
/// From replicated-format version 7 ([`crate::version::V7`]), `fields` also holds the
/// label extras, first: for each pushed label pair with fields besides its name and
/// value, a length-delimited field 1 holding the pair's name (field 1) and those other
/// fields as they were. Protobuf scrapes write them back inside the label pair of that
/// name (whose value may be the grouping key's, as upstream overrides it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProtoValue {
    pub classic: Value,
    pub fields: Vec<u8>,
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

    /// The classic reading of this value: itself, or the one a [`Value::Proto`] carries.
    pub fn classic(&self) -> &Value {
        match self {
            Value::Proto(p) => &p.classic,
            other => other,
        }
    }

    /// The protobuf fields a [`Value::Proto`] keeps.
    pub fn proto_fields(&self) -> Option<&[u8]> {
        match self {
            Value::Proto(p) => Some(&p.fields),
            _ => None,
        }
    }

    /// Whether this value is what a family of type `t` must hold.
    pub fn fits(&self, t: MetricType) -> bool {
        matches!(
            (self.classic(), t),
            (Value::Counter(_), MetricType::Counter)
                | (Value::Gauge(_), MetricType::Gauge)
                | (Value::Untyped(_), MetricType::Untyped)
                | (Value::Summary(_), MetricType::Summary)
                | (Value::Histogram(_), MetricType::Histogram | MetricType::GaugeHistogram)
        )
    }

    /// The scalar of a counter, gauge or untyped value.
    pub fn scalar(&self) -> Option<f64> {
        match self.classic() {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
            _ => None,
        }
    }
}

/// One series: labels sorted by name once stored, a value, and the timestamp a client
/// may have sent (which the consistency check rejects).
///
/// Forty bytes: a store holds one per series, a million of them at a time. The labels are
/// packed into one allocation ([`Labels`]: a series' labels never change once stored) and
/// the timestamp is one word. The serde form is that of a vector of label pairs and an
/// `Option<i64>`, as before.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub labels: Labels,
    pub value: Value,
    pub timestamp_ms: Timestamp,
}

/// The timestamp (milliseconds since the epoch) a client sent with a series, if any.
///
/// Held out of line, so that it costs one word in every series instead of two: nearly no
/// stored series has one (the consistency check refuses them; only a store with the check
/// disabled keeps them). Every `i64` stays possible, so no value is taken as a sentinel.
/// Serialized as `Option<i64>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(Option<Box<i64>>);

impl Timestamp {
    /// No timestamp.
    pub const NONE: Timestamp = Timestamp(None);

    /// The timestamp, if the client sent one.
    pub fn get(&self) -> Option<i64> {
        self.0.as_deref().copied()
    }

    /// Whether the client sent one.
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

impl From<Option<i64>> for Timestamp {
    fn from(ms: Option<i64>) -> Self {
        Timestamp(ms.map(Box::new))
    }
}

impl Metric {
    /// The order of series in a scrape, Go's `metricSorter`: fewer labels first, then
    /// label values position by position (labels are sorted by name).
    pub fn exposition_cmp(&self, other: &Metric) -> std::cmp::Ordering {
        self.labels.exposition_cmp(&other.labels)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The replicated encoding (bincode 2, serde mode, standard configuration).
    fn bincode_encode<T: Serialize>(value: &T) -> Result<Vec<u8>, bincode::error::EncodeError> {
        bincode::serde::encode_to_vec(value, bincode::config::standard())
    }

    fn bincode_decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::error::DecodeError> {
        bincode::serde::decode_from_slice(bytes, bincode::config::standard()).map(|(v, _)| v)
    }

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
            let old_bytes = bincode_encode(&old).unwrap();
            assert_eq!(bincode_encode(&value).unwrap(), old_bytes);
            assert_eq!(bincode_decode::<Value>(&old_bytes).unwrap(), value);
        }
    }

    #[test]
    fn a_scalar_series_value_is_two_words() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
    }

    #[test]
    fn a_series_is_five_words() {
        assert_eq!(std::mem::size_of::<Timestamp>(), 8);
        assert_eq!(std::mem::size_of::<Metric>(), 40);
    }

    /// The shape `Metric` had before its labels were boxed and its timestamp held out of
    /// line: what existing data directories and peers of an earlier build hold and send.
    #[derive(Serialize, Deserialize)]
    struct VecMetric {
        labels: Vec<LabelPair>,
        value: Value,
        timestamp_ms: Option<i64>,
    }

    #[test]
    fn series_encode_as_they_did_with_a_vector_and_an_option() {
        for (labels, ts) in [
            (vec![], None),
            (vec![LabelPair::new("a", "b"), LabelPair::new("c", "")], Some(-5)),
            (vec![LabelPair::new("x", "y")], Some(i64::MIN)),
        ] {
            let old = VecMetric { labels: labels.clone(), value: Value::Gauge(2.5), timestamp_ms: ts };
            let new = Metric { labels: labels.into(), value: Value::Gauge(2.5), timestamp_ms: ts.into() };
            let old_bytes = bincode_encode(&old).unwrap();
            assert_eq!(bincode_encode(&new).unwrap(), old_bytes);
            assert_eq!(bincode_decode::<Metric>(&old_bytes).unwrap(), new);
            assert_eq!(new.timestamp_ms.get(), ts);
        }
    }
}
