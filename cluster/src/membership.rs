//! Membership: bootstrapping a fresh cluster, joining one, adding and removing members,
//! and recording a node's changed peer address.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::ChangeMembers;

use crate::config::{ClusterConfig, NodeId};
use crate::error::{ClusterError, StartError};
use crate::identity::{incarnation_of, node_of, Start};
use crate::node::Node;
use crate::raft_types::PeerNode;
use crate::retry::{Attempt, Leader};
use crate::transport::client::PeerError;
use crate::transport::{AdminAnswer, AdminRequest, WireAdminError, PATH_ADMIN};

/// A membership change attempt: blocked by another change in progress, or failed.
enum ChangeError {
    InProgress(String),
    Other(ClusterError),
}

impl Node {
    /// Bootstraps a fresh cluster, idempotently (a restarted node initializes nothing):
    /// with `initial_members` the lowest id initializes; with `join` the node asks to be
    /// added; with neither it is a one-member cluster.
    pub(crate) async fn bootstrap(
        &self,
        config: &ClusterConfig,
        advertise: Option<String>,
        start: Start,
    ) -> Result<(), StartError> {
        let raft = self.raft();
        let initialized = raft.is_initialized().await.map_err(|e| StartError::Raft(e.to_string()))?;
        let own_address = || {
            advertise.clone().ok_or_else(|| {
                StartError::Config(
                    "a node that joins needs --cluster.listen-address (or --cluster.advertise-address)".into(),
                )
            })
        };
        if initialized {
            tracing::info!(node = self.id(), "restarting an initialized node: nothing to bootstrap");
        } else if let Start::Lost { replaces, via, incarnation } = &start {
            tracing::warn!(
                node = config.node_id,
                incarnation,
                ?replaces,
                "this node lost its data: it rejoins under a new incarnation, in the place of the lost one"
            );
            let addr = own_address()?;
            let request = AdminRequest::Rejoin { id: self.id(), addr: addr.clone(), replaces: replaces.clone() };
            tokio::spawn(ask_to_join(self.clone(), via.clone(), addr, request));
        } else if let Start::Join { via } = &start {
            // Started with the initial members' flags but not among them (a StatefulSet
            // scaled up): it joins as a voter once caught up. Started with
            // --cluster.join: a learner, until an operator adds it.
            let scaled_up = config.join.is_none() && !config.initial_members.contains_key(&config.node_id);
            tracing::info!(
                node = self.id(),
                ?via,
                voter = scaled_up,
                "a cluster that does not list this node exists: asking to join"
            );
            let addr = own_address()?;
            let request = AdminRequest::Add { id: self.id(), addr: addr.clone(), learner_only: !scaled_up };
            tokio::spawn(ask_to_join(self.clone(), via.clone(), addr, request));
        } else if !config.initial_members.is_empty() && self.id() == config.node_id {
            if !config.initial_members.contains_key(&config.node_id) {
                return Err(StartError::Config(format!(
                    "--cluster.initial-members does not contain this node's id {}",
                    config.node_id
                )));
            }
            let lowest = *config.initial_members.keys().next().expect("not empty");
            if lowest == config.node_id {
                let members: BTreeMap<NodeId, PeerNode> =
                    config.initial_members.iter().map(|(id, addr)| (*id, PeerNode::new(addr.clone()))).collect();
                tracing::info!(?members, "initializing a fresh cluster");
                match raft.initialize(members).await {
                    Ok(()) => self.mark_initialized_here(),
                    Err(e) => tracing::warn!(error = %e, "initialization refused (already initialized elsewhere?)"),
                }
            }
        } else if let Some(join) = &config.join {
            let Some(addr) = advertise.clone() else {
                return Err(StartError::Config("--cluster.join needs --cluster.listen-address".into()));
            };
            let request = AdminRequest::Add { id: self.id(), addr: addr.clone(), learner_only: true };
            tokio::spawn(ask_to_join(self.clone(), vec![join.clone()], addr, request));
        } else {
            let members = BTreeMap::from([(config.node_id, PeerNode::new(advertise.clone().unwrap_or_default()))]);
            raft.initialize(members).await.map_err(|e| StartError::Raft(e.to_string()))?;
            self.mark_initialized_here();
        }
        // A one-voter cluster need not wait a whole election timeout for its leader.
        let metrics = raft.metrics().borrow().clone();
        let voters: Vec<NodeId> = metrics.membership_config.membership().voter_ids().collect();
        if voters == [self.id()] {
            let _ = raft.trigger().elect().await;
        }
        if let Some(addr) = advertise {
            tokio::spawn(update_own_address(self.clone(), addr));
        }
        Ok(())
    }

