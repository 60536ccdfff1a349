//! Rendering a scrape: pushed groups merged with the server's own families, sorted as
//! the Go registry sorts them, in text 0.0.4 or delimited protobuf.
//!
//! Pushed groups render byte-identically from identical stores: families are sorted by
//! name, series by Go's `metricSorter` (fewer labels first, then label values in
//! label-name order), and a family's help comes from the first group, in grouping-key
//! order, that has one, or from the server when the name is one of its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cluster::float::{format_g, write_exposition};
use cluster::{HistogramValue, LabelPair, Metric, MetricFamily, MetricType, StoreView, SummaryValue, Value};

use super::protobuf;

/// One family as exposed: merged from every group (and the server's own metrics).
pub struct ExposedFamily<'a> {
    pub name: &'a str,
    pub help: Option<&'a str>,
    pub metric_type: MetricType,
    pub metrics: Vec<&'a Metric>,
}

/// Merges the store's groups and the server's own families into the sorted list of
/// exposed families. `timestamps` must hold the groups' timestamp families (see
/// [`timestamp_families`]); they are borrowed so nothing else is copied.
pub fn gather<'a>(
    store: &'a StoreView,
    timestamps: &'a [MetricFamily],
    own: &'a [MetricFamily],
) -> Vec<ExposedFamily<'a>> {
    let mut by_name: BTreeMap<&'a str, ExposedFamily<'a>> = BTreeMap::new();
    let mut add =
        |family: &'a MetricFamily, metrics: &mut dyn Iterator<Item = &'a Metric>, help_override: Option<&'a str>| {
            let entry = by_name.entry(family.name.as_str()).or_insert_with(|| ExposedFamily {
                name: &family.name,
                help: help_override.or(family.help.as_deref()),
                metric_type: family.metric_type,
                metrics: Vec::new(),
            });
            if entry.help.is_none() {
                entry.help = family.help.as_deref();
            }
            entry.metrics.extend(metrics);
        };
    for family in own {
        add(family, &mut family.metrics.iter(), None);
    }
    for group in store.groups() {
        for stored in group.families.values() {
            let own_help = store.own_family(&stored.family.name).map(|o| o.help.as_str());
            add(&stored.family, &mut stored.sorted_metrics(), own_help);
        }
    }
    for family in timestamps {
        add(family, &mut family.metrics.iter(), None);
    }
    let mut out: Vec<ExposedFamily<'a>> = by_name.into_values().filter(|f| !f.metrics.is_empty()).collect();
    for family in &mut out {
        // Stable and adaptive: groups come in grouping-key order with their series already
        // sorted, so this is mostly a check that the runs are in order.
        family.metrics.sort_by(|a, b| a.exposition_cmp(b));
    }
    out
}

/// The two timestamp families of every group, merged by name.
pub fn timestamp_families(store: &StoreView) -> Vec<MetricFamily> {
    let mut merged: Vec<MetricFamily> = Vec::new();
    for group in store.groups() {
        for (family, _) in group.timestamp_families() {
            match merged.iter_mut().find(|f| f.name == family.name) {
                Some(f) => f.metrics.extend(family.metrics),
                None => merged.push(family),
            }
        }
    }
    merged
}

/// Text format 0.0.4, as `expfmt.MetricFamilyToText` writes it.
pub fn render_text(families: &[ExposedFamily<'_>]) -> Vec<u8> {
    // Sized for the usual sample line (name, a few labels, a value), so that a scrape of
    // a large store does not copy its text over and over as the buffer grows.
    let samples: usize = families.iter().map(|f| f.metrics.len() * (f.name.len() + 64)).sum();
    let mut out = String::with_capacity(families.len() * 128 + samples);
    for f in families {
        if let Some(help) = f.help {
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(help));
        }
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.metric_type.lower_name());
        for m in &f.metrics {
            write_metric_text(&mut out, f.name, m);
        }
    }
    out.into_bytes()
}

fn write_metric_text(out: &mut String, name: &str, m: &Metric) {
    match &m.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => write_sample(out, name, "", m, None, *v),
        Value::Summary(s) => {
            let SummaryValue { count, sum, quantiles } = s.as_ref();
            for q in quantiles {
                write_sample(out, name, "", m, Some(("quantile", q.quantile)), q.value);
            }
            write_sample(out, name, "_sum", m, None, *sum);
            write_sample(out, name, "_count", m, None, *count as f64);
        }
        Value::Histogram(h) => {
            let HistogramValue { count, sum, buckets } = h.as_ref();
            let mut inf_seen = false;
            for b in buckets {
                write_sample(out, name, "_bucket", m, Some(("le", b.upper_bound)), b.cumulative_count as f64);
                inf_seen |= b.upper_bound == f64::INFINITY;
            }
            if !inf_seen {
                write_sample(out, name, "_bucket", m, Some(("le", f64::INFINITY)), *count as f64);
            }
            write_sample(out, name, "_sum", m, None, *sum);
            write_sample(out, name, "_count", m, None, *count as f64);
        }
        Value::Missing => {}
    }
}

fn write_sample(out: &mut String, name: &str, suffix: &str, m: &Metric, extra: Option<(&str, f64)>, value: f64) {
    out.push_str(name);
    out.push_str(suffix);
    write_labels(out, &m.labels, extra);
    out.push(' ');
    write_exposition(out, value);
    if let Some(ts) = m.timestamp_ms {
        let _ = write!(out, " {ts}");
    }
    out.push('\n');
}

fn write_labels(out: &mut String, labels: &[LabelPair], extra: Option<(&str, f64)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&l.name);
        out.push_str("=\"");
        escape_label_value_into(out, &l.value);
        out.push('"');
    }
    if let Some((name, v)) = extra {
        if !labels.is_empty() {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        write_exposition(out, v);
        out.push('"');
    }
    out.push('}');
}

fn escape_label_value_into(out: &mut String, v: &str) {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        return out.push_str(v);
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Delimited protobuf, one `MetricFamily` message per family.
pub fn render_protobuf(families: &[ExposedFamily<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        let family = MetricFamily {
            name: f.name.to_string(),
            help: None,
            metric_type: f.metric_type,
            metrics: f.metrics.iter().map(|m| (*m).clone()).collect(),
        };
        protobuf::encode_family(&family, f.help, &mut out);
    }
    out
}

/// The protobuf text formats (`encoding=text` / `compact-text`), in the shape of Go's
/// `proto.MarshalTextString` (one family per block).
pub fn render_protobuf_text(families: &[ExposedFamily<'_>], compact: bool) -> Vec<u8> {
    let mut out = String::new();
    for f in families {
        let _ = write!(out, "name: {:?} ", f.name);
        if let Some(help) = f.help {
            let _ = write!(out, "help: {help:?} ");
        }
        let _ = write!(out, "type: {} ", f.metric_type.upper_name());
        for m in &f.metrics {
            let _ = write!(out, "metric: < {}> ", cluster::validate::metric_debug(m));
        }
        out.push('\n');
        if !compact {
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// Go's `fmt.Sprint` of a float in the JSON API.
pub fn json_float(v: f64) -> String {
    format_g(v)
}
