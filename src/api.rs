//! The JSON API (`/api/v1/metrics`, `/api/v1/status`) in upstream's shapes and key order:
//! every value a string, type names upper-case, help omitted when empty; what upstream
//! writes from a Go struct in the struct's field order (the answer: `status`, `data`; a
//! family: `time_stamp`, `type`, `help`, `metrics`), what it writes from a Go map with the
//! keys sorted (a group, a series, labels, buckets, flags).

use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value as Json};

use model::go_format::format_g;
use model::{Group, HistogramValue, Metric, MetricFamily, MetricType, StoreView, SummaryValue, Ttl, UnixNanos, Value};

/// Go's RFC 3339 with nanoseconds and trailing zeros trimmed.
pub fn rfc3339(t: UnixNanos) -> String {
    let dt = DateTime::<Utc>::from_timestamp(t.0.div_euclid(1_000_000_000), t.0.rem_euclid(1_000_000_000) as u32)
        .unwrap_or_default();
    let s = dt.to_rfc3339_opts(SecondsFormat::Nanos, true);
    // "2026-01-01T00:00:00.120000000Z" -> "2026-01-01T00:00:00.12Z"
    match s.split_once('.') {
        Some((head, frac)) => {
            let digits = frac.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{head}Z")
            } else {
                format!("{head}.{digits}Z")
            }
        }
        None => s,
    }
}

fn labels_json(m: &Metric) -> Json {
    Json::Object(m.labels.iter().map(|l| (l.name.to_string(), Json::String(l.value.to_string()))).collect())
}

/// One series as upstream's API shows it, by the family's type: a gauge histogram is not a
/// histogram there (`"value": "0"`), a float histogram's counts are its float ones, and a
/// native histogram lists `[boundaries, lower, upper, count]` per bucket (1.10+).
fn metric_json(m: &Metric, metric_type: MetricType) -> Json {
    let mut o = Map::new();
    o.insert("labels".into(), labels_json(m));
    // Upstream 1.10+: a histogram with a span shows its native buckets, not its classic ones;
    // the float counts of the classic reading are decoded only when it is shown.
    let native = m.value.proto_fields().and_then(crate::exposition::native::native);
    let floats = match native {
        None => m.value.proto_fields().and_then(crate::exposition::protobuf::histogram_float_counts),
        Some(_) => None,
    };
    let count_text = |float: Option<f64>, count: u64| match float {
        Some(f) if f > 0.0 => format_g(f),
        _ => count.to_string(),
    };
    match (m.value.classic(), native) {
        (Value::Histogram(_), _) if metric_type == MetricType::GaugeHistogram => {
            o.insert("value".into(), Json::String("0".into()));
        }
        (Value::Summary(s), _) => {
            let SummaryValue { count, sum, quantiles } = s.as_ref();
            let q: Map<String, Json> =
                quantiles.iter().map(|q| (format_g(q.quantile), Json::String(format_g(q.value)))).collect();
            o.insert("quantiles".into(), Json::Object(q));
            o.insert("count".into(), Json::String(count.to_string()));
            o.insert("sum".into(), Json::String(format_g(*sum)));
        }
        (Value::Histogram(_), Some(native)) => {
            let buckets = native
                .buckets
                .iter()
                .map(|b| json!([b.boundaries(), format_g(b.lower), format_g(b.upper), b.count.text()]))
                .collect();
            o.insert("buckets".into(), Json::Array(buckets));
            o.insert("count".into(), Json::String(native.count.text()));
            o.insert("sum".into(), Json::String(format_g(native.sum)));
        }
        (Value::Histogram(h), None) => {
            let HistogramValue { count, sum, buckets } = h.as_ref();
            let b: Map<String, Json> = buckets
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let float = floats.as_ref().and_then(|f| f.1.get(i).copied());
                    (format_g(b.upper_bound), Json::String(count_text(float, b.cumulative_count)))
                })
                .collect();
            o.insert("buckets".into(), Json::Object(b));
            o.insert("count".into(), Json::String(count_text(floats.as_ref().map(|f| f.0), *count)));
            o.insert("sum".into(), Json::String(format_g(*sum)));
        }
        (other, _) => {
            // Upstream shows a gauge field first, then a counter, then an untyped one,
            // whatever the family's type (a scrape shows the field of the family's type).
            let kept = m.value.proto_fields().and_then(crate::exposition::protobuf::api_scalar);
            o.insert("value".into(), Json::String(format_g(kept.or(other.scalar()).unwrap_or(0.0))));
        }
    }
    Json::Object(o)
}

