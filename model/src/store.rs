//! The group store and its single writer, [`GroupStore::apply`].
//!
//! The store keeps the invariant upstream only hopes for: whatever it holds can always
//! be exposed in one consistent scrape. Every push is judged against the state it is
//! applied to (types, help-independent, duplicate series, suffix collisions, label
//! names, timestamps), and the judgement only looks at what the push can collide with:
//! the families of the same names and the groups of the same job whose grouping labels
//! agree with the pushed group's. Nothing is copied and nothing re-gathered, so the
//! cost of a push does not grow with the size of the store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};

use crate::check::{sanitize, Names};
use crate::command::{Command, Outcome, Push, MAX_BATCH_GROUPS};
use crate::group::{Group, StoredFamily, Ttl};
use crate::grouping_key::GroupingKey;
use crate::limits::PushLimits;
use crate::metric::{MetricFamily, MetricType, PushedFamilies, UnixNanos};
use crate::own_families::{OwnFamilies, OwnFamily};
use crate::quota::{QuotaExceeded, StoreQuotas, Usage};
use crate::selector;
use crate::version::{self, FormatVersion};

/// How many groups hold a family name, by type, and how many of those families have
/// series. Up to replicated-format version 7 all of them have one type (the store refuses
/// a push that would make them differ); from version 8 on, families of a name that none
/// of the groups has series for may differ in type (see [`version::V8`]): once one of them
/// has series, all have its type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FamilyUse {
    /// Groups by type, indexed by the type's protobuf number.
    groups: [usize; 6],
    /// Groups whose family of the name has at least one series.
    with_series: usize,
}

impl FamilyUse {
    fn slot(metric_type: MetricType) -> usize {
        metric_type.proto_number() as usize
    }

    fn add(&mut self, metric_type: MetricType, with_series: bool) {
        self.groups[FamilyUse::slot(metric_type)] += 1;
        self.with_series += with_series as usize;
    }

    fn remove(&mut self, metric_type: MetricType, with_series: bool) {
        self.groups[FamilyUse::slot(metric_type)] -= 1;
        self.with_series -= with_series as usize;
    }

    fn is_unused(&self) -> bool {
        self.groups.iter().all(|&n| n == 0)
    }

    /// The types of the groups' families.
    fn types(&self) -> Types {
        Types(self.groups.iter().enumerate().filter(|(_, &n)| n > 0).fold(0, |bits, (i, _)| bits | 1 << i))
    }
}

/// What the family index counts of a group's family: its name, type, and whether it has
/// series.
type Indexed<'a> = (&'a str, MetricType, bool);

fn indexed(family: &MetricFamily) -> Indexed<'_> {
    (&family.name, family.metric_type, !family.metrics.is_empty())
}

/// A set of metric types: those a family name has in the store's groups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Types(u8);

impl Types {
    pub(crate) fn of(metric_type: MetricType) -> Types {
        Types(1 << FamilyUse::slot(metric_type))
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn union(self, other: Types) -> Types {
        Types(self.0 | other.0)
    }

    /// The types in protobuf number order.
    pub(crate) fn iter(self) -> impl Iterator<Item = MetricType> {
        (0..6).filter(move |i| self.0 & 1 << i != 0).filter_map(MetricType::from_proto_number)
    }
}

/// The families of a name in the groups other than one: their types, and whether any has
/// series (see [`GroupStore::elsewhere`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Elsewhere {
    pub(crate) types: Types,
    pub(crate) with_series: bool,
}

