//! Several groups in one push, all or none: `PUT` or `POST <prefix>/metrics/batch`.
//!
//! The body is text exposition, one section per group, each opened by a line
//! `# GROUP <path>`, where `<path>` is what follows `/metrics` in a single push's URL
//! (`/job/<job>{/<label>/<value>}`, `@base64` forms and `__ttl__` included, not
//! percent-encoded). Each section is parsed and limited as a single push of it would be;
//! then the groups are judged against the store's quotas together, and proposed as one
//! [`Command::PushAll`]: one log entry, which `apply` stores whole or not at all.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Response, StatusCode};

use model::{Command, GroupingKey, Outcome, Push, MAX_BATCH_GROUPS};

use super::answers::empty;
use super::push::{is_protobuf_push, propose, wait_format, PushBody};
use super::{now, AppState};
use crate::access::Principal;
use crate::body::{self, BodyEncoding};
use crate::error::HttpError;
use crate::grouping_key::{parse_push_target, GroupingKeyError};

/// The line that opens a group's section.
pub const MARKER: &[u8] = b"# GROUP ";

/// One group's section of a batch body: its path and its text.
type Section<'a> = (&'a [u8], &'a [u8]);

/// The sections of a batch body: each group's path and text, in order. Text before the
/// first marker may only be blank lines and comments.
pub fn sections(body: &[u8]) -> Result<Vec<Section<'_>>, String> {
    let mut out: Vec<(&[u8], usize, usize)> = Vec::new();
    let mut offset = 0;
    for line in body.split_inclusive(|&b| b == b'\n') {
        let start = offset;
        offset += line.len();
        if let Some(path) = line.strip_prefix(MARKER) {
            let path = path.trim_ascii();
            if out.len() == MAX_BATCH_GROUPS {
                return Err(format!("more than {MAX_BATCH_GROUPS} groups in one batch"));
            }
            if let Some(last) = out.last_mut() {
                last.2 = start;
            }
            out.push((path, offset, body.len()));
        } else if out.is_empty() && !line.trim_ascii().is_empty() && !line.starts_with(b"#") {
            return Err("text before the first \"# GROUP /job/<job>…\" line".to_string());
        }
    }
    if out.is_empty() {
        return Err("no group: open each group's text with a line \"# GROUP /job/<job>{/<label>/<value>}\"".into());
    }
    Ok(out.into_iter().map(|(path, from, to)| (path, &body[from..to])).collect())
}

/// The job, whether it is base64, and the labels' path of a section's `/job/<job>…`.
fn split_path(path: &[u8]) -> Result<(&[u8], bool, &[u8]), String> {
    let path = path.strip_prefix(b"/").unwrap_or(path);
    let (first, rest) = match path.iter().position(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (path, &b""[..]),
    };
    let base64 = match first {
        b"job" => false,
        b"job@base64" => true,
        _ => return Err("a group's path starts with /job/<job> or /job@base64/<job>".into()),
    };
    let (job, labels) = match rest.iter().position(|&b| b == b'/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, &b""[..]),
    };
    Ok((job, base64, labels))
}

/// A batch's error, naming its group (by its path as written, or its key).
fn in_group(group: impl std::fmt::Display, error: HttpError) -> HttpError {
    HttpError::InGroup { group: group.to_string(), error: Box::new(error) }
}

