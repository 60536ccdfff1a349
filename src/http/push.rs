//! Pushes and deletes: the grouping key from the URL (parsed and allowed by the pipeline)
//! and the families from the body become a [`Command`], which the node proposes; the
//! answer comes from its outcome.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Response, StatusCode};

use cluster::Node;
use model::check::{legacy_names_only, Names};
use model::{Command, GroupingKey, Outcome, Push, PushLimits, PushedFamilies, QuotaExceeded, StoreQuotas, Ttl};

use super::answers::empty;
use super::{now, AppState};
use crate::body::{self, BodyEncoding};
use crate::error::HttpError;
use crate::exposition::negotiate::{param, parse_media_type};
use crate::exposition::{protobuf, text_parse};

/// Proposes a client's command: every push, delete and wipe goes through here. On a node
/// whose start-up import is still undecided, waits for it first (up to the propose
/// timeout), so that the file's groups are the base such commands act on.
pub(super) async fn propose(state: &AppState, command: Command) -> Result<Outcome, HttpError> {
    state.import_hold.wait(state.config.cluster_propose_timeout).await?;
    state.node.propose(command).await.map_err(HttpError::Propose)
}

pub(super) fn is_protobuf_push(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let Some((media, params)) = parse_media_type(ct) else { return false };
    media == "application/vnd.google.protobuf"
        && param(&params, "encoding") == Some("delimited")
        && param(&params, "proto") == Some("io.prometheus.client.MetricFamily")
}

/// Bodies larger than this (or compressed, which may expand up to the body limit) are
/// decoded, parsed and judged on the blocking pool, not on the async workers that serve
/// every other request and carry the peer traffic.
const OFF_WORKERS_BYTES: usize = 64 * 1024;

/// How long a push that needs a replicated-format version the cluster has not switched
/// to yet waits for the switch before it is answered 503.
const FORMAT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Pushes to the group of `key` (parsed, and allowed, by the pipeline).
pub(super) async fn push(
    state: &AppState,
    (key, ttl): (GroupingKey, Option<Ttl>),
    replace: bool,
    encoding: BodyEncoding,
    headers: &HeaderMap,
    raw: Bytes,
) -> Result<Response<Body>, HttpError> {
    // Judged against the store the file's groups are in (the quotas).
    state.import_hold.wait(state.config.cluster_propose_timeout).await?;
    let names = state.config.names();
    let body =
        PushBody { protobuf: is_protobuf_push(headers), encoding, max_bytes: state.config.push_max_body_bytes, names };
    let judge = Judge { limits: state.config.push_limits(), quotas: state.config.store_quotas(), replace };
    let node = state.node.clone();
    let (key, families, defect, quota) = if raw.len() > OFF_WORKERS_BYTES || encoding != BodyEncoding::Identity {
        tokio::task::spawn_blocking(move || judge.push(&node, body, key, &raw))
            .await
            .map_err(|e| HttpError::NotReady(format!("shutting down: {e}")))??
    } else {
        judge.push(&node, body, key, &raw)?
    };
    let time = now();
    if let Err(exceeded) = quota {
        if exceeded.group_exists {
            // Recorded as upstream records a failed push: the group's failure time. A
            // group that does not exist is not created for it (that would store more).
            let record = Command::Push {
                key,
                families: PushedFamilies::new(),
                replace: false,
                time,
                defect: Some(exceeded.to_string()),
            };
            propose(state, record).await?;
        }
        return Err(HttpError::Quota(exceeded));
    }
    if replace && state.config.debug_unsafe_ack_before_commit {
        tracing::warn!("--debug.unsafe-ack-before-commit: acknowledging a push that is not replicated");
        return Ok(empty(StatusCode::OK));
    }
    let push = Push { key, families, replace, time, defect, utf8_names: names == Names::Utf8, ttl };
    let command = push_command(state, push).await?;
    let outcome = propose(state, command).await?;
    let unchecked = state.config.push_disable_consistency_check;
    match outcome {
        _ if unchecked => Ok(empty(StatusCode::ACCEPTED)),
        Outcome::Rejected { reason } => Err(HttpError::Inconsistent(reason)),
        _ => Ok(empty(StatusCode::OK)),
    }
}