/// All groups, ordered by grouping key (job first), plus the derived family index.
///
/// Groups are shared (`Arc`) so that a snapshot can take the whole store by reference
/// in time proportional to the number of groups, not series; a group a snapshot still
/// holds is copied when a push changes it.
#[derive(Clone, Debug)]
pub struct GroupStore {
    pub(crate) groups: BTreeMap<GroupingKey, Arc<Group>>,
    families: BTreeMap<String, FamilyUse>,
    /// Grouping keys by job and by the names of their labels (the key's "shape"): two
    /// different keys of one shape never share a series, so a push is compared only with
    /// the groups of other shapes (see [`GroupStore::compatible_groups`]).
    shapes: BTreeMap<String, BTreeMap<Vec<String>, BTreeSet<GroupingKey>>>,
    /// The server's own families pushes are judged against: those of the version in force
    /// ([`OwnFamilies::at`]), unless a test fixed others (`own_fixed`).
    pub(crate) own: OwnFamilies,
    own_fixed: bool,
    /// What the groups count against the quotas, kept up to date by every change.
    usage: Usage,
    /// The replicated-format version in force ([`crate::version`]): how `apply` judges.
    version: FormatVersion,
    /// The keys of the groups the last command created, changed or removed (see
    /// [`GroupStore::apply_noting`]).
    changed: Vec<GroupingKey>,
    /// How many groups have a TTL of their own: none, and no default, and expiry need not look.
    with_ttl: usize,
}

/// What a command changed, for the storage that mirrors the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Changed {
    /// These groups (each now stored as [`GroupStore::group`] says, or gone).
    Groups(Vec<GroupingKey>),
    /// Every group is gone.
    All,
    /// The version in force (and nothing else).
    Version,
}

impl Default for GroupStore {
    fn default() -> Self {
        GroupStore::new()
    }
}

/// The store's groups at one moment and the server's own families, shared with the store
/// (a later push copies a group a view still holds). A scrape takes a view under the
/// store's lock, in time proportional to the number of groups, and renders from it
/// without the lock: applies, and the pushes waiting on them, do not wait for a render
/// of a million series.
#[derive(Clone, Debug)]
pub struct StoreView {
    groups: Vec<Arc<Group>>,
    own: OwnFamilies,
    usage: Usage,
}

impl StoreView {
    /// Every group in grouping-key order.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.iter().map(|g| g.as_ref())
    }

    /// The server's own family of this name at the version in force, if any.
    pub fn own_family(&self, name: &str) -> Option<&OwnFamily> {
        self.own.find(name)
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// How many groups there are.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// What the groups count against the quotas ([`GroupStore::usage`]).
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The groups as weak references: what [`StoreView::same_groups`] compares a later
    /// view with, without keeping any group's contents alive.
    pub fn weak_groups(&self) -> Vec<Weak<Group>> {
        self.groups.iter().map(Arc::downgrade).collect()
    }

    /// Whether this view holds exactly the groups `earlier` refers to, unchanged and in
    /// the same order. Sound because the store changes a group only through
    /// [`Arc::make_mut`], which moves it to a new allocation while anything else refers to
    /// it (a weak reference too), and an allocation a weak reference points to is not
    /// reused: the same addresses are the same groups with the same contents. Linear in
    /// the number of groups, without reading any of them.
    pub fn same_groups(&self, earlier: &[Weak<Group>]) -> bool {
        self.groups.len() == earlier.len()
            && self.groups.iter().zip(earlier).all(|(now, then)| std::ptr::eq(Arc::as_ptr(now), then.as_ptr()))
    }
}

impl GroupStore {
    /// An empty store at version 1, judging pushes against the own families of the
    /// version in force.
    pub fn new() -> Self {
        GroupStore { own: OwnFamilies::at(version::V1), own_fixed: false, ..GroupStore::with_own_families(&[]) }
    }

    /// An empty store with another list of own families (sorted by name), for tests of
    /// the judgement itself; the server always uses [`GroupStore::new`].
    #[doc(hidden)]
    pub fn with_own_families(own: &'static [OwnFamily]) -> Self {
        GroupStore {
            groups: BTreeMap::new(),
            families: BTreeMap::new(),
            shapes: BTreeMap::new(),
            own: OwnFamilies::only(own),
            own_fixed: true,
            usage: Usage::default(),
            version: version::V1,
            changed: Vec::new(),
            with_ttl: 0,
        }
    }

