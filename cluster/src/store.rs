//! The group store and its single writer, [`GroupStore::apply`].
//!
//! The store keeps the invariant upstream only hopes for: whatever it holds can always
//! be exposed in one consistent scrape. Every push is judged against the state it is
//! applied to (types, help-independent, duplicate series, suffix collisions, label
//! names, timestamps), and the judgement only looks at what the push can collide with:
//! the families of the same names and the groups of the same job whose grouping labels
//! agree with the pushed group's. Nothing is copied and nothing re-gathered, so the
//! cost of a push does not grow with the size of the store.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use crate::command::{Command, Outcome};
use crate::model::{
    Group, GroupingKey, LabelPair, Metric, MetricFamily, MetricType, PushedFamilies, StoredFamily, UnixNanos,
    PUSH_FAILURE_TIME_NAME, PUSH_TIME_NAME,
};
use crate::validate::{self, metric_debug};

/// A family the server exposes about itself (`process_*`, `pushgateway_*`). Pushed
/// families of the same name must have the same type. Their help is replaced by the
/// server's when exposed, except for families upstream does not know at start-up (its
/// HTTP metrics): there a pushed family must carry the same help, as upstream demands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnFamily {
    pub name: String,
    pub metric_type: MetricType,
    pub help: String,
    pub help_must_match: bool,
}

/// How many groups hold a family name, and its type (the same in all of them: the
/// store refuses a push that would make it differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FamilyUse {
    metric_type: MetricType,
    groups: usize,
}

/// All groups, ordered by grouping key (job first), plus the derived family index.
///
/// Groups are shared (`Arc`) so that a snapshot can take the whole store by reference
/// in time proportional to the number of groups, not series; a group a snapshot still
/// holds is copied when a push changes it.
#[derive(Clone, Debug, Default)]
pub struct GroupStore {
    groups: BTreeMap<GroupingKey, Arc<Group>>,
    families: BTreeMap<String, FamilyUse>,
    /// Grouping keys by job and by the names of their labels (the key's "shape"): two
    /// different keys of one shape never share a series, so a push is compared only with
    /// the groups of other shapes (see [`GroupStore::compatible_groups`]).
    shapes: BTreeMap<String, BTreeMap<Vec<String>, BTreeSet<GroupingKey>>>,
    own: Arc<BTreeMap<String, OwnFamily>>,
}

/// The store's groups at one moment and the server's own families, shared with the store
/// (a later push copies a group a view still holds). A scrape takes a view under the
/// store's lock, in time proportional to the number of groups, and renders from it
/// without the lock: applies, and the pushes waiting on them, do not wait for a render
/// of a million series.
#[derive(Clone, Debug)]
pub struct StoreView {
    groups: Vec<Arc<Group>>,
    own: Arc<BTreeMap<String, OwnFamily>>,
}

impl StoreView {
    /// Every group in grouping-key order.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.iter().map(|g| g.as_ref())
    }

    /// The server's own family of this name, if any.
    pub fn own_family(&self, name: &str) -> Option<&OwnFamily> {
        self.own.get(name)
    }
}

impl GroupStore {
    /// An empty store. `own` lists the server's own families; it must be the same on
    /// every node (it is fixed per release), because pushes are judged against it.
    pub fn new(own: Vec<OwnFamily>) -> Self {
        GroupStore {
            groups: BTreeMap::new(),
            families: BTreeMap::new(),
            shapes: BTreeMap::new(),
            own: Arc::new(own.into_iter().map(|f| (f.name.clone(), f)).collect()),
        }
    }

