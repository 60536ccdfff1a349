//! Rendering a scrape: pushed groups merged with the server's own families, sorted as
//! the Go registry sorts them, in text 0.0.4 or delimited protobuf.
//!
//! Pushed groups render byte-identically from identical stores: families are sorted by
//! name, series by Go's `metricSorter` (fewer labels first, then label values in
//! label-name order), and a family's help comes from the first group, in grouping-key
//! order, that has one, or from the server when the name is one of its own.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use model::go_format::{
    escape_help, escape_label_value_into, format_g, metric_debug, proto_text_string, write_exposition,
};
use model::{
    HistogramValue, Labels, Metric, MetricFamily, MetricType, SeriesText, StoreView, StoredFamily, SummaryValue, Value,
};

use super::escaping::Escaping;
use super::protobuf;

/// One family as exposed: merged from every group (and the server's own metrics).
pub struct ExposedFamily<'a> {
    pub name: &'a str,
    pub help: Option<&'a str>,
    pub metric_type: MetricType,
    /// The series of each source, in the order the sources were added.
    runs: Vec<Run<'a>>,
    /// Every series in exposition order, when the runs one after the other are not in it
    /// (then the series were sorted together, and every one is formatted); else none,
    /// and a scrape goes through the runs without listing their series.
    sorted: Option<Vec<&'a Metric>>,
    /// How many series.
    len: usize,
}

/// The series one source (a group's family, or one of the server's) adds to a family.
struct Run<'a> {
    series: Source<'a>,
    /// Their text, when a text scrape has rendered and kept it (see [`Prepare::Text`]).
    text: Option<&'a str>,
}

/// A source's series: in exposition order through `order` (a stored family's, see
/// [`StoredFamily::exposition_order`]), or in the order given.
#[derive(Clone, Copy)]
struct Source<'a> {
    metrics: &'a [Metric],
    order: Option<&'a [u32]>,
}

impl<'a> Source<'a> {
    fn stored(stored: &'a StoredFamily) -> Self {
        Source { metrics: &stored.family.metrics, order: Some(stored.exposition_order()) }
    }

    fn given(metrics: &'a [Metric]) -> Self {
        Source { metrics, order: None }
    }

    fn iter(self) -> impl Iterator<Item = &'a Metric> {
        let Source { metrics, order } = self;
        let ordered = order.into_iter().flatten().map(move |i| &metrics[*i as usize]);
        ordered.chain(order.is_none().then_some(metrics).into_iter().flatten())
    }

    fn at(self, i: usize) -> &'a Metric {
        match self.order {
            Some(order) => &self.metrics[order[i] as usize],
            None => &self.metrics[i],
        }
    }
}

/// What [`gather`] prepares for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prepare {
    /// The stored families' series text, rendered once per family and kept with it
    /// until the family changes: for text scrapes.
    Text,
    /// Only the series: for the other formats.
    Series,
}

/// The groups' timestamp families as [`gather`] takes them.
#[derive(Clone, Copy)]
pub enum Stamps<'a> {
    /// As series ([`timestamp_families`]): for any format.
    Series(&'a [MetricFamily]),
    /// As the text a text scrape writes ([`TimestampText`]).
    Text(&'a TimestampText),
}

/// Merges the store's groups and the server's own families into the sorted list of
/// exposed families. `timestamps` must be the groups' timestamp families, of this view;
/// they are borrowed so nothing else is copied.
pub fn gather<'a>(
    store: &'a StoreView,
    timestamps: Stamps<'a>,
    own: &'a [MetricFamily],
    prepare: Prepare,
) -> Vec<ExposedFamily<'a>> {
    let mut by_name: BTreeMap<&'a str, ExposedFamily<'a>> = BTreeMap::new();
    // Own families the version in force does not judge (`model::own_families::ADDED_IN_V2`
    // before version 2) are judged like any name when pushed, so a pushed family of such a
    // name takes their place: one family per name, of the pushed type. They are added
    // after the groups, where a lookup tells whether a group pushed the name.
    let (pinned, provisional): (Vec<&MetricFamily>, Vec<&MetricFamily>) =
        own.iter().partition(|f| store.own_family(&f.name).is_some());
    // How many runs each name gets (a group holding it, or a timestamp family given as
    // series, adds one): a family's list of runs is made at its final size at once. Grown
    // by doubling, the list of a name that 10,000 groups share went through a dozen sizes,
    // each in fresh memory, and after a large scrape had given its memory back
    // (`release_freed_memory`) the next scrape spent a third of its time having the kernel
    // zero those pages. Pinned own families add theirs below, on top.
    let mut runs_by_name: HashMap<&str, usize> = HashMap::new();
    let stamp_series: &[MetricFamily] = match &timestamps {
        Stamps::Series(families) => families,
        Stamps::Text(_) => &[],
    };
    let names = store.groups().flat_map(|g| g.families.keys().map(String::as_str));
    for name in names.chain(stamp_series.iter().map(|f| f.name.as_str())) {
        *runs_by_name.entry(name).or_default() += 1;
    }
    let runs_of = |name: &str| runs_by_name.get(name).copied().unwrap_or(0);
    for family in pinned {
        add(&mut by_name, family, Source::given(&family.metrics), None, None, 1 + runs_of(&family.name));
    }
    for group in store.groups() {
        for stored in group.families.values() {
            let own_help = store.own_family(&stored.family.name).map(|o| o.help);
            let text = match prepare {
                Prepare::Text => stored.series_text(render_series_text).as_str(),
                Prepare::Series => None,
            };
            let runs = runs_of(&stored.family.name);
            add(&mut by_name, &stored.family, Source::stored(stored), text, own_help, runs);
        }
    }
    for family in provisional {
        if !by_name.contains_key(family.name.as_str()) {
            add(&mut by_name, family, Source::given(&family.metrics), None, None, 1);
        }
    }
    match timestamps {
        Stamps::Series(families) => {
            for family in families {
                add(&mut by_name, family, Source::given(&family.metrics), None, None, runs_of(&family.name));
            }
        }
        Stamps::Text(kept) => {
            // No group holds a family of these names ([`TimestampText::of`]), and no own
            // family has them: each is one run of text already in exposition order.
            for kept in &kept.families {
                add(&mut by_name, &kept.family, Source::given(&[]), Some(&kept.text), None, 1).len += kept.len;
            }
        }
    }
    in_exposition_order(by_name)
}