    /// Adds a node (as a learner, then as a voter unless `learner_only`); routed to the
    /// leader. Returns the members afterwards.
    pub async fn add_member(
        &self,
        id: NodeId,
        addr: String,
        learner_only: bool,
    ) -> Result<BTreeMap<NodeId, String>, ClusterError> {
        self.wait_until_joined(id, &addr).await?;
        self.admin(AdminRequest::Add { id, addr, learner_only }).await
    }

    /// Adding only promotes a node that joined by itself: one started with
    /// `--cluster.join`, whose join request carried the cluster's secret, and which is a
    /// learner at `addr` in this node's view. An address nobody vouched for is never
    /// contacted, so `cluster add` cannot make the leader send the secret, or entries, to
    /// whatever address it is given. Waits a little for the join to arrive (the node may
    /// just have started).
    async fn wait_until_joined(&self, id: NodeId, addr: &str) -> Result<(), ClusterError> {
        let deadline = Instant::now() + self.propose_timeout() * 2;
        loop {
            let status = self.status();
            match status.voters.get(&id).or(status.learners.get(&id)) {
                Some(joined) if joined == addr => return Ok(()),
                Some(joined) => {
                    return Err(ClusterError::Refused(format!(
                        "node {id} joined with the peer address {joined}, not {addr}"
                    )))
                }
                None if Instant::now() >= deadline => {
                    return Err(ClusterError::Refused(format!(
                        "node {id} at {addr} has not joined the cluster: start it with --cluster.join=<a member's \
                         peer address> and the cluster's --cluster.secret-file first; adding only promotes a node \
                         that joined"
                    )))
                }
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Removes a node from the cluster; routed to the leader. Returns the members
    /// afterwards.
    pub async fn remove_member(&self, id: NodeId) -> Result<BTreeMap<NodeId, String>, ClusterError> {
        self.admin(AdminRequest::Remove { id }).await
    }

    async fn admin(&self, request: AdminRequest) -> Result<BTreeMap<NodeId, String>, ClusterError> {
        let deadline = Instant::now() + self.propose_timeout() * 6;
        let request = &request;
        self.with_leader(deadline, |leader: Leader| async move {
            if leader.local {
                return match self.change_membership_as_leader(request).await {
                    Err(e @ ClusterError::NotLeader { .. }) => Attempt::Retry(e.to_string()),
                    other => Attempt::Done(other),
                };
            }
            let answer: Result<AdminAnswer, PeerError> =
                self.peers().call(&leader.addr, PATH_ADMIN, request, leader.remaining).await;
            match answer {
                Ok(Err(WireAdminError::NotLeader { .. } | WireAdminError::Unavailable(_))) => {
                    Attempt::Retry("the leader asked could not change the membership".into())
                }
                Ok(answer) => Attempt::Done(answer.map_err(ClusterError::from)),
                Err(e @ PeerError::Unreachable(..)) => Attempt::Retry(e.to_string()),
                Err(e) => {
                    tracing::warn!(error = %e, "a membership change was not answered");
                    Attempt::Done(Err(ClusterError::Timeout))
                }
            }
        })
        .await
    }

    /// On the leader: carries out a membership change. A change that meets another one
    /// still in progress (a joining node's learner request, say) waits and retries.
    pub(crate) async fn change_membership_as_leader(
        &self,
        request: &AdminRequest,
    ) -> Result<BTreeMap<NodeId, String>, ClusterError> {
        let deadline = Instant::now() + self.propose_timeout() * 6;
        loop {
            match self.change_once(request).await {
                Err(ChangeError::InProgress(e)) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "membership change in progress; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(ChangeError::InProgress(e)) => {
                    tracing::warn!(error = %e, "membership change still blocked by another one");
                    return Err(ClusterError::Timeout);
                }
                Err(ChangeError::Other(e)) => return Err(e),
                Ok(()) => break,
            }
        }
        let s = self.status();
        Ok(s.voters.into_iter().chain(s.learners).collect())
    }

    async fn change_once(&self, request: &AdminRequest) -> Result<(), ChangeError> {
        let raft = self.raft();
        let refuse = |e: RaftError<NodeId, ClientWriteError<NodeId, PeerNode>>| match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                ChangeError::Other(ClusterError::NotLeader { leader: f.leader_node.as_ref().map(|n| n.addr.clone()) })
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(p))) => {
                ChangeError::InProgress(p.to_string())
            }
            other => ChangeError::Other(ClusterError::Refused(other.to_string())),
        };
        match request {
            AdminRequest::Add { id, addr, learner_only } => {
                let _gate = self.format_gate().lock().await;
                self.add_learner_once(*id, addr).await.map_err(|e| e.map_raft(refuse))?;
                if !learner_only && !self.status().voters.contains_key(id) {
                    tracing::info!(id, "promoting the learner to voter");
                    raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([*id])), false)
                        .await
                        .map_err(refuse)?;
                }
            }
            AdminRequest::Rejoin { id, addr, replaces } => {
                let _gate = self.format_gate().lock().await;
                if let Some(bad) =
                    replaces.iter().find(|r| node_of(**r) != node_of(*id) || incarnation_of(**r) >= incarnation_of(*id))
                {
                    return Err(ChangeError::Other(ClusterError::Refused(format!(
                        "{id} cannot replace {bad}: only an earlier incarnation of the same node id"
                    ))));
                }
                tracing::info!(id, %addr, ?replaces, "a node that lost its data rejoins");
                self.add_learner_once(*id, addr).await.map_err(|e| e.map_raft(refuse))?;
                let status = self.status();
                let stale_voters: BTreeSet<NodeId> =
                    replaces.iter().copied().filter(|r| status.voters.contains_key(r)).collect();
                if !stale_voters.is_empty() {
                    let mut voters: BTreeSet<NodeId> = status.voters.keys().copied().collect();
                    voters.retain(|v| !stale_voters.contains(v));
                    voters.insert(*id);
                    tracing::info!(id, ?stale_voters, "the new incarnation takes the lost one's place as a voter");
                    raft.change_membership(ChangeMembers::ReplaceAllVoters(voters), false).await.map_err(refuse)?;
                }
                let status = self.status();
                let stale: BTreeSet<NodeId> =
                    replaces.iter().copied().filter(|r| status.learners.contains_key(r)).collect();
                if !stale.is_empty() {
                    raft.change_membership(ChangeMembers::RemoveNodes(stale), false).await.map_err(refuse)?;
                }
            }
            AdminRequest::Remove { id } => {
                let status = self.status();
                let change = if status.voters.contains_key(id) {
                    ChangeMembers::RemoveVoters(BTreeSet::from([*id]))
                } else if status.learners.contains_key(id) {
                    ChangeMembers::RemoveNodes(BTreeSet::from([*id]))
                } else {
                    return Err(ChangeError::Other(ClusterError::Refused(format!("node {id} is not a member"))));
                };
                tracing::info!(id, "removing a member");
                raft.change_membership(change, false).await.map_err(refuse)?;
            }
        }
        Ok(())
    }
}