pub(super) async fn push_batch(
    state: &AppState,
    principal: &Principal,
    replace: bool,
    encoding: BodyEncoding,
    headers: &HeaderMap,
    raw: Bytes,
) -> Result<Response<Body>, HttpError> {
    if is_protobuf_push(headers) {
        return Err(HttpError::BadRequest(
            "a batch is text exposition, each group opened by \"# GROUP /job/<job>…\"; push protobuf group by group"
                .into(),
        ));
    }
    // Judged against the store the file's groups are in (the quotas).
    state.import_hold.wait(state.config.cluster_propose_timeout).await?;
    let names = state.config.names();
    let limits = state.config.push_limits();
    let max_bytes = state.config.push_max_body_bytes;
    let judged = tokio::task::spawn_blocking(move || -> Result<Vec<Push>, HttpError> {
        let body = body::decode(&raw, encoding, max_bytes)?;
        let sections = sections(&body).map_err(HttpError::BadRequest)?;
        let time = now();
        let mut pushes: Vec<Push> = Vec::with_capacity(sections.len());
        let mut seen: std::collections::BTreeSet<GroupingKey> = std::collections::BTreeSet::new();
        for (path, text) in sections {
            let shown = String::from_utf8_lossy(path).into_owned();
            let (job, base64, labels) =
                split_path(path).map_err(|e| in_group(&shown, HttpError::BadRequest(e.to_string())))?;
            let (key, ttl) = parse_push_target(job, base64, labels, names)
                .map_err(|e: GroupingKeyError| in_group(&shown, e.into()))?;
            let read = PushBody { protobuf: false, encoding: BodyEncoding::Identity, max_bytes, names };
            let (key, families, defect) = read.judge(key, text, limits).map_err(|e| in_group(&shown, e))?;
            if !seen.insert(key.clone()) {
                return Err(in_group(&shown, HttpError::BadRequest("the batch names this group twice".into())));
            }
            pushes.push(Push { key, families, replace, time, defect, utf8_names: false, ttl });
        }
        Ok(pushes)
    })
    .await
    .map_err(|e| HttpError::NotReady(format!("shutting down: {e}")))??;
    // Every group must be one the credentials may push to (--web.access-config.file).
    for push in &judged {
        principal.may_change(&push.key, "push to")?;
    }
    let quotas = state.config.store_quotas();
    state.node.judge_quota_all(pushes_for_quota(&judged), &quotas).map_err(HttpError::Quota)?;
    wait_format(state, model::version::V5, model::store::NEEDS_V5).await?;
    let utf8_names = names == model::check::Names::Utf8;
    let pushes = judged.into_iter().map(|p| Push { utf8_names, ..p }).collect();
    let outcome = propose(state, Command::PushAll { pushes }).await?;
    match outcome {
        _ if state.config.push_disable_consistency_check => Ok(empty(StatusCode::ACCEPTED)),
        Outcome::Rejected { reason } => Err(HttpError::Inconsistent(reason)),
        _ => Ok(empty(StatusCode::OK)),
    }
}

fn pushes_for_quota(pushes: &[Push]) -> impl Iterator<Item = (&GroupingKey, &model::PushedFamilies, bool)> {
    pushes.iter().map(|p| (&p.key, &p.families, p.replace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_splits_into_groups_at_the_marker_lines() {
        let body = b"# a comment first\n\n# GROUP /job/a/i/1\nx 1\n# TYPE y gauge\ny 2\n# GROUP job/b\nz 3";
        let got = sections(body).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (&b"/job/a/i/1"[..], &b"x 1\n# TYPE y gauge\ny 2\n"[..]));
        assert_eq!(got[1], (&b"job/b"[..], &b"z 3"[..]));
        assert!(sections(b"x 1\n# GROUP /job/a\n").unwrap_err().contains("before the first"));
        assert!(sections(b"").unwrap_err().contains("no group"));
        assert_eq!(sections(b"# GROUP /job/a\r\n").unwrap(), vec![(&b"/job/a"[..], &b""[..])]);
        let many: Vec<u8> = (0..=MAX_BATCH_GROUPS).flat_map(|i| format!("# GROUP /job/j{i}\n").into_bytes()).collect();
        assert!(sections(&many).unwrap_err().contains("more than"));
    }

    #[test]
    fn a_path_is_what_follows_metrics_in_a_push_url() {
        assert_eq!(split_path(b"/job/a/i/1").unwrap(), (&b"a"[..], false, &b"/i/1"[..]));
        assert_eq!(split_path(b"job@base64/YQ").unwrap(), (&b"YQ"[..], true, &b""[..]));
        assert!(split_path(b"/jobs/a").is_err());
        assert_eq!(split_path(b"/job").unwrap(), (&b""[..], false, &b""[..]), "refused later: job required");
    }
}
