//! Proposing: group commit. Concurrent proposals are batched into one log entry: one
//! fsync and one round trip serve many pushes. Followers forward their batches to the
//! leader, whose queue puts them into its next entry with its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot};

use crate::error::ClusterError;
use crate::node::Node;
use crate::raft_types::{EncodedCommand, Proposal};
use crate::retry::{Attempt, Leader};
use crate::transport::client::PeerError;
use crate::transport::{ProposeAnswer, WireProposeError, PATH_PROPOSE};
use model::{Command, Outcome};

const MAX_BATCH_COMMANDS: usize = 512;
const MAX_BATCH_BYTES: usize = 8 << 20;
/// Batches a follower keeps on their way to the leader at once (see [`run`]).
const BATCHES_IN_FLIGHT: usize = 4;
/// Proposals waiting for the proposer.
pub(crate) const QUEUE_DEPTH: usize = 4096;

/// Commands that must go into the same log entry (one push, or a batch a follower
/// forwarded), and where their outcomes go.
pub(crate) struct Pending {
    commands: Vec<EncodedCommand>,
    reply: oneshot::Sender<Result<Vec<Outcome>, ClusterError>>,
}

impl Pending {
    fn bytes(&self) -> usize {
        self.commands.iter().map(|c| c.0.len()).sum()
    }
}

impl Node {
    /// Applies `command` through the replicated log and returns its outcome once it is
    /// committed on a quorum (fsynced) and applied. An error says whether the command was
    /// certainly not applied ([`ClusterError::NoLeader`]: retrying is safe) or may still
    /// be ([`ClusterError::Timeout`]: unknown, never "failed").
    pub async fn propose(&self, command: Command) -> Result<Outcome, ClusterError> {
        let started = Instant::now();
        let result = async {
            let command = EncodedCommand::encode(&command).map_err(|e| ClusterError::Internal(e.to_string()))?;
            let mut outcomes = self.enqueue(vec![command]).await?;
            outcomes.pop().ok_or_else(|| ClusterError::Internal("no outcome for the command".into()))
        }
        .await;
        self.observe_proposal(started.elapsed(), result.as_ref().map(|_| ()));
        result
    }

    /// Applies `commands` through the replicated log in one entry (all of them or none;
    /// nothing else comes between them) and returns their outcomes in order. Errors as
    /// [`Node::propose`]. For an import, whose groups every node must get together.
    pub async fn propose_together(&self, commands: &[Command]) -> Result<Vec<Outcome>, ClusterError> {
        let started = Instant::now();
        let result = async {
            let encoded = commands
                .iter()
                .map(EncodedCommand::encode)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ClusterError::Internal(e.to_string()))?;
            let outcomes = self.enqueue(encoded).await?;
            if outcomes.len() != commands.len() {
                return Err(ClusterError::Internal(format!(
                    "{} outcomes for {} commands",
                    outcomes.len(),
                    commands.len()
                )));
            }
            Ok(outcomes)
        }
        .await;
        self.observe_proposal(started.elapsed(), result.as_ref().map(|_| ()));
        result
    }

    /// Queues commands for the proposer, which puts them together into one log entry
    /// (with whatever else is queued) and answers with their outcomes in order.
    async fn enqueue(&self, commands: Vec<EncodedCommand>) -> Result<Vec<Outcome>, ClusterError> {
        let (reply, answer) = oneshot::channel();
        self.queue().send(Pending { commands, reply }).await.map_err(|_| ClusterError::NoLeader)?;
        // The proposer dropped the reply: the command may have been submitted.
        answer.await.map_err(|_| ClusterError::Timeout)?
    }

    /// On the leader, for a batch a follower forwarded: queued with the leader's own
    /// proposals, so that the pushes arriving at every node share one entry and one
    /// fsync (openraft 0.9 appends one entry after another, each waiting for its flush).
    /// Refused at once when this node is not the leader, so the follower retries.
    pub(crate) async fn propose_forwarded(&self, commands: Vec<EncodedCommand>) -> ProposeAnswer {
        let leader = self.raft().metrics().borrow().current_leader;
        if leader != Some(self.id()) {
            return Err(WireProposeError::Unavailable(format!("not the leader (leader: {leader:?})")));
        }
        // Only commands this build can apply reach the log: one that does not decode
        // would stop every node's apply, at every restart. (Certainly not applied: the
        // answer that lets a same-build follower retry elsewhere.)
        // A version switch is only ever proposed by the leader itself, once it asked every
        // member (crate::version), never taken from a peer.
        for command in &commands {
            let refused = match command.decode() {
                Ok(Command::SetVersion { .. }) => "a forwarded version switch".to_string(),
                Ok(_) => continue,
                Err(e) => format!("the leader cannot decode a forwarded command: {e}"),
            };
            tracing::warn!(reason = %refused, "a forwarded batch was refused");
            return Err(WireProposeError::Unavailable(refused));
        }
        if self.forwarded_held() {
            return Err(WireProposeError::Unavailable("the leader is importing its persistence file".into()));
        }
        self.enqueue(commands).await.map_err(WireProposeError::from)
    }

    /// Proposes a batch: locally on the leader, else forwarded to it, with the one retry
    /// policy ([`Node::with_leader`]) until the propose timeout.
    async fn submit(&self, commands: Vec<EncodedCommand>) -> Result<Vec<Outcome>, ClusterError> {
        let deadline = Instant::now() + self.propose_timeout();
        let commands = &commands;
        self.with_leader(deadline, |leader: Leader| async move {
            if leader.local {
                // Nothing is proposed before a fresh cluster's first version switch.
                let settling = Instant::now();
                self.settle_format(leader.remaining).await;
                let remaining = leader.remaining.saturating_sub(settling.elapsed());
                return match self.propose_as_leader_within(commands.clone(), remaining).await {
                    Err(e @ (ClusterError::NoLeader | ClusterError::NotLeader { .. })) => Attempt::Retry(e.to_string()),
                    other => Attempt::Done(other),
                };
            }
            self.count_forwarded_batch();
            let answer: Result<ProposeAnswer, PeerError> =
                self.peers().call(&leader.addr, PATH_PROPOSE, commands, leader.remaining).await;
            match answer {
                Ok(Ok(outcomes)) => Attempt::Done(Ok(outcomes)),
                Ok(Err(WireProposeError::Unavailable(e))) => Attempt::Retry(e),
                Ok(Err(e)) => Attempt::Done(Err(e.into())),
                Err(e @ PeerError::Unreachable(..)) => Attempt::Retry(e.to_string()),
                Err(e) => {
                    tracing::debug!(error = %e, "a forwarded batch was not answered");
                    Attempt::Done(Err(ClusterError::Timeout))
                }
            }
        })
        .await
    }

    pub(crate) async fn propose_as_leader_within(
        &self,
        commands: Vec<EncodedCommand>,
        within: Duration,
    ) -> Result<Vec<Outcome>, ClusterError> {
        let write = self.raft().client_write(Proposal { commands });
        match tokio::time::timeout(within, write).await {
            Err(_) => Err(ClusterError::Timeout),
            Ok(Ok(response)) => Ok(response.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(ClusterError::NotLeader { leader: f.leader_node.map(|n| n.addr) })
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                tracing::debug!(error = %e, "a write was refused as a membership change");
                Err(ClusterError::NoLeader)
            }
            Ok(Err(RaftError::Fatal(e))) => Err(ClusterError::Internal(e.to_string())),
        }
    }
}

