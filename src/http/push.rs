//! Pushes and deletes: the grouping key from the URL and the families from the body
//! become a [`Command`], which the node proposes; the answer comes from its outcome.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Response, StatusCode};

use model::{Command, GroupingKey, Outcome, PushLimits, PushedFamilies};

use super::answers::empty;
use super::{now, AppState};
use crate::body::{self, BodyEncoding};
use crate::error::HttpError;
use crate::exposition::negotiate::{param, parse_media_type};
use crate::exposition::{protobuf, text_parse};
use crate::grouping_key::parse_grouping_key;
use crate::routes::Params;

pub(super) async fn propose(state: &AppState, command: Command) -> Result<Outcome, HttpError> {
    state.node.propose(command).await.map_err(HttpError::Propose)
}

fn is_protobuf_push(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let (media, params) = parse_media_type(ct);
    media == "application/vnd.google.protobuf"
        && param(&params, "encoding") == Some("delimited")
        && param(&params, "proto") == Some("io.prometheus.client.MetricFamily")
}

fn grouping_key(params: &Params, job_base64: bool) -> Result<GroupingKey, HttpError> {
    Ok(parse_grouping_key(&params.job, job_base64, &params.rest)?)
}

/// Bodies larger than this (or compressed, which may expand up to the body limit) are
/// decoded, parsed and judged on the blocking pool, not on the async workers that serve
/// every other request and carry the peer traffic.
const OFF_WORKERS_BYTES: usize = 64 * 1024;

pub(super) async fn push(
    state: &AppState,
    params: &Params,
    job_base64: bool,
    replace: bool,
    encoding: BodyEncoding,
    headers: &HeaderMap,
    raw: Bytes,
) -> Result<Response<Body>, HttpError> {
    let key = grouping_key(params, job_base64)?;
    let body = PushBody { protobuf: is_protobuf_push(headers), encoding, max_bytes: state.config.push_max_body_bytes };
    let limits = state.config.push_limits();
    let (key, families, defect) = if raw.len() > OFF_WORKERS_BYTES || encoding != BodyEncoding::Identity {
        tokio::task::spawn_blocking(move || body.judge(key, &raw, limits))
            .await
            .map_err(|e| HttpError::NotReady(format!("shutting down: {e}")))??
    } else {
        body.judge(key, &raw, limits)?
    };
    let time = now();
    if replace && state.config.debug_unsafe_ack_before_commit {
        tracing::warn!("--debug.unsafe-ack-before-commit: acknowledging a push that is not replicated");
        return Ok(empty(StatusCode::OK));
    }
    let outcome = propose(state, Command::Push { key, families, replace, time, defect }).await?;
    let unchecked = state.config.push_disable_consistency_check;
    match outcome {
        _ if unchecked => Ok(empty(StatusCode::ACCEPTED)),
        Outcome::Rejected { reason } => Err(HttpError::Inconsistent(reason)),
        _ => Ok(empty(StatusCode::OK)),
    }
}

/// How to read a push body.
#[derive(Clone, Copy)]
struct PushBody {
    protobuf: bool,
    encoding: BodyEncoding,
    max_bytes: usize,
}

impl PushBody {
    /// Decodes and parses `raw`, then judges the push against `limits`: linear work,
    /// all of it before anything is proposed.
    fn judge(
        self,
        key: GroupingKey,
        raw: &[u8],
        limits: PushLimits,
    ) -> Result<(GroupingKey, PushedFamilies, Option<String>), HttpError> {
        let body = body::decode(raw, self.encoding, self.max_bytes)?;
        let (families, defect) = if self.protobuf {
            let decoded = protobuf::parse_delimited(&body)?;
            (decoded.families, decoded.defect)
        } else {
            (text_parse::parse_text(&body)?, None)
        };
        limits.check(&key, &families).map_err(HttpError::Limit)?;
        Ok((key, families, defect))
    }
}

pub(super) async fn delete(state: &AppState, params: &Params, job_base64: bool) -> Result<Response<Body>, HttpError> {
    let key = grouping_key(params, job_base64)?;
    propose(state, Command::Delete { key }).await?;
    Ok(empty(StatusCode::ACCEPTED))
}
