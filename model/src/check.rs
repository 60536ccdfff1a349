//! The whole consistency check of a push, in one place: what a push must satisfy by
//! itself ([`intrinsic`]: timestamps, names, label names, value types, duplicate series
//! within the push), the completion of its labels ([`sanitize`]), and its judgement
//! against the store it is applied to ([`GroupStore::check_push`]: types, the server's
//! own families, suffix collisions, series another group already exposes). Messages
//! follow upstream's wording; they are part of the replicated outcome, so they must be
//! the same on every node.

use std::collections::HashSet;

use crate::go_format::metric_debug;
use crate::group::{Group, PUSH_FAILURE_TIME_NAME, PUSH_TIME_NAME};
use crate::grouping_key::GroupingKey;
use crate::labels::{Label, Labels};
use crate::metric::{Metric, MetricFamily, MetricType, PushedFamilies, UnixNanos};
use crate::store::{GroupStore, Types};
use crate::version::{self, FormatVersion};
use crate::wire;

/// Which names a push may use: upstream's legacy rules, or with `--push.enable-utf8-names`
/// (upstream 1.11) any non-empty UTF-8 name. The reserved `__` prefix of label names and
/// every other rule stay the same under both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Names {
    Legacy,
    Utf8,
}

impl Names {
    pub fn metric_name_ok(self, name: &str) -> bool {
        match self {
            Names::Legacy => is_valid_metric_name(name),
            Names::Utf8 => !name.is_empty(),
        }
    }

    pub fn label_name_ok(self, name: &str) -> bool {
        match self {
            Names::Legacy => is_valid_label_name(name),
            Names::Utf8 => !name.is_empty(),
        }
    }
}

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

/// Whether every name of a push (families, their labels, the grouping key's labels) passes
/// the legacy rules: such a push is judged alike under both [`Names`].
pub fn legacy_names_only(key: &GroupingKey, families: &PushedFamilies) -> bool {
    key.labels().keys().all(|n| is_valid_label_name(n))
        && families.values().all(|f| {
            is_valid_metric_name(&f.name)
                && f.metrics.iter().flat_map(|m| &m.labels).all(|l| is_valid_label_name(l.name))
        })
}

/// Upstream's refusal of a pushed series with a timestamp.
pub const TIMESTAMPED: &str = "pushed metrics must not have timestamps";

/// Whether a series of a pushed family named like one of the two timestamp families (which
/// [`sanitize`] drops) carries a timestamp. Looks at those two families only.
pub fn timestamped_stamp_families(families: &PushedFamilies) -> bool {
    [PUSH_TIME_NAME, PUSH_FAILURE_TIME_NAME]
        .iter()
        .filter_map(|name| families.get(*name))
        .any(|f| f.metrics.iter().any(|m| m.timestamp_ms.is_some()))
}

/// The problems of each series of `family` by itself and of its duplicates within the
/// push (`family` must already carry the grouping labels, see [`sanitize`]), appended to
/// `errors`: each series that fails a check once (with the first check it fails, in
/// upstream's order); a series that fails is not counted as seen, so a later copy of it
/// is not named a duplicate, as in upstream's gathering.
fn series_errors(family: &MetricFamily, names: Names, version: FormatVersion, errors: &mut Problems) {
    let name = family.name.as_str();
    let mut seen: HashSet<&Labels> = HashSet::with_capacity(family.metrics.len());
    for m in &family.metrics {
        if let Err(what) = series_problem(family, m, names, version) {
            errors.add(|| format!("collected metric {name:?} {{ {}}} {what}", metric_debug(m)));
            continue;
        }
        if !seen.insert(&m.labels) {
            errors.add(|| duplicate_message(name, m));
        }
    }
}