    /// Every group in grouping-key order.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values().map(|g| g.as_ref())
    }

    /// Every group in grouping-key order, shared: what a snapshot captures.
    pub fn shared_groups(&self) -> Vec<Arc<Group>> {
        self.groups.values().cloned().collect()
    }

    /// The groups as they are now, to read without the store's lock (see [`StoreView`]).
    pub fn view(&self) -> StoreView {
        StoreView { groups: self.shared_groups(), own: self.own.clone() }
    }

    pub fn group(&self, key: &GroupingKey) -> Option<&Group> {
        self.groups.get(key).map(|g| g.as_ref())
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The server's own family of this name, if any.
    pub fn own_family(&self, name: &str) -> Option<&OwnFamily> {
        self.own.get(name)
    }

    /// Applies one command. This is the only function that changes the store, it reads
    /// no clock and no environment, and the same command sequence gives the same state
    /// and the same outcomes everywhere.
    pub fn apply(&mut self, command: Command) -> Outcome {
        match command {
            Command::Push { key, families, replace, time, defect } => match defect {
                Some(reason) => {
                    self.record_failure(&key, time);
                    Outcome::Rejected { reason }
                }
                None => self.push(key, families, replace, time),
            },
            Command::Delete { key } => {
                self.remove_group(&key);
                Outcome::Deleted
            }
            Command::Wipe => {
                let groups = self.groups.len();
                self.groups.clear();
                self.families.clear();
                self.shapes.clear();
                Outcome::Wiped { groups }
            }
        }
    }

    /// Replaces the whole content of the store (used when a snapshot is installed).
    pub fn replace_groups(&mut self, groups: impl IntoIterator<Item = Group>) {
        self.groups.clear();
        self.families.clear();
        self.shapes.clear();
        for group in groups {
            for (name, stored) in &group.families {
                self.index_add(name, stored.family.metric_type);
            }
            self.shape_add(&group.key);
            self.groups.insert(group.key.clone(), Arc::new(group));
        }
    }

    fn push(&mut self, key: GroupingKey, families: PushedFamilies, replace: bool, time: UnixNanos) -> Outcome {
        let families = sanitize(families, &key);
        if let Err(reason) = self.check_push(&key, &families, replace) {
            self.record_failure(&key, time);
            return Outcome::Rejected { reason };
        }
        let group = self.group_entry(&key, time);
        let mut removed: Vec<String> = Vec::new();
        let mut added: Vec<(String, MetricType)> = Vec::new();
        if replace {
            removed.extend(group.families.keys().cloned());
            group.families.clear();
        }
        for (name, family) in families {
            let metric_type = family.metric_type;
            if let Some(old) = group.families.insert(name.clone(), StoredFamily::new(family, time)) {
                removed.push(old.family.name);
            }
            added.push((name, metric_type));
        }
        group.push_time = time;
        for name in removed {
            self.index_remove(&name);
        }
        for (name, t) in added {
            self.index_add(&name, t);
        }
        Outcome::Pushed
    }

    /// Sets `push_failure_time_seconds` of the group, creating the group if needed,
    /// unless creating it would expose timestamp series identical to another group's
    /// (`{job="a"}` and `{job="a",instance=""}`): upstream creates it anyway and from
    /// then on cannot be scraped; we keep the store scrapeable instead.
    fn record_failure(&mut self, key: &GroupingKey, time: UnixNanos) {
        if !self.groups.contains_key(key) {
            let series = key.series_labels();
            let clash =
                self.compatible_groups(key).any(|other| other.key != *key && other.key.series_labels() == series);
            if clash {
                return;
            }
        }
        self.group_entry(key, time).push_failure_time = time;
    }

    fn remove_group(&mut self, key: &GroupingKey) {
        if let Some(group) = self.groups.remove(key) {
            for name in group.families.keys() {
                self.index_remove(name);
            }
            self.shape_remove(key);
        }
    }

    fn index_add(&mut self, name: &str, metric_type: MetricType) {
        self.families
            .entry(name.to_string())
            .and_modify(|u| u.groups += 1)
            .or_insert(FamilyUse { metric_type, groups: 1 });
    }

    fn index_remove(&mut self, name: &str) {
        if let Some(u) = self.families.get_mut(name) {
            u.groups -= 1;
            if u.groups == 0 {
                self.families.remove(name);
            }
        }
    }

    /// The group of `key`, created (and indexed) if it does not exist.
    fn group_entry(&mut self, key: &GroupingKey, time: UnixNanos) -> &mut Group {
        if !self.groups.contains_key(key) {
            self.shape_add(key);
        }
        Arc::make_mut(self.groups.entry(key.clone()).or_insert_with(|| Arc::new(Group::new(key.clone(), time))))
    }

    fn shape_add(&mut self, key: &GroupingKey) {
        let shape: Vec<String> = key.labels().keys().cloned().collect();
        self.shapes.entry(key.job().to_string()).or_default().entry(shape).or_default().insert(key.clone());
    }

    fn shape_remove(&mut self, key: &GroupingKey) {
        let shape: Vec<String> = key.labels().keys().cloned().collect();
        if let Some(shapes) = self.shapes.get_mut(key.job()) {
            if let Some(keys) = shapes.get_mut(&shape) {
                keys.remove(key);
                if keys.is_empty() {
                    shapes.remove(&shape);
                }
            }
            if shapes.is_empty() {
                self.shapes.remove(key.job());
            }
        }
    }

    /// Other groups of the same job whose grouping labels agree with `key` on every
    /// shared name: the only groups whose series can be identical to the series of
    /// `key`. A group with the same label names as `key` agrees on all of them only if
    /// it is `key` itself, so only groups of other shapes are looked at: with one shape
    /// per job (the usual case) this costs nothing however many groups there are.
    fn compatible_groups<'a>(&'a self, key: &'a GroupingKey) -> impl Iterator<Item = &'a Group> + 'a {
        let names: Vec<&String> = key.labels().keys().collect();
        self.shapes
            .get(key.job())
            .into_iter()
            .flat_map(|shapes| shapes.iter())
            .filter(move |(shape, _)| !shape.iter().eq(names.iter().copied()))
            .flat_map(|(_, keys)| keys.iter())
            .filter(move |other| other.compatible_with(key))
            .filter_map(|other| self.group(other))
    }

    fn type_elsewhere(&self, key: &GroupingKey, name: &str) -> Option<MetricType> {
        let usage = self.families.get(name)?;
        let own_count = self.groups.get(key).is_some_and(|g| g.families.contains_key(name)) as usize;
        (usage.groups > own_count).then_some(usage.metric_type)
    }

    /// The judgement of a push (families already sanitized) against the current state.
    /// Returns upstream's message for the first problem found.
    fn check_push(&self, key: &GroupingKey, families: &PushedFamilies, replace: bool) -> Result<(), String> {
        validate::intrinsic(families)?;
        let current = self.group(key);
        // Type of `name` after the push, anywhere in the store or in the server itself.
        let type_after = |name: &str| -> Option<MetricType> {
            if let Some(f) = families.get(name) {
                return Some(f.metric_type);
            }
            if !replace {
                if let Some(f) = current.and_then(|g| g.families.get(name)) {
                    return Some(f.family.metric_type);
                }
            }
            if name == PUSH_TIME_NAME || name == PUSH_FAILURE_TIME_NAME {
                return Some(MetricType::Gauge);
            }
            self.type_elsewhere(key, name).or_else(|| self.own.get(name).map(|o| o.metric_type))
        };
        for family in families.values() {
            let name = family.name.as_str();
            if let Some(own) = self.own.get(name) {
                let help = family.help.as_deref().unwrap_or("");
                if own.help_must_match && help != own.help {
                    return Err(format!(
                        "gathered metric family {name} has help {help:?} but should have {:?}",
                        own.help
                    ));
                }
                if own.metric_type != family.metric_type {
                    return Err(format!(
                        "gathered metric family {name} has type {} but should have {}",
                        family.metric_type.upper_name(),
                        own.metric_type.upper_name()
                    ));
                }
            }
            if let Some(other) = self.type_elsewhere(key, name) {
                if other != family.metric_type {
                    return Err(self.type_conflict_message(key, name, family.metric_type));
                }
            }
            check_suffix_collisions(family, &type_after)?;
        }
        self.check_duplicates_across_groups(key, families, replace)
    }

    fn type_conflict_message(&self, key: &GroupingKey, name: &str, wanted: MetricType) -> String {
        let example = self
            .groups
            .values()
            .filter(|g| g.key != *key)
            .find_map(|g| g.families.get(name))
            .and_then(|f| f.family.metrics.first());
        match example {
            Some(m) => format!("collected metric {name:?} {{ {}}} is not a {}", metric_debug(m), wanted.upper_name()),
            None => format!("gathered metric family {name} has inconsistent types"),
        }
    }

    /// Series of the pushed group (after the push) that another compatible group
    /// already exposes.
    fn check_duplicates_across_groups(
        &self,
        key: &GroupingKey,
        families: &PushedFamilies,
        replace: bool,
    ) -> Result<(), String> {
        let current = self.group(key);
        let timestamps = Group::new(key.clone(), UnixNanos::default()).timestamp_families();
        for other in self.compatible_groups(key).filter(|g| g.key != *key) {
            let other_timestamps = other.timestamp_families();
            for (theirs, _) in &other_timestamps {
                for (mine, _) in &timestamps {
                    if mine.name == theirs.name && mine.metrics[0].labels == theirs.metrics[0].labels {
                        return Err(duplicate_message(&mine.name, &mine.metrics[0]));
                    }
                }
            }
            for (name, theirs) in &other.families {
                let mine: Option<&MetricFamily> = families.get(name).or_else(|| {
                    (!replace).then(|| current.and_then(|g| g.families.get(name)).map(|s| &s.family)).flatten()
                });
                let Some(mine) = mine else { continue };
                let seen: HashSet<&[LabelPair]> = theirs.family.metrics.iter().map(|m| m.labels.as_slice()).collect();
                if let Some(m) = mine.metrics.iter().find(|m| seen.contains(m.labels.as_slice())) {
                    return Err(duplicate_message(name, m));
                }
            }
        }
        Ok(())
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
fn check_suffix_collisions(
    family: &MetricFamily,
    type_after: &dyn Fn(&str) -> Option<MetricType>,
) -> Result<(), String> {
    let name = family.name.as_str();
    let owned: &[&str] = match family.metric_type {
        MetricType::Summary => &["_count", "_sum"],
        MetricType::Histogram | MetricType::GaugeHistogram => &["_count", "_sum", "_bucket"],
        _ => &[],
    };
    for suffix in owned {
        let derived = format!("{name}{suffix}");
        if type_after(&derived).is_some() {
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
        if let Some(t) = type_after(base).filter(|t| owners.contains(t)) {
            let what = if t == MetricType::Summary { "summary" } else { "histogram" };
            return Err(format!(
                "collected metric named {name:?} collides with previously collected {what} named {base:?}"
            ));
        }
    }
    Ok(())
}

/// Upstream's `sanitizeLabels`: every series gets the grouping labels (overriding
/// same-named labels from the body) and `instance=""` if it has no instance; labels
/// are sorted by name. Families named like the two timestamp families are dropped:
/// the server owns those.
pub fn sanitize(families: PushedFamilies, key: &GroupingKey) -> PushedFamilies {
    families
        .into_iter()
        .filter(|(name, _)| name != PUSH_TIME_NAME && name != PUSH_FAILURE_TIME_NAME)
        .map(|(name, mut family)| {
            for metric in &mut family.metrics {
                // Exactly the room the completed labels need: a million stored series
                // would otherwise carry a million half-empty label vectors.
                let has = |labels: &[LabelPair], name: &str| labels.iter().any(|l| l.name == name);
                let missing = key.labels().keys().filter(|k| !has(&metric.labels, k)).count()
                    + usize::from(!key.labels().contains_key("instance") && !has(&metric.labels, "instance"));
                metric.labels.reserve_exact(missing);
                for (k, v) in key.labels() {
                    match metric.labels.iter_mut().find(|l| l.name == *k) {
                        Some(l) => l.value = v.as_str().into(),
                        None => metric.labels.push(LabelPair::new(k.as_str(), v.as_str())),
                    }
                }
                if !metric.labels.iter().any(|l| l.name == "instance") {
                    metric.labels.push(LabelPair::new("instance", ""));
                }
                metric.labels.sort_by(|a, b| a.name.cmp(&b.name));
            }
            (name, family)
        })
        .collect()
}

#[cfg(test)]
mod tests;