/// The text of the groups' two timestamp families' series, as a text scrape writes them
/// (in exposition order), kept from one scrape to the next while the store's groups stay
/// the same ([`StoreView::same_groups`]): a scrape of an unchanged store then neither
/// builds, orders nor formats two series per group again. What it costs besides its text
/// (about 110 B per group): a group replaced or deleted after it was made keeps its
/// allocation's fixed part (about 140 B, none of its series) until the next text scrape
/// replaces it, and a group changed while it is kept moves to a new allocation.
pub struct TimestampText {
    groups: Vec<std::sync::Weak<model::Group>>,
    escaping: Escaping,
    families: Vec<KeptStamps>,
}

/// One timestamp family's series as text.
struct KeptStamps {
    /// Its name, help and type (no series: they are in `text`).
    family: MetricFamily,
    text: String,
    /// How many series.
    len: usize,
}

impl TimestampText {
    /// The text of `view`'s timestamp families under `escaping`; none when a group holds
    /// a family of either name (then they are merged with it, as series).
    pub fn of(view: &StoreView, escaping: Escaping) -> Option<TimestampText> {
        let names = [model::PUSH_FAILURE_TIME_NAME, model::PUSH_TIME_NAME];
        if view.groups().any(|g| names.iter().any(|n| g.families.contains_key(*n))) {
            return None;
        }
        let series = timestamp_families(view);
        let mut by_name = BTreeMap::new();
        for family in &series {
            add(&mut by_name, family, Source::given(&family.metrics), None, None, 1);
        }
        let mut families = Vec::new();
        for exposed in in_exposition_order(by_name) {
            let escaped = escaping.apply(exposed.name);
            let sample_name = SampleName::new(&escaped);
            let mut text = String::with_capacity(exposed.len * 64);
            for m in exposed.metrics() {
                write_metric_text(&mut text, sample_name, m, escaping);
            }
            let family = MetricFamily {
                name: exposed.name.to_string(),
                help: exposed.help.map(str::to_string),
                metric_type: exposed.metric_type,
                metrics: Vec::new(),
            };
            families.push(KeptStamps { family, text, len: exposed.len });
        }
        Some(TimestampText { groups: view.weak_groups(), escaping, families })
    }

    /// Whether this is the text of `view`'s timestamp families under `escaping`.
    pub fn is_for(&self, view: &StoreView, escaping: Escaping) -> bool {
        self.escaping == escaping && view.same_groups(&self.groups)
    }
}

/// The non-empty families by name, each with its series in exposition order.
fn in_exposition_order<'a>(by_name: BTreeMap<&'a str, ExposedFamily<'a>>) -> Vec<ExposedFamily<'a>> {
    let mut out: Vec<ExposedFamily<'a>> = by_name.into_values().filter(|f| f.len > 0).collect();
    for family in &mut out {
        if !family.in_order() {
            let mut all: Vec<&Metric> = Vec::with_capacity(family.len);
            all.extend(family.runs.iter().flat_map(|run| run.series.iter()));
            // Stable: equal series keep the order of their groups.
            all.sort_by(|a, b| a.exposition_cmp(b));
            family.sorted = Some(all);
        }
    }
    out
}