/// The command for a push judged on this node, once the cluster's replicated format can
/// carry it: values kept whole need version 3 on every node, names only the UTF-8 rules
/// accept need version 4's command (which carries those rules, so every node judges the
/// push alike whatever its own flags); every other push is judged alike under both rules.
/// A push naming a TTL needs version 5's command. A cluster about to switch (a fresh one,
/// or the end of an upgrade) is waited for up to [`FORMAT_WAIT`], then the answer is 503.
/// `push.utf8_names` says which rules the node judged the push by (its flag).
pub(super) async fn push_command(state: &AppState, mut push: Push) -> Result<Command, HttpError> {
    push.utf8_names = push_format(state, &push).await?;
    if push.ttl.is_some() {
        return Ok(Command::PushWith(push));
    }
    let Push { key, families, replace, time, defect, utf8_names, .. } = push;
    if utf8_names {
        return Ok(Command::PushUtf8 { key, families, replace, time, defect });
    }
    Ok(Command::Push { key, families, replace, time, defect })
}

/// Waits until the cluster's replicated format can carry `push` (see [`push_command`]);
/// returns whether the push must be judged by the UTF-8 rules (version 4's).
async fn push_format(state: &AppState, push: &Push) -> Result<bool, HttpError> {
    use model::version::{V3, V4, V5, V7};
    if model::store::needs_v3(&push.families) {
        wait_format(state, V3, model::store::NEEDS_V3).await?;
    }
    if model::store::needs_v7(&push.families) {
        wait_format(state, V7, model::store::NEEDS_V7).await?;
    }
    if push.ttl.is_some() {
        wait_format(state, V5, model::store::NEEDS_V5).await?;
    }
    if push.utf8_names && !legacy_names_only(&push.key, &push.families) {
        wait_format(state, V4, model::store::NEEDS_V4).await?;
        return Ok(true);
    }
    Ok(false)
}

/// Waits up to [`FORMAT_WAIT`] for the cluster's replicated format to reach `version`;
/// 503 with `why` if it does not.
pub(super) async fn wait_format(state: &AppState, version: model::FormatVersion, why: &str) -> Result<(), HttpError> {
    match state.node.wait_format(version, FORMAT_WAIT).await {
        true => Ok(()),
        false => Err(HttpError::Upgrading(why.to_string())),
    }
}

/// What a push is judged against before anything is proposed.
#[derive(Clone, Copy)]
struct Judge {
    limits: PushLimits,
    quotas: StoreQuotas,
    replace: bool,
}

/// A push as judged: its key, families and decoding defect, and whether it fits the
/// store's quotas.
type Judged = (GroupingKey, PushedFamilies, Option<String>, Result<(), QuotaExceeded>);

impl Judge {
    /// Reads the body and judges it against the limits (an error) and the quotas on this
    /// node's store (the verdict is returned: a refused push may still be recorded).
    fn push(self, node: &Node, body: PushBody, key: GroupingKey, raw: &[u8]) -> Result<Judged, HttpError> {
        let (key, families, defect) = body.judge(key, raw, self.limits)?;
        let quota = node.judge_quota(&key, &families, self.replace, &self.quotas);
        Ok((key, families, defect, quota))
    }
}

/// How to read a push body.
#[derive(Clone, Copy)]
pub(super) struct PushBody {
    pub(super) protobuf: bool,
    pub(super) encoding: BodyEncoding,
    pub(super) max_bytes: usize,
    /// The name rules of the text parser.
    pub(super) names: Names,
}

impl PushBody {
    /// Decodes and parses `raw`, then judges the push against `limits`: linear work,
    /// all of it before anything is proposed.
    pub(super) fn judge(
        self,
        key: GroupingKey,
        raw: &[u8],
        limits: PushLimits,
    ) -> Result<(GroupingKey, PushedFamilies, Option<String>), HttpError> {
        let (families, defect) = if self.protobuf {
            let body = body::decode(raw, self.encoding, self.max_bytes)?;
            let decoded = protobuf::parse_delimited_within(&body, &limits)?;
            let defect = decoded.defect(&key);
            (decoded.families, defect)
        } else {
            let body = body::decode_text(raw, self.encoding, self.max_bytes)?;
            (text_parse::parse_text_within(&body, &limits, self.names)?, None)
        };
        limits.check(&key, &families).map_err(HttpError::Limit)?;
        Ok((key, families, defect))
    }
}

/// Deletes the group of `key` (parsed, and allowed, by the pipeline; a `__ttl__` in the
/// path is ignored, so a client deletes with the grouping key it pushes with).
pub(super) async fn delete(state: &AppState, key: GroupingKey) -> Result<Response<Body>, HttpError> {
    propose(state, Command::Delete { key }).await?;
    Ok(empty(StatusCode::ACCEPTED))
}
