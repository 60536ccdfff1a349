//! Commands: the only way state changes, and what the replicated log carries.

use serde::{Deserialize, Serialize};

use crate::group::Ttl;
use crate::grouping_key::GroupingKey;
use crate::metric::{PushedFamilies, UnixNanos};
use crate::selector::Selector;
use crate::version::FormatVersion;

/// A mutation of the group store. Commands carry everything `apply` needs, the time
/// included, so applying the same sequence on any node gives the same state.
///
/// The encoding is the replicated format: variants are only ever added at the end, and a
/// new one only under a new [`crate::version`] (older builds cannot decode it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A push: `PUT` (replace every family of the group) or `POST` (replace only the
    /// families with the same names). Families are parsed but not yet judged: `apply`
    /// decides whether the push is consistent with the state it is applied to.
    Push {
        key: GroupingKey,
        families: PushedFamilies,
        replace: bool,
        time: UnixNanos,
        /// A problem found while decoding that makes the push invalid although it
        /// decoded (invalid UTF-8 in a protobuf label): `apply` refuses the push with
        /// this message and records the failure, as upstream's check would.
        defect: Option<String>,
    },
    /// Delete one group; deleting a group that does not exist is a no-op.
    Delete { key: GroupingKey },
    /// Delete every group.
    Wipe,
    /// From this entry on, judge by the rules of replicated-format `version`
    /// ([`crate::version`]). Proposed by the leader only once every member understands
    /// it; a lower version than the one in force changes nothing. New in version 2: a
    /// build of version 1 cannot decode it, which is why it is never proposed before.
    SetVersion { version: FormatVersion },
    /// A push like [`Command::Push`] whose metric and label names are judged by the UTF-8
    /// rules ([`crate::check::Names::Utf8`]) rather than the legacy ones: what a node with
    /// `--push.enable-utf8-names` proposes for a push with a name the legacy rules refuse.
    /// The rule travels in the entry, so every node judges it alike whatever its own
    /// flags. New in version 4.
    PushUtf8 { key: GroupingKey, families: PushedFamilies, replace: bool, time: UnixNanos, defect: Option<String> },
    /// A push that names the group's time to live ([`Push::ttl`]). New in version 5; a push
    /// without one stays a [`Command::Push`] or [`Command::PushUtf8`] (which leave the group
    /// without a TTL of its own).
    PushWith(Push),
    /// Several pushes, judged in order against the store and each other and applied all or
    /// none: if one is refused, the store is left as it was, except that the refused
    /// group's `push_failure_time_seconds` is set as a single push would. No two may have
    /// the same grouping key; at most [`MAX_BATCH_GROUPS`]. New in version 5.
    PushAll { pushes: Vec<Push> },
    /// Removes every group whose TTL (its own, else `default_ttl`) has run out at `now`
    /// ([`crate::Group::expired`]): the leader's clock, read once when it proposed this, so
    /// every node removes the same groups at this entry. New in version 5.
    Expire { now: UnixNanos, default_ttl: Option<Ttl> },
    /// Removes every group whose grouping labels match any of the selectors
    /// ([`crate::selector`]); a selector that does not compile within the pinned bounds
    /// refuses the whole command. New in version 5.
    DeleteMatching { selectors: Vec<Selector> },
}

/// At most this many groups in one [`Command::PushAll`] (pinned: `apply` refuses more).
pub const MAX_BATCH_GROUPS: usize = 1000;

/// One push as [`Command::PushWith`] and [`Command::PushAll`] carry it: what
/// [`Command::Push`] carries, plus the name rule and the TTL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Push {
    pub key: GroupingKey,
    pub families: PushedFamilies,
    pub replace: bool,
    pub time: UnixNanos,
    pub defect: Option<String>,
    /// Names judged by the UTF-8 rules, as [`Command::PushUtf8`].
    pub utf8_names: bool,
    /// The group's time to live from this push on; none: the cluster's default.
    pub ttl: Option<Ttl>,
}

/// What applying a command did; the HTTP answer is derived from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// The push was stored.
    Pushed,
    /// The push was refused and, where that is possible without breaking the store,
    /// the group's `push_failure_time_seconds` was set. Carries upstream's message.
    Rejected { reason: String },
    /// The group is gone (or never existed).
    Deleted,
    /// Every group is gone; how many there were.
    Wiped { groups: usize },
    /// The replicated-format version in force after a [`Command::SetVersion`].
    VersionSet { version: FormatVersion },
    /// How many groups a [`Command::Expire`] removed.
    Expired { groups: usize },
    /// How many groups a [`Command::DeleteMatching`] removed.
    DeletedMatching { groups: usize },
}