    /// The replicated-format version in force: [`version::V1`] until an entry set another.
    pub fn version(&self) -> FormatVersion {
        self.version
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
        StoreView { groups: self.shared_groups(), own: self.own, usage: self.usage }
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

    /// What the store holds, as counted against the quotas: the same on every node at
    /// the same applied index.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Judges a push against `quotas` before it is proposed: refused if storing it would
    /// grow the groups, series or bytes beyond a quota. Replaced families (all of the
    /// group's for `replace`, else those of the pushed names) are counted as gone, so
    /// pushes that replace what is there pass at a full store. Linear in the push and
    /// the replaced families (whose usage is kept with them).
    pub fn judge_quota(
        &self,
        key: &GroupingKey,
        families: &PushedFamilies,
        replace: bool,
        quotas: &StoreQuotas,
    ) -> Result<(), QuotaExceeded> {
        self.judge_quota_all([(key, families, replace)], quotas)
    }

    /// [`GroupStore::judge_quota`] for several pushes to different groups stored together
    /// (a batch): what they add up to.
    pub fn judge_quota_all<'a>(
        &self,
        pushes: impl IntoIterator<Item = (&'a GroupingKey, &'a PushedFamilies, bool)>,
        quotas: &StoreQuotas,
    ) -> Result<(), QuotaExceeded> {
        let before = self.usage;
        let mut after = before;
        let mut all_exist = true;
        for (key, families, replace) in pushes {
            let group = self.group(key);
            match group {
                None => after += Usage::of_group(key),
                Some(group) => {
                    for (name, stored) in &group.families {
                        if replace || families.contains_key(name) {
                            after = after.without(stored.usage());
                        }
                    }
                }
            }
            all_exist &= group.is_some();
            for family in families.values() {
                after += Usage::of_pushed(family, key);
            }
        }
        quotas.check(before, after, all_exist)
    }

    /// The server's own family of this name at the version in force, if any.
    pub fn own_family(&self, name: &str) -> Option<&OwnFamily> {
        self.own.find(name)
    }

    /// Sets the version in force, and with it the own families (unless a test fixed them).
    fn set_version(&mut self, version: FormatVersion) {
        self.version = version;
        if !self.own_fixed {
            self.own = OwnFamilies::at(version);
        }
    }

    /// Applies one command. This is the only function that changes the store, it reads
    /// no clock and no environment, and the same command sequence gives the same state
    /// and the same outcomes everywhere. Its work is linear in the size of the command
    /// (after [`PushLimits::CEILING`], judged first from version 2) plus what the command
    /// collides with.
    ///
    /// The caller must not pass a [`Command::SetVersion`] above [`version::SUPPORTED`]
    /// (see [`version::unsupported`]): it has to stop applying instead. Passed anyway, it
    /// changes nothing.
    pub fn apply(&mut self, command: Command) -> Outcome {
        self.changed.clear();
        match command {
            Command::Push { key, families, replace, time, defect } => {
                self.apply_push(Push { key, families, replace, time, defect, utf8_names: false, ttl: None })
            }
            Command::PushUtf8 { key, families, replace, time, defect } => {
                // UTF-8 names are version 4's; before, such a push is refused alike
                // everywhere (a build of version 4 does not propose it then), storing nothing.
                if self.version < version::V4 {
                    return Outcome::Rejected { reason: NEEDS_V4.to_string() };
                }
                self.apply_push(Push { key, families, replace, time, defect, utf8_names: true, ttl: None })
            }
            // The commands of version 5; before it, refused alike everywhere, changing nothing.
            Command::PushWith(_)
            | Command::PushAll { .. }
            | Command::Expire { .. }
            | Command::DeleteMatching { .. }
                if self.version < version::V5 =>
            {
                Outcome::Rejected { reason: NEEDS_V5.to_string() }
            }
            Command::PushWith(push) => self.apply_push(push),
            Command::PushAll { pushes } => self.apply_all(pushes),
            Command::Expire { now, default_ttl } => {
                let expired: Vec<GroupingKey> = if self.with_ttl == 0 && default_ttl.is_none() {
                    Vec::new()
                } else {
                    self.groups.values().filter(|g| g.expired(now, default_ttl)).map(|g| g.key.clone()).collect()
                };
                for key in &expired {
                    self.remove_group(key);
                }
                Outcome::Expired { groups: expired.len() }
            }
            Command::DeleteMatching { selectors } => {
                let compiled = match selector::compile(&selectors, selector::APPLY_REGEX_BYTES) {
                    Ok(c) => c,
                    Err(reason) => return Outcome::Rejected { reason },
                };
                let chosen: Vec<GroupingKey> = self.groups.keys().filter(|k| compiled.matches(k)).cloned().collect();
                for key in &chosen {
                    self.remove_group(key);
                }
                Outcome::DeletedMatching { groups: chosen.len() }
            }
            Command::Delete { key } => {
                self.remove_group(&key);
                Outcome::Deleted
            }
            Command::Wipe => {
                let groups = self.groups.len();
                self.groups.clear();
                self.families.clear();
                self.shapes.clear();
                self.usage = Usage::default();
                self.with_ttl = 0;
                Outcome::Wiped { groups }
            }
            Command::SetVersion { version } => {
                if version <= version::SUPPORTED {
                    self.set_version(self.version.max(version));
                }
                Outcome::VersionSet { version: self.version }
            }
        }
    }

