//! The delimited protobuf format (`io.prometheus.client.MetricFamily`, each message
//! preceded by its varint length), for pushes and for scrapes.
//!
//! The messages are declared by hand with `prost` derives, so no `protoc` is needed.
//! Label names and values are read as bytes: invalid UTF-8 is a push the consistency
//! check refuses (recording the failure), not a decoding error, as upstream has it.

use std::collections::BTreeMap;

use bytes::Buf;
use model::go_format::{metric_debug, proto_text_string};
use model::{
    wire, Bucket, GroupingKey, HistogramValue, LabelPair, Labels, Metric, MetricFamily, MetricType, PushLimits,
    PushedFamilies, Quantile, SummaryValue, Timestamp, Value,
};
use prost::Message;

use super::text_parse::go_quote;

#[derive(Clone, PartialEq, Message)]
pub struct PbLabelPair {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub name: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub value: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbGauge {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbCounter {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbQuantile {
    #[prost(double, optional, tag = "1")]
    pub quantile: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbSummary {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub quantile: Vec<PbQuantile>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbUntyped {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbBucket {
    #[prost(uint64, optional, tag = "1")]
    pub cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub upper_bound: Option<f64>,
    /// Float histograms only; read for text scrapes of values kept whole, never written.
    #[prost(double, optional, tag = "4")]
    pub cumulative_count_float: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbHistogram {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<PbBucket>,
    /// Float histograms only; read for text scrapes of values kept whole, never written.
    #[prost(double, optional, tag = "4")]
    pub sample_count_float: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbMetric {
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<PbLabelPair>,
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<PbGauge>,
    #[prost(message, optional, tag = "3")]
    pub counter: Option<PbCounter>,
    #[prost(message, optional, tag = "4")]
    pub summary: Option<PbSummary>,
    #[prost(message, optional, tag = "5")]
    pub untyped: Option<PbUntyped>,
    #[prost(int64, optional, tag = "6")]
    pub timestamp_ms: Option<i64>,
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<PbHistogram>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbMetricFamily {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub name: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub help: Option<Vec<u8>>,
    #[prost(int32, optional, tag = "3")]
    pub r#type: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<PbMetric>,
}

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The stream ended inside a message (upstream: `unexpected EOF`).
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// A length prefix longer than five bytes (upstream's `pbutil.ReadDelimited`).
    #[error("invalid varint32 encountered")]
    InvalidLength,
    #[error("proto: {0}")]
    Invalid(String),
    /// A family name or help that is not UTF-8 text.
    #[error("proto: invalid UTF-8 in metric family name or help")]
    InvalidUtf8,
    #[error("proto: unknown metric type {0}")]
    UnknownType(i32),
    /// More series, or a series with more labels, than a push may carry: found by
    /// scanning the wire format before decoding, so nothing of such a body is built.
    #[error("{0}")]
    Limit(model::LimitExceeded),
}

/// A decoded push: the families, and the labels that make the push invalid although it
/// decoded (names or values that are not UTF-8), by family. Upstream refuses such a push
/// in its consistency check and records the failure, so the problem travels with the
/// push (see [`DecodedPush::defect`]).
#[derive(Debug, Default)]
pub struct DecodedPush {
    pub families: PushedFamilies,
    pub not_utf8: BTreeMap<String, Vec<NotUtf8>>,
}

/// The most bytes of a push's defect (its words, carried in the log entry with the push).
pub const MAX_DEFECT_BYTES: usize = 64 * 1024;

/// A pushed label whose name or value is not UTF-8 (kept in the families with U+FFFD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUtf8 {
    /// The series' index in its family.
    pub metric: usize,
    /// The label's name, as kept.
    pub name: String,
    /// The name's or the value's bytes as pushed.
    pub raw: Vec<u8>,
    pub in_name: bool,
}

impl DecodedPush {
    /// Why the push is refused, in upstream's words, once its grouping key is known: for
    /// each series with such a label (the first by name), the series as it would be
    /// stored and the label. A value that the grouping key overrides is no problem, as
    /// upstream overrides it before its check; nor is one in the two timestamp families,
    /// which the server's own replace (upstream replaces `push_time_seconds` always, and
    /// `push_failure_time_seconds` in a new group, before its check).
    pub fn defect(&self, key: &GroupingKey) -> Option<String> {
        let mut problems = model::check::Problems::default();
        for (family, bad) in &self.not_utf8 {
            if family == model::PUSH_TIME_NAME || family == model::PUSH_FAILURE_TIME_NAME {
                continue;
            }
            let Some(pushed) = self.families.get(family) else { continue };
            let mut at = 0;
            while at < bad.len() {
                let metric = bad[at].metric;
                let end = at + bad[at..].iter().take_while(|b| b.metric == metric).count();
                let first = bad[at..end]
                    .iter()
                    .filter(|b| b.in_name || !key.labels().contains_key(&b.name))
                    .min_by(|a, b| a.name.cmp(&b.name));
                if let Some(first) = first {
                    problems.add(|| not_utf8_message(pushed, &bad[at..end], first, key));
                }
                at = end;
            }
        }
        // The words travel in the log entry with the push: bounded, whatever the body.
        problems.into_result().err().map(|mut words| {
            if words.len() > MAX_DEFECT_BYTES {
                let mut end = MAX_DEFECT_BYTES;
                while !words.is_char_boundary(end) {
                    end -= 1;
                }
                words.truncate(end);
                words.push_str(" ...");
            }
            words
        })
    }
}

/// Upstream's words for a series with labels that are not UTF-8 (`all` of them, `bad` the
/// one named): the series as stored, the pushed bytes in place of the kept values.
fn not_utf8_message(family: &MetricFamily, all: &[NotUtf8], bad: &NotUtf8, key: &GroupingKey) -> String {
    let name = family.name.as_str();
    // The one series alone (a clone of the whole family for each named series would make
    // a body of many such series quadratic).
    let one = MetricFamily {
        name: family.name.clone(),
        help: None,
        metric_type: family.metric_type,
        metrics: vec![family.metrics[bad.metric].clone()],
    };
    let sanitized = model::check::sanitize(PushedFamilies::from([(name.to_string(), one)]), key);
    let mut debug = sanitized.get(name).and_then(|f| f.metrics.first()).map(metric_debug).unwrap_or_default();
    if bad.in_name {
        return format!("collected metric {name:?} {{ {debug}}} has a label with an invalid name: {}", bad.name);
    }
    for value in all.iter().filter(|b| !b.in_name && !key.labels().contains_key(&b.name)) {
        let label = proto_text_string(&value.name);
        let kept = format!("label:<name:{label} value:{} >", proto_text_string(lossy_text(&value.raw)));
        if let Some(at) = debug.find(&kept) {
            debug.replace_range(
                at..at + kept.len(),
                &format!("label:<name:{label} value:{} >", proto_text_string(&value.raw)),
            );
        }
    }
    format!(
        "collected metric {name:?} {{ {debug}}} has a label named {} whose value is not utf8: {}",
        go_quote(&bad.name),
        go_quote(&bad.raw)
    )
}

fn lossy_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Decodes a stream of length-delimited families. A later family with the same name
/// replaces an earlier one. Bounded by [`PushLimits::CEILING`].
pub fn parse_delimited(input: &[u8]) -> Result<DecodedPush, ProtobufError> {
    parse_delimited_within(input, &PushLimits::CEILING)
}

/// Like [`parse_delimited`], refusing the body when its families hold more series in all,
/// or a series more labels, than `limits` allow. Each family's message is scanned for
/// that before it is decoded (counting fields, allocating nothing): a few bytes on the
/// wire can otherwise become a hundred times as many in memory.
pub fn parse_delimited_within(mut input: &[u8], limits: &PushLimits) -> Result<DecodedPush, ProtobufError> {
    let mut out = DecodedPush::default();
    let mut series = 0usize;
    while input.has_remaining() {
        let Some((len, used)) = length_prefix(input)? else { break };
        input = &input[used..];
        // Upstream reads the message with `io.ReadFull`: no byte at all is its `io.EOF`,
        // which ends the body as a clean end does; some but not all, `unexpected EOF`.
        if input.is_empty() && len > 0 {
            break;
        }
        let len = usize::try_from(len).map_err(|_| ProtobufError::UnexpectedEof)?;
        if len > input.len() {
            return Err(ProtobufError::UnexpectedEof);
        }
        let (message, rest) = input.split_at(len);
        input = rest;
        count_within(message, limits, &mut series)?;
        // Go's decoder keeps a field of a known number but another wire type as an unknown
        // field; prost refuses it. So a message prost refuses is read again without such
        // fields (they stay in the raw metrics below, and so in what is kept).
        let decoded = match PbMetricFamily::decode(message) {
            Err(first) => match without_mistyped(message, Schema::Family) {
                Some(cleaned) => PbMetricFamily::decode(&cleaned[..]).map_err(|_| first),
                None => Err(first),
            },
            decoded => decoded,
        };
        let pb = decoded.map_err(|e| {
            let message = e.to_string();
            const WIRE_TYPE: &str = "invalid wire type value: ";
            // Upstream's words (golang/protobuf, recorded) where they are prost's in other
            // words: a message, a varint or a group cut short is `unexpected EOF`; an end of
            // group without its start is a wire type 4 it cannot skip.
            if message.contains("buffer underflow") || message.contains("invalid varint") {
                ProtobufError::UnexpectedEof
            } else if message.contains("EndGroup") || message.contains("unexpected end group tag") {
                ProtobufError::Invalid("can't skip unknown wire type 4".to_string())
            } else if let Some(at) = message.find(WIRE_TYPE) {
                // Upstream's words (golang/protobuf) for a wire type 6 or 7, in any field.
                let wire_type = message[at + WIRE_TYPE.len()..].split(|c: char| !c.is_ascii_digit()).next();
                ProtobufError::Invalid(format!("can't skip unknown wire type {}", wire_type.unwrap_or_default()))
            } else {
                ProtobufError::Invalid(message)
            }
        })?;
        let raw_metrics =
            wire::fields(message).filter(|f| f.number == 4 && f.wire_type == wire::LEN).map(|f| f.payload);
        let mut not_utf8 = Vec::new();
        let family = from_pb(pb, raw_metrics, &mut not_utf8)?;
        // A later family of the same name replaces an earlier one, its labels' problems too.
        out.not_utf8.remove(&family.name);
        if !not_utf8.is_empty() {
            out.not_utf8.insert(family.name.clone(), not_utf8);
        }
        out.families.insert(family.name.clone(), family);
    }
    Ok(out)
}

/// A message's length prefix as upstream's `pbutil.ReadDelimited` reads it: a varint of at
/// most five bytes (one longer is an error, not a length), and none when the body ends
/// inside it (its reader's `io.EOF`, which ends the body as a clean end does). Returns the
/// length and the bytes it took.
fn length_prefix(input: &[u8]) -> Result<Option<(u64, usize)>, ProtobufError> {
    const MAX_BYTES: usize = 5;
    let mut len = 0u64;
    for (i, byte) in input.iter().take(MAX_BYTES).enumerate() {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((len, i + 1)));
        }
    }
    if input.len() >= MAX_BYTES {
        return Err(ProtobufError::InvalidLength);
    }
    Ok(None)
}

/// Counts the metrics (field 4) of one encoded family into `series`, and the labels
/// (field 1) of each, against `limits`. Linear in the message; a malformed message is
/// left for the decoder to report.
fn count_within(family: &[u8], limits: &PushLimits, series: &mut usize) -> Result<(), ProtobufError> {
    let exceeded = |index: usize, found: usize| ProtobufError::Limit(limits.stopped_at(index, found));
    for metric in wire::fields(family).filter(|f| f.number == 4 && f.wire_type == wire::LEN) {
        *series += 1;
        if *series > limits.series {
            return Err(exceeded(4, *series));
        }
        let labels = wire::fields(metric.payload).filter(|f| f.number == 1 && f.wire_type == wire::LEN).count();
        if labels > limits.labels_per_series {
            return Err(exceeded(1, labels));
        }
    }
    Ok(())
}

/// The messages of `metrics.proto` as this decoder declares them, for
/// [`without_mistyped`].
#[derive(Clone, Copy)]
enum Schema {
    Family,
    Metric,
    Label,
    /// A gauge's, counter's or untyped's message: field 1 is all prost is told of.
    Scalar,
    Summary,
    Quantile,
    Histogram,
    Bucket,
}

impl Schema {
    /// The wire type a declared field must have, and the message it holds if any.
    fn declared(self, number: u64) -> Option<(u8, Option<Schema>)> {
        use wire::{FIXED64, LEN, VARINT};
        use Schema::*;
        Some(match (self, number) {
            (Family, 1 | 2) | (Label, 1 | 2) => (LEN, None),
            (Family, 3) | (Metric, 6) | (Summary, 1) | (Histogram, 1) | (Bucket, 1) => (VARINT, None),
            (Family, 4) => (LEN, Some(Metric)),
            (Metric, 1) => (LEN, Some(Label)),
            (Metric, 2 | 3 | 5) => (LEN, Some(Scalar)),
            (Metric, 4) => (LEN, Some(Summary)),
            (Metric, 7) => (LEN, Some(Histogram)),
            (Summary, 3) => (LEN, Some(Quantile)),
            (Histogram, 3) => (LEN, Some(Bucket)),
            (Scalar, 1) | (Summary, 2) | (Quantile, 1 | 2) | (Histogram, 2 | 4) | (Bucket, 2 | 4) => (FIXED64, None),
            _ => return None,
        })
    }
}

/// `message` without the declared fields that have another wire type than declared, in
/// it and in the declared messages inside it; `None` if it does not walk to its end (the
/// decoder's error stands). Linear: the nesting is the schema's, four deep at most.
fn without_mistyped(message: &[u8], schema: Schema) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(message.len());
    let mut walked = 0usize;
    for field in wire::fields(message) {
        walked += field.whole.len();
        match schema.declared(field.number) {
            Some((wire_type, _)) if wire_type != field.wire_type => {}
            Some((_, Some(inner))) => wire::put_len(field.number, &without_mistyped(field.payload, inner)?, &mut out),
            _ => out.extend_from_slice(field.whole),
        }
    }
    (walked == message.len()).then_some(out)
}

/// The value of a pushed metric message: its classic reading, kept whole
/// ([`Value::Proto`]) when the message holds more than that reading encodes back to
/// (any field but the labels and the timestamp that the classic value does not
/// reproduce byte for byte: native histogram fields, float counts, exemplars, created
/// timestamps, a second value field, unknown fields), or label pairs with fields besides
/// their name and value (kept as label extras, first; see [`model::ProtoValue`]).
fn kept_whole(classic: Value, raw_metric: &[u8]) -> Value {
    let mut kept = Vec::new();
    let mut rest = Vec::new();
    for field in wire::fields(raw_metric) {
        match (field.number, field.wire_type) {
            (1, wire::LEN) => label_extras(field.payload, &mut kept),
            (6, wire::VARINT) => {}
            _ => rest.extend_from_slice(field.whole),
        }
    }
    let ours = to_pb_metric(&Metric { labels: Labels::new(), value: classic.clone(), timestamp_ms: Timestamp::NONE })
        .encode_to_vec();
    if kept.is_empty() && rest == ours {
        return classic;
    }
    kept.extend_from_slice(&rest);
    Value::Proto(Box::new(model::ProtoValue { classic, fields: kept }))
}

/// Appends a label pair's extras (see [`model::ProtoValue`]) if it has any: its name as
/// decoded (the last field 1 of the right wire type) and every field but its name and
/// value.
fn label_extras(pair: &[u8], out: &mut Vec<u8>) {
    let mut name: &[u8] = &[];
    let mut extras = Vec::new();
    for field in wire::fields(pair) {
        match (field.number, field.wire_type) {
            (1, wire::LEN) => name = field.payload,
            (2, wire::LEN) => {}
            _ => extras.extend_from_slice(field.whole),
        }
    }
    if extras.is_empty() {
        return;
    }
    let mut entry = Vec::with_capacity(name.len() + extras.len() + 2);
    wire::put_len(1, name, &mut entry);
    entry.extend_from_slice(&extras);
    wire::put_len(1, &entry, out);
}

/// The float counts of a histogram kept whole (`sample_count_float`, and each bucket's
/// `cumulative_count_float`), which a text scrape prints instead of the integer counts,
/// as upstream 1.11 does (a zero float count means the integer one).
pub fn histogram_float_counts(fields: &[u8]) -> Option<(f64, Vec<f64>)> {
    let h = kept_metric(fields)?.histogram?;
    let buckets = h.bucket.iter().map(|b| b.cumulative_count_float.unwrap_or(0.0)).collect();
    Some((h.sample_count_float.unwrap_or(0.0), buckets))
}

/// The value upstream's JSON API shows for a value kept whole of a family that is neither
/// a summary nor a histogram: the gauge's, else the counter's, else the untyped's (Go's
/// `getValue`), whatever the family's type; `None` if the metric holds none of them.
pub fn api_scalar(fields: &[u8]) -> Option<f64> {
    let m = kept_metric(fields)?;
    let value = m.gauge.map(|g| g.value).or(m.counter.map(|c| c.value)).or(m.untyped.map(|u| u.value))?;
    Some(value.unwrap_or(0.0))
}

/// The kept fields of a value read as a `Metric` message, as Go's decoder reads them
/// (see [`without_mistyped`]).
fn kept_metric(fields: &[u8]) -> Option<PbMetric> {
    PbMetric::decode(fields).ok().or_else(|| PbMetric::decode(&without_mistyped(fields, Schema::Metric)?[..]).ok())
}

fn text(bytes: Option<Vec<u8>>) -> Result<Option<String>, ProtobufError> {
    bytes.map(|b| String::from_utf8(b).map_err(|_| ProtobufError::InvalidUtf8)).transpose()
}

/// `bytes` as text; if they are not UTF-8, with U+FFFD in their place, and `bad` told of
/// them (the bytes and the text kept).
fn text_or_kept(bytes: Vec<u8>, bad: impl FnOnce(Vec<u8>, &str)) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| {
        let raw = e.into_bytes();
        let kept = lossy_text(&raw);
        bad(raw, &kept);
        kept
    })
}

fn from_pb<'a>(
    pb: PbMetricFamily,
    mut raw_metrics: impl Iterator<Item = &'a [u8]>,
    not_utf8: &mut Vec<NotUtf8>,
) -> Result<MetricFamily, ProtobufError> {
    let raw_type = pb.r#type.unwrap_or(0);
    let metric_type = MetricType::from_proto_number(raw_type).ok_or(ProtobufError::UnknownType(raw_type))?;
    let name = text(pb.name)?.unwrap_or_default();
    let metrics = pb
        .metric
        .into_iter()
        .enumerate()
        .map(|(metric, m)| {
            let classic = pick_value(&m, metric_type);
            let value = match raw_metrics.next() {
                Some(raw) => kept_whole(classic, raw),
                None => classic,
            };
            let labels = m
                .label
                .into_iter()
                .map(|l| {
                    let label = text_or_kept(l.name.unwrap_or_default(), |raw, name| {
                        not_utf8.push(NotUtf8 { metric, name: name.to_string(), raw, in_name: true })
                    });
                    let value = text_or_kept(l.value.unwrap_or_default(), |raw, _| {
                        not_utf8.push(NotUtf8 { metric, name: label.clone(), raw, in_name: false })
                    });
                    LabelPair::new(label, value)
                })
                .collect();
            Metric { labels, value, timestamp_ms: m.timestamp_ms.into() }
        })
        .collect();
    Ok(MetricFamily { name, help: text(pb.help)?, metric_type, metrics })
}

/// The value field that matches the family type; failing that, any present field (so
/// the check reports the mismatch), failing that [`Value::Missing`].
fn pick_value(m: &PbMetric, t: MetricType) -> Value {
    let counter = m.counter.as_ref().map(|c| Value::Counter(c.value.unwrap_or(0.0)));
    let gauge = m.gauge.as_ref().map(|g| Value::Gauge(g.value.unwrap_or(0.0)));
    let untyped = m.untyped.as_ref().map(|u| Value::Untyped(u.value.unwrap_or(0.0)));
    let summary = m.summary.as_ref().map(|s| {
        Value::summary(
            s.sample_count.unwrap_or(0),
            s.sample_sum.unwrap_or(0.0),
            s.quantile
                .iter()
                .map(|q| Quantile { quantile: q.quantile.unwrap_or(0.0), value: q.value.unwrap_or(0.0) })
                .collect(),
        )
    });
    let histogram = m.histogram.as_ref().map(|h| {
        Value::histogram(
            h.sample_count.unwrap_or(0),
            h.sample_sum.unwrap_or(0.0),
            h.bucket
                .iter()
                .map(|b| Bucket {
                    upper_bound: b.upper_bound.unwrap_or(0.0),
                    cumulative_count: b.cumulative_count.unwrap_or(0),
                })
                .collect(),
        )
    });
    let preferred = match t {
        MetricType::Counter => counter.clone(),
        MetricType::Gauge => gauge.clone(),
        MetricType::Untyped => untyped.clone(),
        MetricType::Summary => summary.clone(),
        MetricType::Histogram | MetricType::GaugeHistogram => histogram.clone(),
    };
    preferred.or(counter).or(gauge).or(untyped).or(summary).or(histogram).unwrap_or(Value::Missing)
}

/// Encodes one family for a scrape (length-delimited). A value kept whole is written
/// with its fields as they were pushed, after the labels and the timestamp.
pub fn encode_family(family: &MetricFamily, help: Option<&str>, out: &mut Vec<u8>) {
    let kept = family.metrics.iter().any(|m| m.value.proto_fields().is_some());
    let pb = PbMetricFamily {
        name: Some(family.name.clone().into_bytes()),
        help: help.map(|h| h.as_bytes().to_vec()),
        r#type: Some(family.metric_type.proto_number()),
        metric: if kept { Vec::new() } else { family.metrics.iter().map(to_pb_metric).collect() },
    };
    if !kept {
        // Encoding into a Vec cannot fail.
        let _ = pb.encode_length_delimited(out);
        return;
    }
    let mut body = pb.encode_to_vec();
    for m in &family.metrics {
        let metric = match m.value.proto_fields() {
            Some(fields) if wire::has_label_extras(fields) => with_label_extras(m, fields),
            fields => {
                let mut metric = to_pb_metric(m).encode_to_vec();
                metric.extend_from_slice(fields.unwrap_or_default());
                metric
            }
        };
        wire::put_len(4, &metric, &mut body);
    }
    prost::encoding::encode_varint(body.len() as u64, out);
    out.extend_from_slice(&body);
}

/// A metric kept whole with label extras, encoded: each label pair with the extras of
/// its name after its value, the timestamp, then the other kept fields.
fn with_label_extras(m: &Metric, fields: &[u8]) -> Vec<u8> {
    let mut extras: Vec<(&[u8], &[u8])> = Vec::new();
    let mut rest = Vec::with_capacity(fields.len());
    for field in wire::fields(fields) {
        if (field.number, field.wire_type) != (1, wire::LEN) {
            rest.extend_from_slice(field.whole);
            continue;
        }
        let mut entry = wire::fields(field.payload);
        if let Some(name) = entry.next().filter(|f| (f.number, f.wire_type) == (1, wire::LEN)) {
            extras.push((name.payload, &field.payload[name.whole.len()..]));
        }
    }
    // Looked up by name for each label: sorted, so a series of many labels is not quadratic.
    extras.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(fields.len() + 16 * m.labels.len());
    let mut pair = Vec::new();
    for label in m.labels.iter() {
        pair.clear();
        wire::put_len(1, label.name.as_bytes(), &mut pair);
        wire::put_len(2, label.value.as_bytes(), &mut pair);
        if let Ok(i) = extras.binary_search_by(|(name, _)| (*name).cmp(label.name.as_bytes())) {
            pair.extend_from_slice(extras[i].1);
        }
        wire::put_len(1, &pair, &mut out);
    }
    if let Some(ms) = m.timestamp_ms.get() {
        wire::put_varint(6 << 3, &mut out);
        wire::put_varint(ms as u64, &mut out);
    }
    out.extend_from_slice(&rest);
    out
}

fn to_pb_metric(m: &Metric) -> PbMetric {
    let mut pb = PbMetric {
        label: m
            .labels
            .iter()
            .map(|l| PbLabelPair { name: Some(l.name.as_bytes().to_vec()), value: Some(l.value.as_bytes().to_vec()) })
            .collect(),
        timestamp_ms: m.timestamp_ms.get(),
        ..Default::default()
    };
    match &m.value {
        Value::Counter(v) => pb.counter = Some(PbCounter { value: Some(*v) }),
        Value::Gauge(v) => pb.gauge = Some(PbGauge { value: Some(*v) }),
        Value::Untyped(v) => pb.untyped = Some(PbUntyped { value: Some(*v) }),
        Value::Summary(s) => {
            let SummaryValue { count, sum, quantiles } = s.as_ref();
            pb.summary = Some(PbSummary {
                sample_count: Some(*count),
                sample_sum: Some(*sum),
                quantile: quantiles
                    .iter()
                    .map(|q| PbQuantile { quantile: Some(q.quantile), value: Some(q.value) })
                    .collect(),
            })
        }
        Value::Histogram(h) => {
            let HistogramValue { count, sum, buckets } = h.as_ref();
            pb.histogram = Some(PbHistogram {
                sample_count: Some(*count),
                sample_sum: Some(*sum),
                bucket: buckets
                    .iter()
                    .map(|b| PbBucket {
                        cumulative_count: Some(b.cumulative_count),
                        upper_bound: Some(b.upper_bound),
                        cumulative_count_float: None,
                    })
                    .collect(),
                sample_count_float: None,
            })
        }
        // Written by `encode_family` from the fields it keeps.
        Value::Missing | Value::Proto(_) => {}
    }
    pb
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn delimited(families: &[PbMetricFamily]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in families {
            f.encode_length_delimited(&mut out).unwrap();
        }
        out
    }

    /// A metric that our classic reading encodes back byte for byte stays a classic value
    /// (no cost for what plain clients push); one with any other field is kept whole and
    /// its fields come back exactly, after the labels.
    #[test]
    fn only_what_the_classic_reading_cannot_hold_is_kept_whole() {
        let gauge = PbMetric { gauge: Some(PbGauge { value: Some(2.0) }), ..Default::default() };
        let plain = PbMetricFamily {
            name: Some(b"g".to_vec()),
            help: None,
            r#type: Some(1),
            metric: vec![PbMetric {
                label: vec![PbLabelPair { name: Some(b"a".to_vec()), value: Some(b"1".to_vec()) }],
                ..gauge.clone()
            }],
        };
        let decoded = parse_delimited(&delimited(&[plain])).unwrap();
        assert_eq!(decoded.families["g"].metrics[0].value, Value::Gauge(2.0));

        // The same family with a field of a later metrics.proto (99, a varint) in the metric.
        let mut metric =
            PbMetric { label: vec![PbLabelPair { name: Some(b"a".to_vec()), value: Some(b"1".to_vec()) }], ..gauge }
                .encode_to_vec();
        metric.extend_from_slice(&[0x98, 0x06, 42]);
        let mut family =
            PbMetricFamily { name: Some(b"g".to_vec()), help: None, r#type: Some(1), metric: vec![] }.encode_to_vec();
        prost::encoding::encode_key(4, prost::encoding::WireType::LengthDelimited, &mut family);
        prost::encoding::encode_varint(metric.len() as u64, &mut family);
        family.extend_from_slice(&metric);
        let mut body = Vec::new();
        prost::encoding::encode_varint(family.len() as u64, &mut body);
        body.extend_from_slice(&family);
        let decoded = parse_delimited(&body).unwrap();
        let kept = &decoded.families["g"].metrics[0];
        assert_eq!(kept.value.classic(), &Value::Gauge(2.0));
        assert_eq!(kept.value.proto_fields(), Some(&[0x12, 0x09, 0x09, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x98, 0x06, 42][..]));
        let mut scraped = Vec::new();
        encode_family(&decoded.families["g"], None, &mut scraped);
        assert_eq!(scraped, body, "served back exactly as pushed");
    }

    /// One delimited family "m" of type `mtype` with `rest` (raw fields) after its type.
    fn raw_family(mtype: u8, rest: &[u8]) -> Vec<u8> {
        let mut family = vec![0x0a, 0x01, b'm', 0x18, mtype];
        family.extend_from_slice(rest);
        let mut body = Vec::new();
        wire::put_varint(family.len() as u64, &mut body);
        body.extend_from_slice(&family);
        body
    }

    /// Go's decoder keeps a declared field of another wire type as an unknown field, where
    /// prost refuses the message; upstream 1.5.1 accepts such pushes (recorded, compat case
    /// pb-fields-of-another-wire-type). Such a field in a value is kept with it and served
    /// back; in a family it is dropped, as upstream's gathering drops a family's unknown
    /// fields.
    #[test]
    fn fields_of_another_wire_type_are_read_as_unknown() {
        let mut metric = Vec::new();
        wire::put_len(2, &[0x08, 0x05], &mut metric); // gauge { value as a varint }
        let mut stamp = Vec::new();
        wire::put_len(6, &[0x01], &mut stamp); // the timestamp as bytes
        let mut rest = Vec::new();
        wire::put_len(4, &[&metric[..], &stamp[..]].concat(), &mut rest);
        rest.extend_from_slice(&[0x10, 0x07]); // the help as a varint
        let decoded = parse_delimited(&raw_family(1, &rest)).unwrap();
        let m = &decoded.families["m"].metrics[0];
        assert_eq!(m.value.classic(), &Value::Gauge(0.0));
        assert_eq!(m.timestamp_ms, Timestamp::NONE);
        assert_eq!(m.value.proto_fields(), Some(&[&metric[..], &stamp[..]].concat()[..]));
        assert_eq!(decoded.families["m"].help, None);
        let mut scraped = Vec::new();
        encode_family(&decoded.families["m"], None, &mut scraped);
        let mut served = Vec::new();
        wire::put_len(4, &[&metric[..], &stamp[..]].concat(), &mut served);
        assert_eq!(scraped, raw_family(1, &served));

        // A summary's count as a double, a quantile's bound as a varint.
        let mut summary = vec![0x09, 0, 0, 0, 0, 0, 0, 0x08, 0x40];
        wire::put_len(3, &[0x08, 0x01, 0x11, 0, 0, 0, 0, 0, 0, 0, 0x40], &mut summary);
        let mut rest = Vec::new();
        wire::put_len(4, &[&[0x22, summary.len() as u8][..], &summary[..]].concat(), &mut rest);
        let decoded = parse_delimited(&raw_family(2, &rest)).unwrap();
        let m = &decoded.families["m"].metrics[0];
        assert_eq!(m.value.classic(), &Value::summary(0, 0.0, vec![Quantile { quantile: 0.0, value: 2.0 }]));
        // Wire types 6 and 7 are still errors, as upstream's.
        assert!(parse_delimited(&raw_family(1, &[0x16])).is_err());
    }

    /// A label pair's fields besides its name and value (an unknown field here) are kept
    /// with the value and served back inside that pair, as upstream serves them (recorded,
    /// compat case pb-fields-of-another-wire-type).
    #[test]
    fn label_pairs_keep_their_other_fields() {
        let mut pair = Vec::new();
        wire::put_len(1, b"a", &mut pair);
        wire::put_len(2, b"v", &mut pair);
        pair.extend_from_slice(&[0x18, 0x07]);
        let mut plain = Vec::new();
        wire::put_len(1, b"b", &mut plain);
        wire::put_len(2, b"w", &mut plain);
        let mut metric = Vec::new();
        wire::put_len(1, &plain, &mut metric);
        wire::put_len(1, &pair, &mut metric);
        wire::put_len(2, &[0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f], &mut metric);
        let mut rest = Vec::new();
        wire::put_len(4, &metric, &mut rest);
        let mut decoded = parse_delimited(&raw_family(1, &rest)).unwrap();
        let m = &mut decoded.families.get_mut("m").unwrap().metrics[0];
        assert_eq!(m.value.classic(), &Value::Gauge(1.0));
        assert!(wire::has_label_extras(m.value.proto_fields().unwrap()));
        // Stored labels are sorted: "a" comes first in the scrape, its field with it.
        m.labels = Labels::from([LabelPair::new("a", "v"), LabelPair::new("b", "w")]);
        let mut scraped = Vec::new();
        encode_family(&decoded.families["m"], None, &mut scraped);
        let mut sorted = Vec::new();
        wire::put_len(1, &pair, &mut sorted);
        wire::put_len(1, &plain, &mut sorted);
        wire::put_len(2, &[0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f], &mut sorted);
        let mut served = Vec::new();
        wire::put_len(4, &sorted, &mut served);
        assert_eq!(scraped, raw_family(1, &served));
    }

    /// What follows the last whole message, as upstream 1.5.1 answers it (recorded): a body
    /// that ends inside a length prefix, or right after one, ends there (200, the families
    /// before kept); part of a message is `unexpected EOF`; a prefix of more than five
    /// bytes is `invalid varint32 encountered`.
    #[test]
    fn the_tail_after_the_last_message_is_read_as_upstream_reads_it() {
        let gauge = PbMetric { gauge: Some(PbGauge { value: Some(1.0) }), ..Default::default() };
        let family = PbMetricFamily { name: Some(b"tz".to_vec()), help: None, r#type: Some(1), metric: vec![gauge] };
        let whole = delimited(&[family]);
        for tail in [&b"\x80"[..], b"\x05", b"\xff\xff\xff\x01"] {
            let decoded = parse_delimited(&[&whole[..], tail].concat()).unwrap_or_else(|e| panic!("{tail:?}: {e}"));
            assert_eq!(decoded.families.keys().collect::<Vec<_>>(), ["tz"], "{tail:?}");
        }
        assert!(parse_delimited(b"\x80").unwrap().families.is_empty());
        let cut = parse_delimited(&[&whole[..], b"\x05ab"].concat()).unwrap_err();
        assert_eq!(cut.to_string(), "unexpected EOF");
        for tail in [&b"\xff\xff\xff\xff\xff\x01"[..], b"\xff\xff\xff\xff\xff"] {
            let long = parse_delimited(&[&whole[..], tail].concat()).unwrap_err();
            assert_eq!(long.to_string(), "invalid varint32 encountered", "{tail:?}");
        }
        // A field of wire type 7 (field 2), inside the family and inside a metric.
        let wire_7 = parse_delimited(&[&whole[..], b"\x02\x17\x00"].concat()).unwrap_err();
        assert_eq!(wire_7.to_string(), "proto: can't skip unknown wire type 7");
        let nested = parse_delimited(b"\x06\x0a\x01m\x22\x01\x17").unwrap_err();
        assert_eq!(nested.to_string(), "proto: can't skip unknown wire type 7");
        // A varint or a group cut short, an end of group without its start (upstream's
        // words, recorded against 1.5.1).
        for (body, words) in [
            (&b"\x05\x0a\x01m\x18\xff"[..], "unexpected EOF"),
            (b"\x07\x0a\x01m\x22\x02\x30\xff", "unexpected EOF"),
            (b"\x06\x0a\x01m\x22\x01\x4b", "unexpected EOF"),
            (b"\x04\x0a\x01m\x0c", "proto: can't skip unknown wire type 4"),
            (b"\x06\x0a\x01m\x22\x01\x4c", "proto: can't skip unknown wire type 4"),
        ] {
            assert_eq!(parse_delimited(body).unwrap_err().to_string(), words, "{body:?}");
        }
    }

    /// The scan before decoding counts what prost would build: every metric of every
    /// family against the series limit, every label of a metric against the label limit.
    #[test]
    fn bodies_over_the_limits_are_refused_before_decoding() {
        let limits = PushLimits { series: 10, labels_per_series: 3, ..PushLimits::DEFAULT };
        let label = || PbLabelPair { name: Some(b"l".to_vec()), value: Some(b"v".to_vec()) };
        let metric = |labels: usize| PbMetric {
            label: (0..labels).map(|_| label()).collect(),
            gauge: Some(PbGauge { value: Some(1.0) }),
            timestamp_ms: Some(5),
            ..Default::default()
        };
        let family = |name: &str, metrics: usize, labels: usize| PbMetricFamily {
            name: Some(name.as_bytes().to_vec()),
            help: Some(b"h".to_vec()),
            r#type: Some(1),
            metric: (0..metrics).map(|_| metric(labels)).collect(),
        };
        let fits = delimited(&[family("a", 6, 3), family("b", 4, 0)]);
        assert_eq!(parse_delimited_within(&fits, &limits).unwrap().families.len(), 2);
        let Err(ProtobufError::Limit(e)) =
            parse_delimited_within(&delimited(&[family("a", 6, 0), family("b", 5, 0)]), &limits)
        else {
            panic!("eleven series across two families were not refused")
        };
        assert_eq!((e.flag, e.found), ("push.max-series", 11));
        let Err(ProtobufError::Limit(e)) = parse_delimited_within(&delimited(&[family("a", 1, 4)]), &limits) else {
            panic!("four labels were not refused")
        };
        assert_eq!((e.flag, e.found), ("push.max-labels-per-series", 4));
        assert!(e.to_string().contains("(--push.max-labels-per-series)"), "{e}");
    }

    #[test]
    fn decode_cases() {
        let gauge = PbMetricFamily {
            name: Some(b"g".to_vec()),
            help: Some(b"help".to_vec()),
            r#type: Some(1),
            metric: vec![PbMetric { gauge: Some(PbGauge { value: Some(2.0) }), ..Default::default() }],
        };
        let decoded = parse_delimited(&delimited(std::slice::from_ref(&gauge))).unwrap();
        assert_eq!(decoded.families["g"].metrics[0].value, Value::Gauge(2.0));
        assert_eq!(decoded.families["g"].help.as_deref(), Some("help"));
        assert!(decoded.not_utf8.is_empty());
        // Truncation inside the message is "unexpected EOF"; right after its length prefix
        // it is the end of the body (see the test of the tail).
        let bytes = delimited(std::slice::from_ref(&gauge));
        assert!(parse_delimited(&bytes[..1]).unwrap().families.is_empty());
        for cut in 2..bytes.len() {
            assert_eq!(parse_delimited(&bytes[..cut]).unwrap_err(), ProtobufError::UnexpectedEof, "cut {cut}");
        }
        // Text sent as protobuf does not decode.
        assert!(parse_delimited(b"some_metric 1\n").is_err());
        // Later family of the same name wins.
        let mut second = gauge.clone();
        second.metric[0].gauge = Some(PbGauge { value: Some(3.0) });
        assert_eq!(
            parse_delimited(&delimited(&[gauge.clone(), second])).unwrap().families["g"].metrics[0].value,
            Value::Gauge(3.0)
        );
        // A counter value in a gauge family is kept for the check to refuse.
        let mut mismatch = gauge.clone();
        mismatch.metric[0] = PbMetric { counter: Some(PbCounter { value: Some(1.0) }), ..Default::default() };
        assert_eq!(
            parse_delimited(&delimited(&[mismatch])).unwrap().families["g"].metrics[0].value,
            Value::Counter(1.0)
        );
    }

    /// A label value that is not UTF-8 makes the push a defect, worded as upstream 1.5.1
    /// words it (recorded): the series as it would be stored, the pushed bytes in it. A
    /// value the grouping key overrides is none, and a later family of the same name
    /// replaces an earlier one's defects with its own.
    #[test]
    fn label_values_that_are_not_utf8_are_worded_as_upstream() {
        let key = GroupingKey::new([("job".to_string(), "x".to_string())].into());
        let with = |labels: &[(&str, &[u8])]| PbMetric {
            label: labels
                .iter()
                .map(|(n, v)| PbLabelPair { name: Some(n.as_bytes().to_vec()), value: Some(v.to_vec()) })
                .collect(),
            gauge: Some(PbGauge { value: Some(1.0) }),
            ..Default::default()
        };
        let family = |metrics: Vec<PbMetric>| PbMetricFamily {
            name: Some(b"m".to_vec()),
            help: None,
            r#type: Some(1),
            metric: metrics,
        };
        let bad = family(vec![with(&[("a", b"\xff")])]);
        let decoded = parse_delimited(&delimited(std::slice::from_ref(&bad))).unwrap();
        assert_eq!(
            decoded.defect(&key).unwrap(),
            "collected metric \"m\" { label:<name:\"a\" value:\"\\377\" > label:<name:\"instance\" value:\"\" > \
             label:<name:\"job\" value:\"x\" > gauge:<value:1 > } has a label named \"a\" whose value is not utf8: \
             \"\\xff\""
        );
        let good = family(vec![with(&[("a", b"v")])]);
        assert_eq!(parse_delimited(&delimited(&[bad.clone(), good])).unwrap().defect(&key), None);
        let overridden = family(vec![with(&[("job", b"\xff")])]);
        assert_eq!(parse_delimited(&delimited(&[overridden])).unwrap().defect(&key), None);
        // Nor in the timestamp families, which the server's own replace.
        for name in [model::PUSH_TIME_NAME, model::PUSH_FAILURE_TIME_NAME] {
            let stamps =
                PbMetricFamily { name: Some(name.as_bytes().to_vec()), ..family(vec![with(&[("b", b"\xff")])]) };
            assert_eq!(parse_delimited(&delimited(&[stamps])).unwrap().defect(&key), None, "{name}");
        }
        let two = family(vec![with(&[("b", b"\xfe"), ("a", b"\xff")]), with(&[]), with(&[("c", b"\xfd")])]);
        let defect = parse_delimited(&delimited(&[two])).unwrap().defect(&key).unwrap();
        assert!(defect.starts_with("2 error(s) occurred:\n* "), "{defect}");
        assert!(defect.contains("has a label named \"a\" whose value is not utf8: \"\\xff\"\n* "), "{defect}");
        assert!(defect.ends_with("has a label named \"c\" whose value is not utf8: \"\\xfd\""), "{defect}");
        // Many long ones: the words stay bounded (they travel in the log entry).
        let long = vec![0xffu8; 60_000];
        let many = family((0..8).map(|i| with(&[("a", &long[..]), ("i", i.to_string().as_bytes())])).collect());
        let defect = parse_delimited(&delimited(&[many])).unwrap().defect(&key).unwrap();
        assert!(defect.len() <= MAX_DEFECT_BYTES + 4 && defect.ends_with(" ..."), "{}", defect.len());
    }

    /// Random fields, as bytes: numbers 1-16, every wire type (6 and 7 aside), values of
    /// wire type 2 being fields themselves (`depth` levels down) or bytes.
    fn soup(depth: u32) -> BoxedStrategy<Vec<u8>> {
        let leaf = prop_oneof![
            (1u64..17, prop_oneof![0u64..6, any::<u64>()]).prop_map(|(n, v)| {
                let mut out = Vec::new();
                wire::put_varint(n << 3, &mut out);
                wire::put_varint(v, &mut out);
                out
            }),
            (1u64..17, any::<[u8; 8]>()).prop_map(|(n, v)| {
                let mut out = Vec::new();
                wire::put_varint(n << 3 | 1, &mut out);
                out.extend_from_slice(&v);
                out
            }),
            (1u64..17, any::<[u8; 4]>()).prop_map(|(n, v)| {
                let mut out = Vec::new();
                wire::put_varint(n << 3 | 5, &mut out);
                out.extend_from_slice(&v);
                out
            }),
            (1u64..17, proptest::collection::vec(any::<u8>(), 0..6)).prop_map(|(n, v)| {
                let mut out = Vec::new();
                wire::put_len(n, &v, &mut out);
                out
            }),
        ];
        let field = if depth == 0 {
            leaf.boxed()
        } else {
            prop_oneof![
                3 => leaf,
                2 => (1u64..17, soup(depth - 1)).prop_map(|(n, inner)| {
                    let mut out = Vec::new();
                    wire::put_len(n, &inner, &mut out);
                    out
                }),
                1 => (1u64..17, soup(depth - 1)).prop_map(|(n, inner)| {
                    let mut out = Vec::new();
                    wire::put_varint(n << 3 | 3, &mut out);
                    out.extend_from_slice(&inner);
                    wire::put_varint(n << 3 | 4, &mut out);
                    out
                }),
            ]
            .boxed()
        };
        proptest::collection::vec(field, 0..5).prop_map(|fields| fields.concat()).boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000), ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_delimited(&input);
        }

        /// Families of random metrics built of random fields (the numbers `metrics.proto`
        /// uses, every wire type, messages nested three deep, groups): decoding, reading the
        /// kept fields and encoding a scrape never panic, and what decodes is served back
        /// decodable. (About two in three bodies decode, with some 1.8 metrics each.)
        #[test]
        fn field_soup_never_panics(
            families in proptest::collection::vec(
                (0u64..6, proptest::collection::vec(soup(3), 0..4), soup(1)),
                1..4,
            ),
        ) {
            let mut body = Vec::new();
            for (i, (metric_type, metrics, extra)) in families.iter().enumerate() {
                let mut family = Vec::new();
                wire::put_len(1, format!("m{i}").as_bytes(), &mut family);
                wire::put_varint(3 << 3, &mut family);
                wire::put_varint(*metric_type, &mut family);
                for m in metrics {
                    wire::put_len(4, m, &mut family);
                }
                family.extend_from_slice(extra);
                wire::put_varint(family.len() as u64, &mut body);
                body.extend_from_slice(&family);
            }
            let Ok(decoded) = parse_delimited(&body) else { return Ok(()) };
            let key = GroupingKey::new([("job".to_string(), "j".to_string())].into());
            let _ = decoded.defect(&key);
            let _ = model::store::needs_v7(&decoded.families);
            let mut scraped = Vec::new();
            for family in decoded.families.values() {
                for m in &family.metrics {
                    if let Some(fields) = m.value.proto_fields() {
                        let _ = api_scalar(fields);
                        let _ = histogram_float_counts(fields);
                        let _ = crate::exposition::native::native(fields);
                    }
                }
                encode_family(family, None, &mut scraped);
            }
            prop_assert!(parse_delimited(&scraped).is_ok(), "a scrape that does not decode");
        }

        /// Families rendered for a scrape decode back to the same families.
        #[test]
        fn scrape_encoding_round_trips(name in "[a-z_][a-z0-9_]{0,10}", values in proptest::collection::vec(any::<f64>().prop_filter("not nan", |v| !v.is_nan()), 1..5), label in "\\PC{0,8}") {
            let family = MetricFamily {
                name: name.clone(),
                help: None,
                metric_type: MetricType::Gauge,
                metrics: values.iter().enumerate().map(|(i, v)| Metric {
                    labels: Labels::from([LabelPair::new("i", i.to_string()), LabelPair::new("l", label.clone())]),
                    value: Value::Gauge(*v),
                    timestamp_ms: Timestamp::NONE,
                }).collect(),
            };
            let mut out = Vec::new();
            encode_family(&family, Some("h"), &mut out);
            let decoded = parse_delimited(&out).unwrap();
            prop_assert_eq!(&decoded.families[&name].metrics, &family.metrics);
        }
    }
}
