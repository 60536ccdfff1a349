//! The replicated format's version: what the entries of the log may contain and how
//! `apply` judges them, as one number that every node of a cluster agrees on.
//!
//! A rolling upgrade runs two builds side by side, and `apply` must decide every entry
//! alike on both. So a new command, or a changed rule of the verdict, is only used once
//! the cluster's version says so, and the cluster's version is itself state, changed by
//! a log entry ([`crate::Command::SetVersion`]) that the leader proposes only once every
//! member reports a build that understands it (etcd's cluster version is the model).
//! An entry is judged by the version in force where it stands in the log, so a replay
//! after a restart decides as the first apply did.
//!
//! Versions only rise. A node that meets an entry above what it understands must stop
//! applying (see [`unsupported`]), never skip it or judge it by older rules.

/// A replicated-format version.
pub type FormatVersion = u32;

/// The format of builds from before the cluster version: commands `Push`, `Delete` and
/// `Wipe`; the pinned ceiling is judged before proposing, not in `apply`; own families
/// [`crate::own_families::OWN_FAMILIES`]. A store that never saw a version entry is at 1.
pub const V1: FormatVersion = 1;

/// Adds `SetVersion` (the switch itself); judges every push against the pinned
/// [`crate::PushLimits::CEILING`] first in `apply`, so an entry no build would propose
/// (a peer's, or an older build's) cannot cost more than linear time on any node; and
/// judges pushes against the own families [`crate::own_families::ADDED_IN_V2`] too.
pub const V2: FormatVersion = 2;

/// Adds [`crate::Value::Proto`]: protobuf-pushed values kept with every field (native
/// histograms, exemplars, created timestamps, unknown fields). Before it, a push that needs
/// it is refused by `apply`, and not proposed.
pub const V3: FormatVersion = 3;

/// Adds [`crate::Command::PushUtf8`]: a push whose metric and label names are judged by
/// the UTF-8 rules (`--push.enable-utf8-names`: any non-empty name) instead of the legacy
/// ones. Before it, such a push is refused by `apply`, and not proposed.
pub const V4: FormatVersion = 4;

/// Adds expiry and the commands of several groups: [`crate::Command::PushWith`] (a push
/// naming its group's TTL), [`crate::Command::PushAll`] (several groups, all or none),
/// [`crate::Command::Expire`] and [`crate::Command::DeleteMatching`]. Before it, they are
/// refused by `apply` and change nothing, and not proposed. Groups with a TTL of their
/// own exist only from it on, and so does their stored form with the TTL beside them.
pub const V5: FormatVersion = 5;

/// Judges pushes against the own families [`crate::own_families::ADDED_IN_V6`] too: the
/// `go_*` and `process_*` families upstream exposes about itself and this server does not,
/// so a push upstream refuses for clashing with them (a `go_goroutines` counter, a
/// `go_gc_duration_seconds_sum` beside that summary) is refused here too, and their help in
/// scrapes is upstream's. And refuses, as upstream does, a push whose
/// `push_time_seconds` or `push_failure_time_seconds` series carry a timestamp (before, those
/// two pushed families were dropped unseen, so such a push was taken without them).
pub const V6: FormatVersion = 6;

/// Adds label extras to [`crate::Value::Proto`]: a pushed label pair's fields other than
/// its name and value (unknown fields, or known ones of another wire type, which Go's
/// decoder keeps as unknown), kept in the value's fields and written back inside that
/// label pair in protobuf scrapes. A build before it would write them as a label pair of
/// their own, so before it such a push is refused by `apply`, and not proposed.
pub const V7: FormatVersion = 7;

/// Judges a type clash between groups as upstream's gathering does when it is certain:
/// families of one name and different types in two groups clash only if one of them has
/// series. Upstream merges them into one family of the type of whichever group Go's map
/// order gives first, then checks each series against that type, so families without
/// series never clash (and are not exposed), while a family with series beside one of
/// another type without series clashes or not by that order: that is still refused here.
/// Before it, any two types clash. The family index counts families with series, so the
/// verdict stays constant-time per family. And refuses, as upstream does, a `quantile`
/// label on a series of any family that carries a summary message (a protobuf metric may
/// carry one beside its family's value); before, only in summary families.
pub const V8: FormatVersion = 8;

/// The highest version this build understands.
pub const SUPPORTED: FormatVersion = V8;

/// Why this build cannot go on applying: an entry sets a version it does not know.
/// The message says what to do about it.
pub fn unsupported(version: FormatVersion) -> Option<String> {
    (version > SUPPORTED).then(|| {
        format!(
            "the cluster switched to replicated format version {version}, and this build understands up to \
             {SUPPORTED}: it stops applying rather than judge entries by older rules; run the cluster's newer \
             build on this node"
        )
    })
}