/// The server's own families alone, sorted as [`gather`] sorts them: what a node serves
/// about itself apart from the pushed groups (`/-/metrics`).
pub fn gather_own(own: &[MetricFamily]) -> Vec<ExposedFamily<'_>> {
    let mut by_name: BTreeMap<&str, ExposedFamily<'_>> = BTreeMap::new();
    for family in own {
        add(&mut by_name, family, Source::given(&family.metrics), None, None, 1);
    }
    in_exposition_order(by_name)
}

/// Adds a source's series to the family of its name (created on first use, with the
/// help of the first source that has one, or `help_override`, and room for `runs`
/// sources).
fn add<'a, 'b>(
    by_name: &'b mut BTreeMap<&'a str, ExposedFamily<'a>>,
    family: &'a MetricFamily,
    series: Source<'a>,
    text: Option<&'a str>,
    help_override: Option<&'a str>,
    runs: usize,
) -> &'b mut ExposedFamily<'a> {
    let entry = by_name.entry(family.name.as_str()).or_insert_with(|| ExposedFamily {
        name: &family.name,
        help: help_override.or(family.help.as_deref()),
        metric_type: family.metric_type,
        runs: Vec::with_capacity(runs),
        sorted: None,
        len: 0,
    });
    if entry.help.is_none() {
        entry.help = family.help.as_deref();
    }
    entry.len += series.metrics.len();
    entry.runs.push(Run { series, text });
    entry
}

impl<'a> ExposedFamily<'a> {
    /// Whether the runs one after the other are in exposition order. Groups come in
    /// grouping-key order with their series sorted, which is usually the exposition order
    /// too: then only the first series of each group is compared with the one before it,
    /// instead of sorting all of them.
    fn in_order(&self) -> bool {
        let mut previous: Option<&Metric> = None;
        for run in &self.runs {
            let n = run.series.metrics.len();
            if n == 0 {
                continue;
            }
            let checked = if run.series.order.is_some() { 0..1 } else { 0..n };
            for i in checked {
                let m = run.series.at(i);
                if previous.is_some_and(|p| p.exposition_cmp(m).is_gt()) {
                    return false;
                }
                previous = Some(m);
            }
            previous = Some(run.series.at(n - 1));
        }
        true
    }

    /// The series in exposition order.
    pub fn metrics(&self) -> Box<dyn Iterator<Item = &'a Metric> + '_> {
        match &self.sorted {
            Some(all) => Box::new(all.iter().copied()),
            None => Box::new(self.runs.iter().flat_map(|run| run.series.iter())),
        }
    }
}

/// The text of a stored family's series, in exposition order (what a text scrape of a
/// large store copies instead of formatting it again). Kept only for a family whose names
/// are all legacy-valid: those are the same text under every escaping scheme.
fn render_series_text(stored: &StoredFamily) -> SeriesText {
    let legacy = |name: &str| model::check::is_valid_metric_name(name);
    if !legacy(&stored.family.name) || stored.family.metrics.iter().flat_map(|m| &m.labels).any(|l| !legacy(l.name)) {
        return SeriesText::new(None);
    }
    let mut text = String::new();
    let name = SampleName { text: &stored.family.name, quoted: false };
    for m in stored.sorted_metrics() {
        write_metric_text(&mut text, name, m, Escaping::Underscores);
    }
    SeriesText::new(Some(text))
}

/// The two timestamp families of every group, merged by name (none for an empty store):
/// each group's series as [`model::Group::timestamp_families`] has them, built from the
/// labels the group keeps.
pub fn timestamp_families(store: &StoreView) -> Vec<MetricFamily> {
    let family = |name: &str, help: &str| MetricFamily {
        name: name.to_string(),
        help: Some(help.to_string()),
        metric_type: MetricType::Gauge,
        metrics: Vec::with_capacity(store.groups().size_hint().0),
    };
    let mut failure = family(model::PUSH_FAILURE_TIME_NAME, model::PUSH_FAILURE_TIME_HELP);
    let mut success = family(model::PUSH_TIME_NAME, model::PUSH_TIME_HELP);
    for group in store.groups() {
        failure.metrics.push(group.timestamp_series(group.push_failure_time));
        success.metrics.push(group.timestamp_series(group.push_time));
    }
    if failure.metrics.is_empty() {
        return Vec::new();
    }
    vec![failure, success]
}