    /// Whether an expiry judged at `now` would remove a group: what the leader looks at
    /// before it proposes one. Nothing to look at (no TTL anywhere) costs nothing.
    pub fn any_expired(&self, now: UnixNanos, default_ttl: Option<Ttl>) -> bool {
        (self.with_ttl > 0 || default_ttl.is_some()) && self.groups.values().any(|g| g.expired(now, default_ttl))
    }

    /// Applies `command` as [`GroupStore::apply`] does, and says what it changed.
    pub fn apply_noting(&mut self, command: Command) -> (Outcome, Changed) {
        let changed = match &command {
            Command::Wipe => Some(Changed::All),
            Command::SetVersion { .. } => Some(Changed::Version),
            _ => None,
        };
        let outcome = self.apply(command);
        let changed = changed.unwrap_or_else(|| {
            let mut keys = std::mem::take(&mut self.changed);
            keys.sort_unstable();
            keys.dedup();
            Changed::Groups(keys)
        });
        (outcome, changed)
    }

    /// One push, after the gates of its command.
    fn apply_push(&mut self, push: Push) -> Outcome {
        let Push { key, families, replace, time, defect, utf8_names, ttl } = push;
        let names = if utf8_names { Names::Utf8 } else { Names::Legacy };
        // First, before any work that could grow faster than the command: a push
        // over the pinned ceiling is refused alike everywhere, and stores nothing
        // (not even its failure time: that would store its key). A rule of
        // version 2: builds of version 1 apply such an entry, so before the
        // switch this one must too.
        if self.version >= version::V2 {
            if let Err(exceeded) = PushLimits::CEILING.check(&key, &families) {
                return Outcome::Rejected { reason: exceeded.to_string() };
            }
        }
        // Values kept whole are version 3's; before, such a push is refused alike
        // everywhere (a build of version 3 does not propose it then), storing nothing.
        if self.version < version::V3 && needs_v3(&families) {
            return Outcome::Rejected { reason: NEEDS_V3.to_string() };
        }
        // Label extras are version 7's, likewise.
        if self.version < version::V7 && needs_v7(&families) {
            return Outcome::Rejected { reason: NEEDS_V7.to_string() };
        }
        match defect {
            Some(reason) => {
                self.record_failure(&key, time);
                Outcome::Rejected { reason }
            }
            None => self.push(key, families, replace, time, names, ttl),
        }
    }