/// What is wrong with one series of `family` by itself (its duplicates aside), in the
/// words that follow the series in upstream's message.
fn series_problem(family: &MetricFamily, m: &Metric, names: Names, version: FormatVersion) -> Result<(), String> {
    if !m.value.fits(family.metric_type) {
        return Err(format!("is not a {}", family.metric_type.upper_name()));
    }
    // Upstream refuses a `quantile` label on any series that carries a summary, whatever
    // its family's type (a protobuf metric may carry one beside its family's value): from
    // version 8 on, so does `apply`.
    let summary = family.metric_type == MetricType::Summary || (version >= version::V8 && carries_summary(m));
    // Starting from "" as Go's check does: an empty name (sorted first) is named
    // a repeated one, in upstream's words.
    let mut previous: &str = "";
    for label in &m.labels {
        if previous == label.name {
            return Err(format!("has two or more labels with the same name: {}", label.name));
        }
        previous = label.name;
        if !names.label_name_ok(label.name) || is_reserved_label_name(label.name) {
            return Err(format!("has a label with an invalid name: {}", label.name));
        }
        if summary && label.name == "quantile" {
            return Err("must not have an explicit \"quantile\" label".to_string());
        }
        if matches!(family.metric_type, MetricType::Histogram | MetricType::GaugeHistogram) && label.name == "le" {
            return Err("must not have an explicit \"le\" label".to_string());
        }
    }
    Ok(())
}

/// Whether a protobuf-pushed series carries a summary message (Go's `Summary != nil`)
/// among its kept fields: field 4, length-delimited (of another wire type Go keeps it as
/// an unknown field). Linear in the kept fields.
fn carries_summary(m: &Metric) -> bool {
    m.value.proto_fields().is_some_and(|fields| wire::fields(fields).any(|f| f.number == 4 && f.wire_type == wire::LEN))
}

/// How many problems a message lists at most. Every node words the outcome of every
/// entry it applies, so a push of half a million broken series must not make each of
/// them build a message of tens of megabytes; upstream lists them all.
pub const MAX_LISTED_ERRORS: usize = 1_000;

/// The problems of a push as they are found: all counted, the first
/// [`MAX_LISTED_ERRORS`] worded (the others' words are never built).
#[derive(Default)]
pub struct Problems {
    listed: Vec<String>,
    count: usize,
}

impl Problems {
    /// Counts a problem, wording it only if it will be listed.
    pub fn add(&mut self, words: impl FnOnce() -> String) {
        self.count += 1;
        if self.listed.len() < MAX_LISTED_ERRORS {
            self.listed.push(words());
        }
    }

    /// The problems as one message, as client_golang's `MultiError` after `MaybeUnwrap`
    /// words them: none is no error, one is itself, more are counted and listed (then how
    /// many more there are, past [`MAX_LISTED_ERRORS`]).
    pub fn into_result(self) -> Result<(), String> {
        let Problems { listed, count } = self;
        match count {
            0 => Ok(()),
            1 => Err(listed.into_iter().next().unwrap_or_default()),
            n => {
                let mut out = format!("{n} error(s) occurred:");
                for e in &listed {
                    out.push_str("\n* ");
                    out.push_str(e);
                }
                if n > listed.len() {
                    out.push_str(&format!("\n* ... and {} more", n - listed.len()));
                }
                Err(out)
            }
        }
    }
}