/// A family as upstream's API writes it: a Go struct, so in this field order.
#[derive(Serialize)]
struct FamilyJson {
    time_stamp: String,
    #[serde(rename = "type")]
    metric_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<String>,
    metrics: Vec<Json>,
}

fn family_json(f: &MetricFamily, at: UnixNanos) -> FamilyJson {
    FamilyJson {
        time_stamp: rfc3339(at),
        metric_type: f.metric_type.upper_name(),
        help: f.help.as_deref().filter(|h| !h.is_empty()).map(str::to_string),
        metrics: f.metrics.iter().map(|m| metric_json(m, f.metric_type)).collect(),
    }
}

/// A value of a group's map: its labels, whether its last push succeeded and when it
/// expires, or one of its families.
#[derive(Serialize)]
#[serde(untagged)]
enum GroupField {
    Json(Json),
    Family(FamilyJson),
}

/// When a group expires and why, if it does: its own TTL (`"source": "push"`, named by its
/// last push's `__ttl__`) or `--push.default-ttl` (`"default"`).
pub fn expiry_json(g: &Group, default_ttl: Option<Ttl>) -> Option<Json> {
    let at = g.expires_at(default_ttl)?;
    let (ttl, source) = match g.ttl {
        Some(ttl) => (ttl, "push"),
        None => (default_ttl?, "default"),
    };
    let ttl = crate::config::format_go_duration(std::time::Duration::from_millis(ttl.millis()));
    Some(json!({ "ttl": ttl, "expires_at": rfc3339(at), "source": source }))
}

/// A group as upstream's API writes it: a Go map, so with its keys sorted.
fn group_json(g: &Group, default_ttl: Option<Ttl>) -> BTreeMap<String, GroupField> {
    let mut o = BTreeMap::new();
    o.insert("labels".into(), GroupField::Json(json!(g.key.labels())));
    o.insert("last_push_successful".into(), GroupField::Json(Json::Bool(g.last_push_successful())));
    if let Some(expiry) = expiry_json(g, default_ttl) {
        o.insert("expiry".into(), GroupField::Json(expiry));
    }
    for stored in g.families.values() {
        o.insert(stored.family.name.clone(), GroupField::Family(family_json(&stored.family, stored.pushed_at)));
    }
    for (family, at) in g.timestamp_families() {
        o.insert(family.name.clone(), GroupField::Family(family_json(&family, at)));
    }
    o
}

/// The API's answer: upstream's Go struct, `status` before `data`.
#[derive(Serialize)]
struct Answer<T> {
    status: &'static str,
    data: T,
}

/// The API's answer around `data`: `{"status":"success","data":…}`, as upstream's.
pub fn success(data: impl Serialize) -> Vec<u8> {
    go_escaped(serde_json::to_vec(&Answer { status: "success", data }).unwrap_or_default())
}