    /// Several pushes, all or none ([`Command::PushAll`]): each is applied in turn, and
    /// the groups they touched are put back as they were when one is refused. Linear in
    /// the pushes (each judged as a single push) and the groups they replace.
    fn apply_all(&mut self, pushes: Vec<Push>) -> Outcome {
        if pushes.is_empty() || pushes.len() > MAX_BATCH_GROUPS {
            return Outcome::Rejected {
                reason: format!("a batch holds 1 to {MAX_BATCH_GROUPS} groups, not {}", pushes.len()),
            };
        }
        let keys: BTreeSet<&GroupingKey> = pushes.iter().map(|p| &p.key).collect();
        if keys.len() != pushes.len() {
            return Outcome::Rejected { reason: "a batch names the same group twice".to_string() };
        }
        let before: Vec<Option<Arc<Group>>> = pushes.iter().map(|p| self.groups.get(&p.key).cloned()).collect();
        let keys: Vec<GroupingKey> = pushes.iter().map(|p| p.key.clone()).collect();
        for (i, push) in pushes.into_iter().enumerate() {
            let time = push.time;
            if let Outcome::Rejected { reason } = self.apply_push(push) {
                for (key, group) in keys.iter().zip(&before).take(i + 1) {
                    self.remove_group(key);
                    if let Some(group) = group {
                        self.insert_group(group.clone());
                    }
                }
                // As a single push of it would have: its failure is recorded.
                self.record_failure(&keys[i], time);
                return Outcome::Rejected { reason: format!("group {}: {reason}", keys[i]) };
            }
        }
        Outcome::Pushed
    }

    /// Replaces the whole content of the store and the version in force (when a snapshot
    /// is installed, or the store is loaded from disk).
    pub fn replace_all(&mut self, groups: impl IntoIterator<Item = Group>, version: FormatVersion) {
        self.set_version(version);
        self.replace_groups(groups);
    }

    /// Replaces the groups of the store, keeping the version in force.
    pub fn replace_groups(&mut self, groups: impl IntoIterator<Item = Group>) {
        self.groups.clear();
        self.families.clear();
        self.shapes.clear();
        self.usage = Usage::default();
        self.with_ttl = 0;
        for group in groups {
            self.insert_group(Arc::new(group));
        }
        self.changed = Vec::new();
    }

    /// Adds a group that is not in the store, with its indexes and usage.
    fn insert_group(&mut self, group: Arc<Group>) {
        self.usage += Usage::of_group(&group.key);
        for stored in group.families.values() {
            self.index_add(indexed(&stored.family));
            self.usage += stored.usage();
        }
        self.shape_add(&group.key);
        self.with_ttl += group.ttl.is_some() as usize;
        self.changed.push(group.key.clone());
        self.groups.insert(group.key.clone(), group);
    }

    fn push(
        &mut self,
        key: GroupingKey,
        families: PushedFamilies,
        replace: bool,
        time: UnixNanos,
        names: Names,
        ttl: Option<Ttl>,
    ) -> Outcome {
        // Upstream refuses a timestamp on any pushed series, those of the two timestamp
        // families too, which `sanitize` drops: from version 6 on, so does `apply`.
        if self.version >= version::V6 && crate::check::timestamped_stamp_families(&families) {
            self.record_failure(&key, time);
            return Outcome::Rejected { reason: crate::check::TIMESTAMPED.to_string() };
        }
        let families = sanitize(families, &key);
        if let Err(reason) = self.check_push(&key, &families, replace, names, time) {
            self.record_failure(&key, time);
            return Outcome::Rejected { reason };
        }
        let group = self.group_entry(&key, time);
        // What the family index loses and gains: names moved out of the replaced families,
        // cloned only for the added ones (the group's map keeps its own).
        let mut removed: Vec<(String, MetricType, bool)> = Vec::new();
        let mut added: Vec<(String, MetricType, bool)> = Vec::new();
        let (mut gone, mut new) = (Usage::default(), Usage::default());
        if replace {
            for (name, stored) in std::mem::take(&mut group.families) {
                gone += stored.usage();
                removed.push((name, stored.family.metric_type, !stored.family.metrics.is_empty()));
            }
        }
        for (name, family) in families {
            let (_, metric_type, with_series) = indexed(&family);
            let stored = StoredFamily::new(family, time);
            new += stored.usage();
            if let Some(old) = group.families.insert(name.clone(), stored) {
                gone += old.usage();
                let (_, old_type, old_series) = indexed(&old.family);
                removed.push((old.family.name, old_type, old_series));
            }
            added.push((name, metric_type, with_series));
        }
        group.push_time = time;
        let had_ttl = std::mem::replace(&mut group.ttl, ttl).is_some();
        self.with_ttl = self.with_ttl + ttl.is_some() as usize - had_ttl as usize;
        self.usage = self.usage.without(gone);
        self.usage += new;
        for (name, metric_type, with_series) in &removed {
            self.index_remove((name, *metric_type, *with_series));
        }
        for (name, metric_type, with_series) in &added {
            self.index_add((name, *metric_type, *with_series));
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
            self.changed.push(key.clone());
            self.with_ttl -= group.ttl.is_some() as usize;
            self.usage = self.usage.without(Usage::of_group(key));
            for stored in group.families.values() {
                self.index_remove(indexed(&stored.family));
                self.usage = self.usage.without(stored.usage());
            }
            self.shape_remove(key);
        }
    }