impl GroupStore {
    /// The judgement of a push (families already sanitized) against the current state,
    /// at `time` (the push time its group would get).
    ///
    /// Every problem is reported, as upstream's gathering reports them (see
    /// [`one_message`]): a family that clashes with the server's own families or another
    /// group's type, or has an invalid name, once (its series are not looked at then);
    /// each series of the other families that fails a check once; then each series
    /// another group already exposes. Families come in name order, other groups in key
    /// order (upstream's order there is Go's map order, which varies).
    pub(crate) fn check_push(
        &self,
        key: &GroupingKey,
        families: &PushedFamilies,
        replace: bool,
        names: Names,
        time: UnixNanos,
    ) -> Result<(), String> {
        if families.values().flat_map(|f| &f.metrics).any(|m| m.timestamp_ms.is_some()) {
            return Err(TIMESTAMPED.to_string());
        }
        let current = self.group(key);
        // Type of `name` after the push, anywhere in the store or in the server itself.
        // A pushed family already refused is left out, as upstream's gathering leaves it
        // out of what the next families are checked against.
        // The types `name` has after the push, anywhere in the store or in the server
        // itself (several only for families without series, from version 8 on). A pushed
        // family already refused is left out, as upstream's gathering leaves it out of
        // what the next families are checked against.
        // The group's own family of that name after the push (pushed, or kept by a POST)
        // and the other groups': several types only for families without series (version
        // 8), each of which upstream's gathering may meet first.
        let types_after = |name: &str, skipped: &HashSet<&str>| -> Types {
            if name == PUSH_TIME_NAME || name == PUSH_FAILURE_TIME_NAME {
                return Types::of(MetricType::Gauge);
            }
            let pushed = families.get(name).filter(|_| !skipped.contains(name)).map(|f| f.metric_type);
            let kept = || (!replace).then(|| current.and_then(|g| g.families.get(name))).flatten();
            let own = pushed.or_else(|| kept().map(|f| f.family.metric_type));
            let types = own.map(Types::of).unwrap_or_default().union(self.elsewhere(key, name).types);
            if types.is_empty() {
                return self.own_family(name).map(|o| Types::of(o.metric_type)).unwrap_or_default();
            }
            types
        };
        let mut errors = Problems::default();
        let mut skipped: HashSet<&str> = HashSet::new();
        for family in families.values() {
            if self.family_problem(key, family, names, &|name| types_after(name, &skipped), &mut errors) {
                skipped.insert(family.name.as_str());
            } else {
                series_errors(family, names, self.version(), &mut errors);
            }
        }
        self.duplicates_across_groups(key, families, replace, time, &skipped, &mut errors);
        errors.into_result()
    }

    /// What is wrong with a pushed family as a whole, in upstream's words (one problem,
    /// or one for each of its series), added to `errors`; whether there was anything.
    fn family_problem(
        &self,
        key: &GroupingKey,
        family: &MetricFamily,
        names: Names,
        types_after: &dyn Fn(&str) -> Types,
        errors: &mut Problems,
    ) -> bool {
        let name = family.name.as_str();
        let one = |errors: &mut Problems, words: String| {
            errors.add(|| words);
            true
        };
        if !names.metric_name_ok(name) {
            return one(errors, format!("collected metric family has an invalid name: {name:?}"));
        }
        if let Some(own) = self.own_family(name) {
            let help = family.help.as_deref().unwrap_or("");
            if own.help_must_match && help != own.help {
                let words = format!("gathered metric family {name} has help {help:?} but should have {:?}", own.help);
                return one(errors, words);
            }
            if own.metric_type != family.metric_type {
                let (pushed, wanted) = (family.metric_type.upper_name(), own.metric_type.upper_name());
                return one(
                    errors,
                    format!("gathered metric family {name} has type {pushed} but should have {wanted}"),
                );
            }
        }
        if let Some(other) = self.type_clash(key, family) {
            self.type_conflict(key, family, other, errors);
            return true;
        }
        match check_suffix_collisions(family, types_after) {
            Err(words) => one(errors, words),
            Ok(()) => false,
        }
    }

    /// The type of another group's family of the pushed family's name that clashes with
    /// it, if one does: any other type up to version 7; from version 8 on, only when
    /// either family has series (see [`version::V8`]).
    fn type_clash(&self, key: &GroupingKey, family: &MetricFamily) -> Option<MetricType> {
        let elsewhere = self.elsewhere(key, &family.name);
        let clash_by_version = self.version() < version::V8 || !family.metrics.is_empty() || elsewhere.with_series;
        elsewhere.types.iter().find(|&t| t != family.metric_type).filter(|_| clash_by_version)
    }

    /// A pushed family whose type another group's family of that name does not have, as
    /// upstream words it when it gathers that group first (its usual order; Go's map
    /// order decides): each pushed series is not of the other's type. A family pushed
    /// without series is worded as in the other order: the other group's first series is
    /// not of the pushed type.
    fn type_conflict(&self, key: &GroupingKey, family: &MetricFamily, other: MetricType, errors: &mut Problems) {
        let name = family.name.as_str();
        for m in &family.metrics {
            errors
                .add(|| format!("collected metric {name:?} {{ {}}} is not a {}", metric_debug(m), other.upper_name()));
        }
        if !family.metrics.is_empty() {
            return;
        }
        let example = self
            .groups
            .values()
            .filter(|g| g.key != *key)
            .filter_map(|g| g.families.get(name))
            .find_map(|f| f.family.metrics.first());
        errors.add(|| match example {
            Some(m) => format!(
                "collected metric {name:?} {{ {}}} is not a {}",
                metric_debug(m),
                family.metric_type.upper_name()
            ),
            None => format!("gathered metric family {name} has inconsistent types"),
        });
    }