/// JSON as Go's `encoding/json` writes it: `<`, `>` and `&` as `\u003c`, `\u003e` and
/// `\u0026`, U+2028 and U+2029 as `\u2028` and `\u2029` (serde_json writes them as they
/// are). None of them can stand outside a string in JSON, so every one met is inside one
/// and is replaced there. The runs between them are copied whole; the answer is returned as
/// it is when it has none.
fn go_escaped(json: Vec<u8>) -> Vec<u8> {
    let escape_at = |i: usize| -> Option<(&'static [u8], usize)> {
        match &json[i..] {
            [b'<', ..] => Some((br"\u003c", 1)),
            [b'>', ..] => Some((br"\u003e", 1)),
            [b'&', ..] => Some((br"\u0026", 1)),
            [0xE2, 0x80, 0xA8, ..] => Some((br"\u2028", 3)),
            [0xE2, 0x80, 0xA9, ..] => Some((br"\u2029", 3)),
            _ => None,
        }
    };
    let mut found = (0..json.len()).filter(|&i| matches!(json[i], b'<' | b'>' | b'&' | 0xE2));
    let Some(first) = found.find_map(|i| escape_at(i).map(|e| (i, e))) else { return json };
    let mut out = Vec::with_capacity(json.len() + 64);
    let mut copied = 0;
    let mut next = Some(first);
    while let Some((at, (escape, width))) = next {
        out.extend_from_slice(&json[copied..at]);
        out.extend_from_slice(escape);
        copied = at + width;
        next = found.by_ref().filter(|&i| i >= copied).find_map(|i| escape_at(i).map(|e| (i, e)));
    }
    out.extend_from_slice(&json[copied..]);
    out
}

/// `GET /api/v1/metrics`.
/// `/api/v1/metrics`: every group as upstream shows it, plus `expiry` on a group that
/// expires (see [`expiry_json`]).
pub fn metrics_document(store: &StoreView, default_ttl: Option<Ttl>) -> Vec<u8> {
    let data: Vec<_> = store.groups().map(|g| group_json(g, default_ttl)).collect();
    success(data)
}

/// What `/api/v1/status` says of the build, in its key order (sorted, as upstream's
/// map): the values given at build time through `PUSHGATEWAY_BUILD_*` (empty when not
/// given), `goVersion` empty (kept for clients of upstream's document), and the crate's
/// version and minimum Rust version. The status page shows the same table.
pub fn build_information() -> [(&'static str, &'static str); 7] {
    [
        ("branch", option_env!("PUSHGATEWAY_BUILD_BRANCH").unwrap_or("")),
        ("buildDate", option_env!("PUSHGATEWAY_BUILD_DATE").unwrap_or("")),
        ("buildUser", option_env!("PUSHGATEWAY_BUILD_USER").unwrap_or("")),
        ("goVersion", ""),
        ("revision", option_env!("PUSHGATEWAY_BUILD_REVISION").unwrap_or("")),
        ("rustVersion", env!("CARGO_PKG_RUST_VERSION")),
        ("version", env!("CARGO_PKG_VERSION")),
    ]
}

/// `GET /api/v1/status`.
pub fn status_document(flags: &[(&str, String)], start: UnixNanos, cluster: Json) -> Vec<u8> {
    let flags: Map<String, Json> = flags.iter().map(|(k, v)| (k.to_string(), Json::String(v.clone()))).collect();
    let build: Map<String, Json> =
        build_information().iter().map(|(k, v)| (k.to_string(), Json::String(v.to_string()))).collect();
    success(json!({
        "build_information": build,
        "flags": flags,
        "start_time": rfc3339(start),
        "cluster": cluster,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_escape_as_go_does() {
        let answer = success(json!({ "h": "a <b> & c \u{2028} d \u{2029} é" }));
        assert_eq!(
            String::from_utf8(answer).unwrap(),
            r#"{"status":"success","data":{"h":"a \u003cb\u003e \u0026 c \u2028 d \u2029 é"}}"#
        );
        assert_eq!(success(json!([])), br#"{"status":"success","data":[]}"#);
    }

    #[test]
    fn rfc3339_like_go() {
        assert_eq!(rfc3339(UnixNanos(1_795_559_452_251_879_161)), "2026-11-24T22:30:52.251879161Z");
        assert_eq!(rfc3339(UnixNanos(1_795_559_452_120_000_000)), "2026-11-24T22:30:52.12Z");
        assert_eq!(rfc3339(UnixNanos(1_795_559_452_000_000_000)), "2026-11-24T22:30:52Z");
    }
}
