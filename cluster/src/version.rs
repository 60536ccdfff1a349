//! The cluster version (`model::version`) on the cluster's side: every member says what
//! it understands on the peer route `/raft/version`, and the leader raises the version
//! in force, by a log entry, to the highest that every member understands.
//!
//! Builds from before the cluster version answer that route 404: they understand
//! version 1. A member that cannot be asked holds the version where it is, so a node
//! that is down during an upgrade is never skipped. A node asking to join is asked
//! first, and refused if it understands less than the version in force. Raising the
//! version and adding a member exclude each other on the leader (one lock), so a member
//! cannot be added between the question and the switch.

use std::sync::atomic::Ordering;
use std::time::Duration;

use model::version::{self, FormatVersion};
use model::{Command, Outcome};

use crate::error::ClusterError;
use crate::node::Node;
use crate::raft_types::EncodedCommand;
use crate::transport::client::PeerError;
use crate::transport::PATH_VERSION;

/// How often the leader looks whether the version can rise.
const PERIOD: Duration = Duration::from_secs(2);
/// How often a node looks until the version is settled ([`Node::format_settled`]).
const FIRST_LOOKS: Duration = Duration::from_millis(100);
/// How long after its start a node waits at most for the version to settle before it is
/// ready and proposes as leader ([`Node::format_settled`]).
const SETTLE_WITHIN: Duration = Duration::from_secs(5);
/// How long a member has to answer what it understands.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

impl Node {
    /// The replicated-format version in force on this node (as applied so far).
    pub fn format_version(&self) -> FormatVersion {
        self.inner_store().read().map(|s| s.version()).unwrap_or(version::V1)
    }

    /// Waits until the version in force is at least `version`, for up to `within`;
    /// whether it is.
    pub async fn wait_format(&self, version: FormatVersion, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.format_version() >= version {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the member at `addr` understands: 404 from a build before the cluster version
    /// is version 1.
    pub(crate) async fn member_format(&self, addr: &str) -> Result<FormatVersion, PeerError> {
        match self.peers().call::<(), FormatVersion>(addr, PATH_VERSION, &(), ASK_TIMEOUT).await {
            Err(PeerError::Status(_, 404)) => Ok(version::V1),
            other => other,
        }
    }

    /// Refuses to add the node at `addr` if it does not understand the version in force.
    /// Called on the leader with the version lock held.
    pub(crate) async fn check_joining_format(&self, id: u64, addr: &str) -> Result<(), ClusterError> {
        let current = self.format_version();
        let theirs = self.member_format(addr).await.map_err(|e| {
            ClusterError::Refused(format!("cannot ask node {id} at {addr} which replicated format it understands: {e}"))
        })?;
        if theirs < current {
            return Err(ClusterError::Refused(format!(
                "node {id} at {addr} runs a build that understands replicated format version {theirs}, and the \
                 cluster is at version {current}: run this cluster's build (or a newer one) on it"
            )));
        }
        Ok(())
    }

    /// Whether the version in force is as high as it will get for now, as far as this
    /// node can tell: this build's own version; or this node, as leader, has had every
    /// member's answer once and raised the version as far as they allow; or this node
    /// started more than [`SETTLE_WITHIN`] ago. A fresh cluster starts at version 1 and
    /// its first leader switches right after its election: a client command proposed
    /// before would be judged by version 1's rules (its own families only). So until it is
    /// settled a leader is not ready ([`Node::ready`]) and holds the commands it would
    /// propose ([`Node::settle_format`]), its followers' forwarded ones included. The
    /// bound keeps a member that cannot be asked (down, or a join holding the version
    /// lock) from holding anything longer: such a member holds the version where it is,
    /// as always.
    ///
    /// Once settled, it stays so (each condition only ever becomes true), and the answer is
    /// one atomic load: the leader asks this before every batch it proposes, and the
    /// version in force is read under the store's lock, which an apply holds.
    pub fn format_settled(&self) -> bool {
        let settled = self.format_settled_flag();
        if settled.load(Ordering::Acquire) {
            return true;
        }
        let now = self.age() >= SETTLE_WITHIN || self.format_version() >= version::SUPPORTED;
        if now {
            settled.store(true, Ordering::Release);
        }
        now
    }

    /// Waits, for at most `within`, until the format is settled ([`Node::format_settled`]).
    pub(crate) async fn settle_format(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.format_settled() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// One look, on the leader: the lowest version the members understand, if every
    /// member answered and it is above the version in force, is proposed.
    async fn raise_format_once(&self) -> Result<Option<FormatVersion>, String> {
        let _gate = self.format_gate().lock().await;
        let current = self.format_version();
        let status = self.status();
        if status.leader != Some(self.id()) || current >= version::SUPPORTED {
            return Ok(None);
        }
        let raised = self.raise_format_to_members(current, &status).await;
        if raised.is_ok() {
            self.format_settled_flag().store(true, Ordering::Release);
        }
        raised
    }

    async fn raise_format_to_members(
        &self,
        current: FormatVersion,
        status: &crate::status::NodeStatus,
    ) -> Result<Option<FormatVersion>, String> {
        let mut lowest = version::SUPPORTED;
        for (id, addr) in status.voters.iter().chain(&status.learners) {
            if *id == self.id() {
                continue;
            }
            let theirs = self.member_format(addr).await.map_err(|e| format!("node {id}: {e}"))?;
            lowest = lowest.min(theirs);
        }
        if lowest <= current {
            return Ok(None);
        }
        // Proposed here, never forwarded: the question was asked as this leader.
        let command = EncodedCommand::encode(&Command::SetVersion { version: lowest }).map_err(|e| e.to_string())?;
        match self.propose_as_leader_within(vec![command], self.propose_timeout()).await.as_deref() {
            Ok([Outcome::VersionSet { version }]) => Ok(Some(*version)),
            Ok(other) => Err(format!("unexpected outcome {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The leader's side of the cluster version: every [`PERIOD`], while this build
/// understands more than the version in force, raises it as far as every member allows.
pub(crate) async fn keep(node: Node) {
    // The first look comes soon: a new cluster (or a single node) switches to this
    // build's version right after its leader is elected, and that leader neither is ready
    // nor proposes until the version is settled ([`Node::format_settled`]), so until then
    // it looks often.
    loop {
        let wait = if node.format_settled() { PERIOD } else { FIRST_LOOKS };
        tokio::time::sleep(wait).await;
        if node.format_version() >= version::SUPPORTED {
            return;
        }
        match node.raise_format_once().await {
            Ok(Some(v)) => tracing::info!(version = v, "raised the cluster's replicated format version"),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "the cluster's replicated format version stays"),
        }
    }
}
