//! Checks of a push that do not depend on the store: timestamps, names, label names,
//! value types, duplicate series within the push. Messages follow upstream's wording.

use std::collections::HashSet;
use std::fmt::Write;

use crate::float::format_g;
use crate::model::{HistogramValue, LabelPair, Metric, MetricType, PushedFamilies, SummaryValue, Value};

/// Whether `name` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Whether `name` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Label names starting with `__` are reserved for Prometheus itself.
pub fn is_reserved_label_name(name: &str) -> bool {
    name.starts_with("__")
}

/// The checks a push must pass whatever the store holds. `families` must already
/// carry the grouping labels (see `store::sanitize`).
pub fn intrinsic(families: &PushedFamilies) -> Result<(), String> {
    if families.values().flat_map(|f| &f.metrics).any(|m| m.timestamp_ms.is_some()) {
        return Err("pushed metrics must not have timestamps".to_string());
    }
    for family in families.values() {
        let name = family.name.as_str();
        if !is_valid_metric_name(name) {
            return Err(format!("collected metric family has an invalid name: {name:?}"));
        }
        let mut seen: HashSet<&[LabelPair]> = HashSet::with_capacity(family.metrics.len());
        for m in &family.metrics {
            let problem = |what: String| format!("collected metric {name:?} {{ {}}} {what}", metric_debug(m));
            if !m.value.fits(family.metric_type) {
                return Err(problem(format!("is not a {}", family.metric_type.upper_name())));
            }
            for (i, label) in m.labels.iter().enumerate() {
                if i > 0 && m.labels[i - 1].name == label.name {
                    return Err(problem(format!("has two or more labels with the same name: {}", label.name)));
                }
                if !is_valid_label_name(&label.name) || is_reserved_label_name(&label.name) {
                    return Err(problem(format!("has a label with an invalid name: {}", label.name)));
                }
                if family.metric_type == MetricType::Summary && label.name == "quantile" {
                    return Err(problem("must not have an explicit \"quantile\" label".to_string()));
                }
                if matches!(family.metric_type, MetricType::Histogram | MetricType::GaugeHistogram)
                    && label.name == "le"
                {
                    return Err(problem("must not have an explicit \"le\" label".to_string()));
                }
            }
            if !seen.insert(m.labels.as_slice()) {
                return Err(problem("was collected before with the same name and label values".to_string()));
            }
        }
    }
    Ok(())
}

/// A metric in the compact protobuf text form upstream puts in its messages:
/// `label:<name:"job" value:"a" > gauge:<value:1 > `.
pub fn metric_debug(m: &Metric) -> String {
    let mut out = String::new();
    for l in &m.labels {
        let _ = write!(out, "label:<name:{:?} value:{:?} > ", l.name, l.value);
    }
    match &m.value {
        Value::Counter(v) => {
            let _ = write!(out, "counter:<value:{} > ", format_g(*v));
        }
        Value::Gauge(v) => {
            let _ = write!(out, "gauge:<value:{} > ", format_g(*v));
        }
        Value::Untyped(v) => {
            let _ = write!(out, "untyped:<value:{} > ", format_g(*v));
        }
        Value::Summary(s) => {
            let SummaryValue { count, sum, quantiles } = s.as_ref();
            let _ = write!(out, "summary:<sample_count:{count} sample_sum:{} ", format_g(*sum));
            for q in quantiles {
                let _ = write!(out, "quantile:<quantile:{} value:{} > ", format_g(q.quantile), format_g(q.value));
            }
            out.push_str("> ");
        }
        Value::Histogram(h) => {
            let HistogramValue { count, sum, buckets } = h.as_ref();
            let _ = write!(out, "histogram:<sample_count:{count} sample_sum:{} ", format_g(*sum));
            for b in buckets {
                let _ = write!(
                    out,
                    "bucket:<cumulative_count:{} upper_bound:{} > ",
                    b.cumulative_count,
                    format_g(b.upper_bound)
                );
            }
            out.push_str("> ");
        }
        Value::Missing => {}
    }
    if let Some(ts) = m.timestamp_ms {
        let _ = write!(out, "timestamp_ms:{ts} ");
    }
    out
}