    /// Series of the pushed group (after the push) that another compatible group
    /// already exposes, appended to `errors` (families in `skipped` aside).
    fn duplicates_across_groups(
        &self,
        key: &GroupingKey,
        families: &PushedFamilies,
        replace: bool,
        time: UnixNanos,
        skipped: &HashSet<&str>,
        errors: &mut Problems,
    ) {
        let current = self.group(key);
        let mine = Group::new(key.clone(), UnixNanos::default());
        for other in self.compatible_groups(key).filter(|g| g.key != *key) {
            // Both timestamp families of a group carry its series labels, so the same
            // labels as another group's are two identical series in each (the pushed
            // group's at failure time 0, as it would be created, and at the push's time).
            if other.series_labels() == mine.series_labels() {
                errors
                    .add(|| duplicate_message(PUSH_FAILURE_TIME_NAME, &mine.timestamp_series(mine.push_failure_time)));
                errors.add(|| duplicate_message(PUSH_TIME_NAME, &mine.timestamp_series(time)));
            }
            for (name, theirs) in &other.families {
                if skipped.contains(name.as_str()) {
                    continue;
                }
                let mine: Option<&MetricFamily> = families.get(name).or_else(|| {
                    (!replace).then(|| current.and_then(|g| g.families.get(name)).map(|s| &s.family)).flatten()
                });
                let Some(mine) = mine else { continue };
                let seen: HashSet<&Labels> = theirs.family.metrics.iter().map(|m| &m.labels).collect();
                for m in mine.metrics.iter().filter(|m| seen.contains(&m.labels)) {
                    errors.add(|| duplicate_message(name, m));
                }
            }
        }
    }
}

fn duplicate_message(name: &str, m: &Metric) -> String {
    format!(
        "collected metric {name:?} {{ {}}} was collected before with the same name and label values",
        metric_debug(m)
    )
}

/// Upstream's `checkSuffixCollisions`: a summary `m` owns `m_sum` and `m_count`, a
/// histogram also `m_bucket`; no other family may use those names.
fn check_suffix_collisions(family: &MetricFamily, types_after: &dyn Fn(&str) -> Types) -> Result<(), String> {
    let name = family.name.as_str();
    let owned: &[&str] = match family.metric_type {
        MetricType::Summary => &["_count", "_sum"],
        MetricType::Histogram | MetricType::GaugeHistogram => &["_count", "_sum", "_bucket"],
        _ => &[],
    };
    for suffix in owned {
        let derived = format!("{name}{suffix}");
        if !types_after(&derived).is_empty() {
            let what = if *suffix == "_bucket" { "histogram" } else { "histogram or summary" };
            return Err(format!(
                "collected {what} named {name:?} collides with previously collected metric named {derived:?}"
            ));
        }
    }
    for (suffix, owners) in [
        ("_count", &[MetricType::Summary, MetricType::Histogram, MetricType::GaugeHistogram][..]),
        ("_sum", &[MetricType::Summary, MetricType::Histogram, MetricType::GaugeHistogram][..]),
        ("_bucket", &[MetricType::Histogram, MetricType::GaugeHistogram][..]),
    ] {
        let Some(base) = name.strip_suffix(suffix) else { continue };
        // Several types only for families without series (version 8): upstream's
        // verdict then follows Go's map order; any owner among them is refused.
        if let Some(t) = types_after(base).iter().find(|t| owners.contains(t)) {
            let what = if t == MetricType::Summary { "summary" } else { "histogram" };
            return Err(format!(
                "collected metric named {name:?} collides with previously collected {what} named {base:?}"
            ));
        }
    }
    Ok(())
}