    fn index_add(&mut self, (name, metric_type, with_series): Indexed<'_>) {
        let usage = match self.families.get_mut(name) {
            Some(usage) => usage,
            None => self.families.entry(name.to_string()).or_default(),
        };
        usage.add(metric_type, with_series);
    }

    fn index_remove(&mut self, (name, metric_type, with_series): Indexed<'_>) {
        if let Some(usage) = self.families.get_mut(name) {
            usage.remove(metric_type, with_series);
            if usage.is_unused() {
                self.families.remove(name);
            }
        }
    }

    /// The group of `key`, created (and indexed) if it does not exist.
    fn group_entry(&mut self, key: &GroupingKey, time: UnixNanos) -> &mut Group {
        self.changed.push(key.clone());
        if !self.groups.contains_key(key) {
            self.shape_add(key);
            self.usage += Usage::of_group(key);
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
    pub(crate) fn compatible_groups<'a>(&'a self, key: &'a GroupingKey) -> impl Iterator<Item = &'a Group> + 'a {
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

    /// The families named `name` in the groups other than `key`'s. Constant time: the
    /// index less `key`'s own family of that name.
    pub(crate) fn elsewhere(&self, key: &GroupingKey, name: &str) -> Elsewhere {
        let Some(usage) = self.families.get(name) else { return Elsewhere::default() };
        let mut usage = *usage;
        if let Some(own) = self.groups.get(key).and_then(|g| g.families.get(name)) {
            let (_, metric_type, with_series) = indexed(&own.family);
            usage.remove(metric_type, with_series);
        }
        Elsewhere { types: usage.types(), with_series: usage.with_series > 0 }
    }
}

/// Why a push with values kept whole is refused before replicated-format version 3.
pub const NEEDS_V3: &str = "this push carries protobuf fields (native histograms, float counts, exemplars, created \
     timestamps or fields of a later metrics.proto) that are kept only once every node of the cluster runs a build \
     that keeps them (replicated format version 3); retry once the upgrade is done";

/// Why a push with UTF-8 names is refused before replicated-format version 4.
pub const NEEDS_V4: &str = "this push has metric or label names that only --push.enable-utf8-names accepts, which \
     are judged alike only once every node of the cluster runs a build that knows the UTF-8 rules (replicated \
     format version 4); retry once the upgrade is done";

/// Why a command of version 5 (a TTL, a batch, expiry, delete by match) is refused before it.
pub const NEEDS_V5: &str = "this request needs replicated format version 5 (group TTLs, batches of groups, expiry, \
     delete by match), which is used only once every node of the cluster runs a build that knows it; retry once the \
     upgrade is done";

/// Why a push with label extras is refused before replicated-format version 7.
pub const NEEDS_V7: &str = "this push has label pairs with fields other than a name and a value (unknown fields, or \
     known ones of another wire type) that are kept only once every node of the cluster runs a build that keeps them \
     (replicated format version 7); retry once the upgrade is done";

/// Whether a push holds values kept whole ([`crate::Value::Proto`]).
pub fn needs_v3(families: &PushedFamilies) -> bool {
    families.values().flat_map(|f| &f.metrics).any(|m| matches!(m.value, crate::Value::Proto(_)))
}

/// Whether a push holds values kept whole with label extras (see [`version::V7`]).
/// Linear in the kept fields.
pub fn needs_v7(families: &PushedFamilies) -> bool {
    families.values().flat_map(|f| &f.metrics).filter_map(|m| m.value.proto_fields()).any(crate::wire::has_label_extras)
}

#[cfg(test)]
mod tests;