/// Text format 0.0.4, as `expfmt.MetricFamilyToText` writes it, names escaped by
/// `escaping` (with [`Escaping::AllowUtf8`], names outside the legacy set are quoted:
/// `{"my.metric","a.b"="v"} 1`, `# TYPE "my.metric" counter`), in one buffer.
pub fn render_text(families: &[ExposedFamily<'_>], escaping: Escaping) -> Vec<u8> {
    let mut whole = String::new();
    render_text_in_pieces(families, escaping, usize::MAX, &mut |piece, _last| {
        whole = piece;
        true
    });
    whole.into_bytes()
}

/// [`render_text`], handed to `emit` in pieces of at least `piece` bytes (cut between
/// series, so a piece may run over by one series' lines) and a last piece (`emit`'s second
/// argument true), possibly empty, with the rest: a scrape of a large store then never
/// holds its whole text, and its first bytes go out while the rest is rendered. Stops
/// early, returning false, when `emit` does (the client is gone); true once the last piece
/// is taken.
pub fn render_text_in_pieces(
    families: &[ExposedFamily<'_>],
    escaping: Escaping,
    piece: usize,
    emit: &mut dyn FnMut(String, bool) -> bool,
) -> bool {
    // Sized for the usual sample line (name, a few labels, a value), so that a scrape of
    // a large store does not copy its text over and over as the buffer grows.
    let samples: usize = families.iter().map(|f| f.len * (f.name.len() + 64)).sum();
    let capacity = (families.len() * 128 + samples).min(piece.saturating_add(piece / 4));
    let mut out = String::with_capacity(capacity);
    // Hands the buffer on once it holds a piece; false when the client is gone.
    let mut cut =
        |out: &mut String| out.len() < piece || emit(std::mem::replace(out, String::with_capacity(capacity)), false);
    for f in families {
        let name = escaping.apply(f.name);
        if let Some(help) = f.help {
            out.push_str("# HELP ");
            write_name(&mut out, &name);
            let _ = writeln!(out, " {}", escape_help(help));
        }
        // The text format has no gauge histogram: upstream 1.11 prints one as a histogram.
        let type_word = match f.metric_type {
            model::MetricType::GaugeHistogram => "histogram",
            other => other.lower_name(),
        };
        out.push_str("# TYPE ");
        write_name(&mut out, &name);
        let _ = writeln!(out, " {type_word}");
        let sample_name = SampleName::new(&name);
        if let Some(all) = &f.sorted {
            for m in all {
                write_metric_text(&mut out, sample_name, m, escaping);
                if !cut(&mut out) {
                    return false;
                }
            }
            continue;
        }
        for run in &f.runs {
            match run.text {
                Some(text) => {
                    if !copy_lines(&mut out, text, piece, &mut cut) {
                        return false;
                    }
                }
                None => {
                    for m in run.series.iter() {
                        write_metric_text(&mut out, sample_name, m, escaping);
                        if !cut(&mut out) {
                            return false;
                        }
                    }
                }
            }
            if !cut(&mut out) {
                return false;
            }
        }
    }
    emit(out, true)
}

/// Copies kept text (whole lines) into `out`, handing it to `cut` at the line that fills a
/// piece, so that a long text (the timestamp families hold a line per group) is cut as
/// formatted series are. False when `cut` is (the client is gone).
fn copy_lines(out: &mut String, text: &str, piece: usize, cut: &mut impl FnMut(&mut String) -> bool) -> bool {
    let mut rest = text;
    while rest.len() > piece.saturating_sub(out.len()) {
        let room = piece.saturating_sub(out.len());
        let end = rest.as_bytes()[room..].iter().position(|b| *b == b'\n').map_or(rest.len(), |i| room + i + 1);
        out.push_str(&rest[..end]);
        rest = &rest[end..];
        if !cut(out) {
            return false;
        }
    }
    out.push_str(rest);
    true
}

/// A name in a text scrape: bare when legacy-valid, else quoted (escaped names always
/// are legacy-valid, so only [`Escaping::AllowUtf8`] quotes).
fn write_name(out: &mut String, name: &str) {
    if model::check::is_valid_metric_name(name) {
        out.push_str(name);
    } else {
        out.push('"');
        escape_label_value_into(out, name);
        out.push('"');
    }
}

/// A family's name as a scrape writes it (already escaped), and whether it goes quoted
/// inside the braces (outside the legacy set: only under [`Escaping::AllowUtf8`]); judged
/// once per family, not per sample line.
#[derive(Clone, Copy)]
struct SampleName<'a> {
    text: &'a str,
    quoted: bool,
}

impl<'a> SampleName<'a> {
    fn new(text: &'a str) -> Self {
        SampleName { text, quoted: !model::check::is_valid_metric_name(text) }
    }
}

fn write_metric_text(out: &mut String, name: SampleName<'_>, m: &Metric, escaping: Escaping) {
    // A float histogram kept whole prints its float counts (a zero one means the integer
    // count), as upstream 1.11 does.
    let floats = m.value.proto_fields().and_then(crate::exposition::protobuf::histogram_float_counts);
    let float_or = |float: Option<f64>, count: u64| match float {
        Some(f) if f != 0.0 => f,
        _ => count as f64,
    };
    match m.value.classic() {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => write_sample(out, name, "", m, None, *v, escaping),
        Value::Summary(s) => {
            let SummaryValue { count, sum, quantiles } = s.as_ref();
            for q in quantiles {
                write_sample(out, name, "", m, Some(("quantile", q.quantile)), q.value, escaping);
            }
            write_sample(out, name, "_sum", m, None, *sum, escaping);
            write_sample(out, name, "_count", m, None, *count as f64, escaping);
        }
        Value::Histogram(h) => {
            let HistogramValue { count, sum, buckets } = h.as_ref();
            let mut inf_seen = false;
            let count = float_or(floats.as_ref().map(|f| f.0), *count);
            for (i, b) in buckets.iter().enumerate() {
                let bucket_float = floats.as_ref().and_then(|f| f.1.get(i).copied());
                let value = float_or(bucket_float, b.cumulative_count);
                write_sample(out, name, "_bucket", m, Some(("le", b.upper_bound)), value, escaping);
                inf_seen |= b.upper_bound == f64::INFINITY;
            }
            if !inf_seen {
                write_sample(out, name, "_bucket", m, Some(("le", f64::INFINITY)), count, escaping);
            }
            write_sample(out, name, "_sum", m, None, *sum, escaping);
            write_sample(out, name, "_count", m, None, count, escaping);
        }
        Value::Missing | Value::Proto(_) => {}
    }
}

/// One sample line. A name outside the legacy set (only under [`Escaping::AllowUtf8`])
/// goes inside the braces, quoted with its suffix: `{"my.hist_bucket",le="1"} 3`.
#[allow(clippy::too_many_arguments)]
fn write_sample(
    out: &mut String,
    name: SampleName<'_>,
    suffix: &str,
    m: &Metric,
    extra: Option<(&str, f64)>,
    value: f64,
    escaping: Escaping,
) {
    if name.quoted {
        out.push_str("{\"");
        escape_label_value_into(out, name.text);
        out.push_str(suffix);
        out.push('"');
        if !m.labels.is_empty() || extra.is_some() {
            out.push(',');
        }
        write_label_pairs(out, &m.labels, extra, escaping);
        out.push('}');
    } else {
        out.push_str(name.text);
        out.push_str(suffix);
        if !m.labels.is_empty() || extra.is_some() {
            out.push('{');
            write_label_pairs(out, &m.labels, extra, escaping);
            out.push('}');
        }
    }
    out.push(' ');
    write_exposition(out, value);
    if let Some(ts) = m.timestamp_ms.get() {
        let _ = write!(out, " {ts}");
    }
    out.push('\n');
}

fn write_label_pairs(out: &mut String, labels: &Labels, extra: Option<(&str, f64)>, escaping: Escaping) {
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // One scan for the usual legacy name; escaping (and quoting) only for the others.
        if model::check::is_valid_metric_name(l.name) {
            out.push_str(l.name);
        } else {
            write_name(out, &escaping.apply(l.name));
        }
        out.push_str("=\"");
        escape_label_value_into(out, l.value);
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
}

/// Delimited protobuf, one `MetricFamily` message per family, names escaped by `escaping`.
pub fn render_protobuf(families: &[ExposedFamily<'_>], escaping: Escaping) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        let family = MetricFamily {
            name: escaping.apply(f.name).into_owned(),
            help: None,
            metric_type: f.metric_type,
            metrics: f.metrics().map(|m| escaped(m, escaping)).collect(),
        };
        protobuf::encode_family(&family, f.help, &mut out);
    }
    out
}