/// Why adding a learner failed: the joining node was refused, or Raft refused the change.
enum LearnerError {
    Refused(ClusterError),
    Raft(RaftError<NodeId, ClientWriteError<NodeId, PeerNode>>),
}

impl LearnerError {
    fn map_raft(
        self,
        refuse: impl FnOnce(RaftError<NodeId, ClientWriteError<NodeId, PeerNode>>) -> ChangeError,
    ) -> ChangeError {
        match self {
            LearnerError::Refused(e) => ChangeError::Other(e),
            LearnerError::Raft(e) => refuse(e),
        }
    }
}

impl Node {
    /// On the leader, with the version lock held: adds `id` at `addr` as a learner unless
    /// it already is one (or a voter), once it understands the version in force. Blocking:
    /// returns once the learner caught up with the log.
    async fn add_learner_once(&self, id: NodeId, addr: &str) -> Result<(), LearnerError> {
        let status = self.status();
        if status.voters.contains_key(&id) || status.learners.get(&id).map(String::as_str) == Some(addr) {
            return Ok(());
        }
        self.check_joining_format(id, addr).await.map_err(LearnerError::Refused)?;
        tracing::info!(id, %addr, "adding a learner");
        self.raft().add_learner(id, PeerNode::new(addr.to_string()), true).await.map_err(LearnerError::Raft)?;
        Ok(())
    }
}