/// The proposer task: collects queued proposals into batches, so that the pushes that
/// arrive while a batch commits share the next entry. openraft 0.9 flushes each entry
/// before it looks at the next, so fewer, larger entries are what makes throughput: the
/// leader commits one batch at a time (its peers' forwarded batches join its queue, see
/// [`Node::propose_forwarded`]). A follower only forwards, so it keeps up to
/// [`BATCHES_IN_FLIGHT`] batches on their way to the leader. Concurrent requests carry no
/// order between them; one client's requests stay ordered because each waits for its
/// answer before the next.
pub(crate) async fn run(node: Node, mut pending: mpsc::Receiver<Pending>) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    loop {
        let leader = node.raft().metrics().borrow().current_leader == Some(node.id());
        let permits = if leader { BATCHES_IN_FLIGHT as u32 } else { 1 };
        let Ok(permit) = in_flight.clone().acquire_many_owned(permits).await else { return };
        let Some(first) = pending.recv().await else { return };
        let mut commands = first.commands.len();
        let mut bytes = first.bytes();
        let mut batch = vec![first];
        while commands < MAX_BATCH_COMMANDS && bytes < MAX_BATCH_BYTES {
            match pending.try_recv() {
                Ok(p) => {
                    commands += p.commands.len();
                    bytes += p.bytes();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let node = node.clone();
        tokio::spawn(async move {
            submit_batch(&node, batch).await;
            drop(permit);
        });
    }
}

/// Submits the proposals of a batch as one entry and answers each with its outcomes.
async fn submit_batch(node: &Node, batch: Vec<Pending>) {
    let mut commands = Vec::new();
    let mut replies = Vec::new();
    for p in batch {
        replies.push((p.commands.len(), p.reply));
        commands.extend(p.commands);
    }
    let count = commands.len();
    let outcomes = match node.submit(commands).await {
        Ok(outcomes) if outcomes.len() != count => {
            Err(ClusterError::Internal(format!("{} outcomes for {count} commands", outcomes.len())))
        }
        other => other,
    };
    match outcomes {
        Ok(outcomes) => {
            let mut outcomes = outcomes.into_iter();
            for (n, reply) in replies {
                let _ = reply.send(Ok(outcomes.by_ref().take(n).collect()));
            }
        }
        Err(e) => {
            for (_, reply) in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