/// A series with its label names escaped.
fn escaped(m: &Metric, escaping: Escaping) -> Metric {
    let mut m = m.clone();
    if m.labels.iter().any(|l| matches!(escaping.apply(l.name), std::borrow::Cow::Owned(_))) {
        let names: Vec<(std::borrow::Cow<'_, str>, &str)> =
            m.labels.iter().map(|l| (escaping.apply(l.name), l.value)).collect();
        m.labels = Labels::from_pairs(names.iter().map(|(name, value)| (name.as_ref(), *value)));
    }
    m
}

/// The protobuf text formats (`encoding=text` / `compact-text`), in the shape of Go's
/// `proto.MarshalTextString` (one family per block), names escaped by `escaping`.
pub fn render_protobuf_text(families: &[ExposedFamily<'_>], compact: bool, escaping: Escaping) -> Vec<u8> {
    let mut out = String::new();
    for f in families {
        let _ = write!(out, "name: {} ", proto_text_string(escaping.apply(f.name).as_bytes()));
        if let Some(help) = f.help {
            let _ = write!(out, "help: {} ", proto_text_string(help));
        }
        let _ = write!(out, "type: {} ", f.metric_type.upper_name());
        for m in f.metrics() {
            let _ = write!(out, "metric: < {}> ", metric_debug(&escaped(m, escaping)));
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use model::{Command, GroupStore, GroupingKey, UnixNanos};

    use super::*;
    use crate::exposition::text_parse::parse_text;

    fn push(store: &mut GroupStore, labels: &[(&str, &str)], body: &str) {
        let key = key(labels);
        let families = parse_text(body.as_bytes()).expect("valid body");
        let outcome = store.apply(Command::Push { key, families, replace: true, time: UnixNanos(1), defect: None });
        assert_eq!(outcome, model::Outcome::Pushed);
    }

    /// The text scrape, and the same scrape formatted without any kept series text.
    fn scrapes(store: &GroupStore) -> (String, String) {
        let view = store.view();
        let timestamps = timestamp_families(&view);
        let render = |prepare| {
            let families = gather(&view, Stamps::Series(&timestamps), &[], prepare);
            String::from_utf8(render_text(&families, Escaping::Underscores)).expect("utf-8")
        };
        (render(Prepare::Text), render(Prepare::Series))
    }

    fn key(labels: &[(&str, &str)]) -> GroupingKey {
        GroupingKey::new(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>())
    }

    /// A family's list of runs is made at its final size, one run per group holding the
    /// name, whatever the number of groups: never grown by doubling into fresh memory
    /// during a scrape (see [`gather`]).
    #[test]
    fn a_family_shared_by_many_groups_lists_its_runs_in_one_allocation() {
        let mut store = GroupStore::new();
        for g in 0..300 {
            let body = if g % 3 == 0 { "shared 1\nthird 1\n" } else { "shared 1\n" };
            push(&mut store, &[("job", "j"), ("instance", &format!("g{g}"))], body);
        }

        let view = store.view();
        let timestamps = timestamp_families(&view);
        for prepare in [Prepare::Text, Prepare::Series] {
            let families = gather(&view, Stamps::Series(&timestamps), &[], prepare);
            let runs: BTreeMap<&str, (usize, usize)> =
                families.iter().map(|f| (f.name, (f.runs.len(), f.runs.capacity()))).collect();
            assert_eq!(runs["shared"], (300, 300));
            assert_eq!(runs["third"], (100, 100));
            assert_eq!(runs["push_time_seconds"], (1, 1), "every group's push time, one run");
        }
    }

    /// The timestamp families' kept text is what formatting them as series writes, in
    /// exposition order (here not the groups' order: a key with fewer labels comes later),
    /// and it is the text of a view only while no group changed since it was made: a
    /// push, a failed push, a new group and a deletion each make it stale (with no view
    /// alive meanwhile, so the store changes its groups in place where it can).
    #[test]
    fn kept_timestamp_text_is_the_formatted_one_and_goes_stale_on_every_change() {
        let mut store = GroupStore::new();
        push(&mut store, &[("job", "a"), ("zone", "z")], "m 1\n");
        push(&mut store, &[("job", "b"), ("instance", "i")], "m 2\n");
        push(&mut store, &[("job", "b")], "m 3\n");
        let push_at = |store: &mut GroupStore, job: &str, body: &str, time: i64| {
            let families = parse_text(body.as_bytes()).expect("valid body");
            let key = key(&[("job", job)]);
            store.apply(Command::Push { key, families, replace: true, time: UnixNanos(time), defect: None })
        };
        let scrape_with = |store: &GroupStore, kept: &TimestampText| {
            let view = store.view();
            let families = gather(&view, Stamps::Text(kept), &[], Prepare::Text);
            String::from_utf8(render_text(&families, Escaping::Underscores)).expect("utf-8")
        };
        let made = |store: &GroupStore| {
            let view = store.view();
            let kept = TimestampText::of(&view, Escaping::Underscores).expect("no group holds a timestamp family");
            assert!(kept.is_for(&view, Escaping::Underscores));
            assert!(!kept.is_for(&view, Escaping::Dots), "made for another escaping");
            assert_eq!(scrape_with(store, &kept), scrapes(store).1);
            kept
        };
        let mut kept = made(&store);
        assert!(kept.is_for(&store.view(), Escaping::Underscores), "nothing changed");
        type Change<'a> = Box<dyn Fn(&mut GroupStore) + 'a>;
        let changes: [(&str, Change); 4] = [
            ("a push", Box::new(|s| assert_eq!(push_at(s, "b", "m 4\n", 5_000_000_000), model::Outcome::Pushed))),
            (
                "a failed push",
                Box::new(|s| {
                    let outcome = push_at(s, "b", "# TYPE m counter\nm 1\n", 9_000_000_000);
                    assert!(matches!(outcome, model::Outcome::Rejected { .. }), "{outcome:?}");
                }),
            ),
            ("a new group", Box::new(|s| assert_eq!(push_at(s, "c", "m 5\n", 7), model::Outcome::Pushed))),
            ("a deletion", Box::new(|s| drop(s.apply(Command::Delete { key: key(&[("job", "a"), ("zone", "z")]) })))),
        ];
        for (what, change) in changes {
            change(&mut store);
            assert!(!kept.is_for(&store.view(), Escaping::Underscores), "after {what}");
            kept = made(&store);
        }
        assert!(scrapes(&store).1.contains("push_time_seconds{instance=\"\",job=\"b\"} 5\n"), "{}", scrapes(&store).1);
    }

    /// Under every escaping scheme the kept timestamp text is what formatting the series
    /// writes, and a scrape in pieces cuts it between lines as it cuts formatted series:
    /// every piece but the last holds at least a piece's bytes and runs over by a few
    /// lines at most, however many groups there are.
    #[test]
    fn kept_timestamp_text_follows_the_escaping_and_is_cut_into_pieces() {
        let mut store = GroupStore::new();
        store.apply(Command::SetVersion { version: model::version::V4 });
        for i in 0..50 {
            let key = key(&[("job", "j"), ("instance", &format!("i{i}")), ("a.b", "ü\"\\")]);
            let families = parse_text(b"m 1\n").expect("valid body");
            let push = Command::PushUtf8 { key, families, replace: true, time: UnixNanos(i), defect: None };
            assert_eq!(store.apply(push), model::Outcome::Pushed);
        }
        let view = store.view();
        let series = timestamp_families(&view);
        for escaping in [Escaping::AllowUtf8, Escaping::Underscores, Escaping::Dots, Escaping::Values] {
            let kept = TimestampText::of(&view, escaping).expect("no group holds a timestamp family");
            let with_kept = gather(&view, Stamps::Text(&kept), &[], Prepare::Text);
            let whole =
                String::from_utf8(render_text(&gather(&view, Stamps::Series(&series), &[], Prepare::Series), escaping))
                    .expect("utf-8");
            assert_eq!(String::from_utf8(render_text(&with_kept, escaping)).expect("utf-8"), whole, "{escaping:?}");
            let longest = whole.split_inclusive('\n').map(str::len).max().unwrap_or(0);
            let mut pieces: Vec<String> = Vec::new();
            assert!(render_text_in_pieces(&with_kept, escaping, 200, &mut |p, _| {
                pieces.push(p);
                true
            }));
            assert_eq!(pieces.concat(), whole, "{escaping:?}");
            let (_, before) = pieces.split_last().expect("a last piece");
            assert!(before.len() > 10, "{escaping:?}: {} pieces", before.len());
            // Over by less than a series line, or a family's HELP and TYPE lines and its
            // first series line: whatever the number of groups.
            for p in before {
                assert!(p.len() >= 200 && p.len() < 200 + 3 * longest && p.ends_with('\n'), "{escaping:?}: {p:?}");
            }
        }
    }

    /// The scrape's timestamp families are every group's own two, merged by name in group
    /// order: with and without `instance` in the key, after a failed push, and none for an
    /// empty store.
    #[test]
    fn timestamp_families_merge_every_groups_own() {
        let mut store = GroupStore::new();
        assert!(timestamp_families(&store.view()).is_empty());
        push(&mut store, &[("job", "b"), ("instance", "i")], "m 1\n");
        push(&mut store, &[("job", "a"), ("zone", "z")], "m 2\n");
        let key = GroupingKey::new([("job".to_string(), "c".to_string())].into());
        let families = parse_text(b"# TYPE m counter\nm 1\n").expect("valid body");
        let outcome = store.apply(Command::Push { key, families, replace: true, time: UnixNanos(7), defect: None });
        assert!(matches!(outcome, model::Outcome::Rejected { .. }), "{outcome:?}");
        let view = store.view();
        let mut expected: Vec<MetricFamily> = Vec::new();
        for group in view.groups() {
            for (family, _) in group.timestamp_families() {
                match expected.iter_mut().find(|f| f.name == family.name) {
                    Some(f) => f.metrics.extend(family.metrics),
                    None => expected.push(family),
                }
            }
        }
        assert_eq!(expected.len(), 2);
        assert_eq!(expected[0].metrics.len(), 3);
        assert_eq!(timestamp_families(&view), expected);
    }

    /// An own family the version in force does not judge (the store's usage at version 1,
    /// so pushes of its name are judged as any other) yields to a pushed family of its
    /// name, whatever its type.
    #[test]
    fn a_pushed_family_takes_the_place_of_a_provisional_own_family() {
        let mut store = GroupStore::new();
        push(&mut store, &[("job", "j")], "plain 1\n");
        let quotas = model::StoreQuotas::DEFAULT;
        let render = |store: &GroupStore| {
            let view = store.view();
            let own = crate::self_metrics::store_families(view.usage(), &quotas);
            let timestamps = timestamp_families(&view);
            String::from_utf8(render_text(
                &gather(&view, Stamps::Series(&timestamps), &own, Prepare::Series),
                Escaping::Underscores,
            ))
            .expect("utf-8")
        };
        let before = render(&store);
        assert!(before.contains("# TYPE pushgateway_store_usage gauge\n"), "{before}");
        assert!(before.contains("pushgateway_store_usage{resource=\"groups\"} 1\n"), "{before}");
        assert!(before.contains("pushgateway_store_quota{resource=\"series\"} 1e+07\n"), "{before}");

        push(&mut store, &[("job", "k")], "# TYPE pushgateway_store_usage counter\npushgateway_store_usage 5\n");
        let after = render(&store);
        assert_eq!(after.matches("# TYPE pushgateway_store_usage").count(), 1, "{after}");
        assert!(after.contains("# TYPE pushgateway_store_usage counter\n"), "{after}");
        assert!(!after.contains("resource=\"groups\"} 2"), "the own series are gone: {after}");
        assert!(after.contains("pushgateway_store_quota{resource=\"groups\"}"), "the other stays: {after}");
    }

    /// Pieces are cut between series once they hold `piece` bytes, never inside a line,
    /// and put together they are the whole scrape, with and without kept series text
    /// (kept text is one piece per group; formatted series are cut one by one).
    #[test]
    fn a_scrape_in_pieces_is_the_whole_scrape_cut_between_series() {
        let mut store = GroupStore::new();
        let body: String = (0..40).map(|k| format!("x{{k=\"{k}\"}} {k}\n")).collect();
        for instance in 0..30 {
            push(&mut store, &[("job", "j"), ("instance", &format!("i{instance}"))], &body);
        }
        let view = store.view();
        let timestamps = timestamp_families(&view);
        for prepare in [Prepare::Text, Prepare::Series] {
            let families = gather(&view, Stamps::Series(&timestamps), &[], prepare);
            let whole = String::from_utf8(render_text(&families, Escaping::Underscores)).expect("utf-8");
            for piece in [1, 100, 4096, whole.len(), usize::MAX] {
                let mut pieces: Vec<(String, bool)> = Vec::new();
                let finished = render_text_in_pieces(&families, Escaping::Underscores, piece, &mut |p, last| {
                    pieces.push((p, last));
                    true
                });
                assert!(finished);
                assert_eq!(pieces.iter().map(|(p, _)| p.as_str()).collect::<String>(), whole, "piece {piece}");
                let (last, before) = pieces.split_last().expect("a last piece");
                assert!(last.1 && before.iter().all(|(_, l)| !l), "only the last piece is marked last");
                assert!(before.iter().all(|(p, _)| p.len() >= piece && p.ends_with('\n')), "piece {piece}");
                if piece > whole.len() {
                    assert_eq!(pieces.len(), 1, "a scrape that fits one piece is one piece");
                } else {
                    assert!(pieces.len() > 1, "piece {piece}: {} pieces", pieces.len());
                }
            }
            // A client gone after the second piece: rendering stops there.
            let mut taken = 0;
            let finished = render_text_in_pieces(&families, Escaping::Underscores, 100, &mut |_, _| {
                taken += 1;
                taken < 2
            });
            assert!(!finished);
            assert_eq!(taken, 2);
        }
    }

    #[test]
    fn kept_series_text_renders_what_formatting_renders_and_follows_pushes() {
        let mut store = GroupStore::new();
        for instance in ["a", "b", "c"] {
            push(&mut store, &[("job", "j"), ("instance", instance)], "x{k=\"1\"} 1\nx{k=\"2\"} 2\n");
        }
        let (kept, formatted) = scrapes(&store);
        assert_eq!(kept, formatted);
        assert_eq!(scrapes(&store).0, kept, "a second scrape, from the kept text, is the same");

        push(&mut store, &[("job", "j"), ("instance", "b")], "x{k=\"1\"} 10\n");
        let (kept, formatted) = scrapes(&store);
        assert_eq!(kept, formatted);
        assert!(kept.contains("x{instance=\"b\",job=\"j\",k=\"1\"} 10\n"), "{kept}");
        assert!(!kept.contains("x{instance=\"b\",job=\"j\",k=\"2\"}"), "the replaced series is gone: {kept}");
    }

    #[test]
    fn groups_whose_series_interleave_are_merged_in_exposition_order() {
        // Grouping-key order is job first; exposition order is label values in label-name
        // order (`instance` before `job`; a missing instance is exposed empty), so these
        // groups come out in reverse.
        let mut store = GroupStore::new();
        push(&mut store, &[("job", "a"), ("instance", "z")], "x 1\n");
        push(&mut store, &[("job", "b"), ("instance", "y")], "x 2\n");
        push(&mut store, &[("job", "c")], "x 3\n");
        let (kept, formatted) = scrapes(&store);
        assert_eq!(kept, formatted);
        let samples: Vec<&str> = kept.lines().filter(|l| l.starts_with("x")).collect();
        assert_eq!(
            samples,
            ["x{instance=\"\",job=\"c\"} 3", "x{instance=\"y\",job=\"b\"} 2", "x{instance=\"z\",job=\"a\"} 1"]
        );
    }
}