/// When this node leads and the membership records another peer address for it (a
/// single node started without a peer listener, restarted with one to grow the
/// cluster), records the advertised address, so that new members can reach it.
async fn update_own_address(node: Node, addr: String) {
    let id = node.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut metrics = node.raft().metrics();
    while Instant::now() < deadline {
        let (leading, recorded) = {
            let m = metrics.borrow();
            let recorded = m.membership_config.membership().get_node(&id).map(|n| n.addr.clone());
            (m.current_leader == Some(id), recorded)
        };
        if recorded.as_deref() == Some(addr.as_str()) {
            return;
        }
        if leading && recorded.is_some() {
            let change = ChangeMembers::SetNodes(BTreeMap::from([(id, PeerNode::new(addr.clone()))]));
            match node.raft().change_membership(change, false).await {
                Ok(_) => tracing::info!(id, %addr, "recorded this node's new peer address"),
                Err(e) => tracing::warn!(error = %e, "cannot record this node's peer address"),
            }
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), metrics.changed()).await;
    }
}

/// Asks the members at `via` in turn (any member; a hint leads to the leader) to add
/// this node, at `own` (`Add` as a learner, or `Rejoin`), until one does. A hint naming
/// this node's own address (it may be the address of the incarnation it replaces, which
/// a member still takes for the leader) is not followed.
async fn ask_to_join(node: Node, via: Vec<String>, own: String, request: AdminRequest) {
    let mut turn = 0;
    let mut hint: Option<String> = None;
    let started = Instant::now();
    let mut said = false;
    loop {
        if !said && started.elapsed() > Duration::from_secs(60) && matches!(request, AdminRequest::Rejoin { .. }) {
            tracing::error!(
                ?via,
                "this node has not been taken back for a minute: it keeps asking. If a majority of the members lost \
                 their data, no quorum is left to take it back: stop every node, run `pushgateway cluster \
                 force-new-cluster` on the survivor with the most data and add the others back as that section says \
                 (docs/OPERATIONS.md, \"Lose a majority\")"
            );
            said = true;
        }
        let target = hint.take().unwrap_or_else(|| {
            turn += 1;
            via[(turn - 1) % via.len()].clone()
        });
        let answer: Result<AdminAnswer, PeerError> =
            node.peers().call(&target, PATH_ADMIN, &request, Duration::from_secs(60)).await;
        match answer {
            Ok(Ok(members)) => {
                tracing::info!(?members, "joined the cluster");
                return;
            }
            Ok(Err(WireAdminError::NotLeader { leader: Some(leader) })) if leader != own => {
                hint = Some(leader);
                continue;
            }
            Ok(Err(e)) => tracing::warn!(error = ?e, %target, "join refused; retrying"),
            Err(e) => tracing::warn!(error = %e, "join failed; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