/// Upstream's `sanitizeLabels`: every series gets the grouping labels (overriding the
/// first same-named label from the body) and `instance=""` if it has no instance; labels
/// are sorted by name (stably: repeated names keep their order, for the duplicate check).
/// Families named like the two timestamp families are dropped: the server owns those.
///
/// Linear in the size of the result: each series' labels are sorted and merged with the
/// grouping labels (already sorted) in one pass, and packed into one allocation of exactly
/// that size.
pub fn sanitize(families: PushedFamilies, key: &GroupingKey) -> PushedFamilies {
    let grouping: Vec<(&str, &str)> = key.labels().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let key_has_instance = key.labels().contains_key("instance");
    families
        .into_iter()
        .filter(|(name, _)| name != PUSH_TIME_NAME && name != PUSH_FAILURE_TIME_NAME)
        .map(|(name, mut family)| {
            for metric in &mut family.metrics {
                metric.labels = merge_labels(&metric.labels, &grouping, key_has_instance);
            }
            (name, family)
        })
        .collect()
}

/// `own` (any order) merged with `grouping` (sorted, unique names), as [`sanitize`] says.
fn merge_labels(own: &Labels, grouping: &[(&str, &str)], key_has_instance: bool) -> Labels {
    let mut own: Vec<Label<'_>> = own.iter().collect();
    own.sort_by(|a, b| a.name.cmp(b.name));
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(own.len() + grouping.len() + usize::from(!key_has_instance));
    let mut own = own.into_iter().peekable();
    let mut grouping = grouping.iter().copied().peekable();
    loop {
        match (own.peek(), grouping.peek()) {
            (Some(a), Some(g)) if a.name < g.0 => out.extend(own.next().map(|l| (l.name, l.value))),
            (Some(a), Some(g)) if a.name == g.0 => {
                own.next();
                out.extend(grouping.next());
            }
            (_, Some(_)) => out.extend(grouping.next()),
            (Some(_), None) => out.extend(own.next().map(|l| (l.name, l.value))),
            (None, None) => break,
        }
    }
    if !key_has_instance {
        let at = out.partition_point(|l| l.0 < "instance");
        if out.get(at).is_none_or(|l| l.0 != "instance") {
            out.insert(at, ("instance", ""));
        }
    }
    Labels::from_pairs(out.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::LabelPair;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Upstream's algorithm as written there: for each grouping label, override the first
    /// same-named label or append; add `instance=""` if none; sort stably. Quadratic.
    fn reference(mut labels: Vec<LabelPair>, key: &GroupingKey) -> Vec<LabelPair> {
        for (k, v) in key.labels() {
            match labels.iter_mut().find(|l| l.name == *k) {
                Some(l) => l.value = v.as_str().into(),
                None => labels.push(LabelPair::new(k.as_str(), v.as_str())),
            }
        }
        if !labels.iter().any(|l| l.name == "instance") {
            labels.push(LabelPair::new("instance", ""));
        }
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        labels
    }

    fn name() -> impl Strategy<Value = String> {
        // A small alphabet, so names repeat and collide with the key's and `instance`.
        prop_oneof![Just("instance".to_string()), Just("job".to_string()), "[a-d]{1,2}"]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// The linear merge gives exactly what upstream's algorithm gives, with keys and
        /// series of up to 200 labels and repeated names.
        #[test]
        fn merging_matches_upstreams_algorithm(
            key_labels in prop::collection::btree_map(name(), "[xy]{0,2}", 0..200),
            own in prop::collection::vec((name(), "[uv]{0,2}"), 0..200),
        ) {
            let mut key_labels: BTreeMap<String, String> = key_labels;
            key_labels.insert("job".into(), "j".into());
            let key = GroupingKey::new(key_labels);
            let own: Vec<LabelPair> = own.into_iter().map(|(n, v)| LabelPair::new(n, v)).collect();
            let expected = reference(own.clone(), &key);
            let has_instance = key.labels().contains_key("instance");
            let grouping: Vec<(&str, &str)> = key.labels().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            prop_assert_eq!(merge_labels(&Labels::from(own), &grouping, has_instance), Labels::from(expected));
        }
    }
}
