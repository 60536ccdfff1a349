//! The web pages' handlers: the status page (from a view of the store, rendered without
//! its lock, and this node's view of the cluster), the static files and the pprof page;
//! the HTML is built in [`crate::ui`].

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use cluster::{MemberStatus, NodeStatus};

use super::answers::{html, http_error, plain};
use super::scrape::render_view;
use super::AppState;
use crate::error::HttpError;

pub(super) async fn status_page(state: &AppState) -> Result<Response<Body>, HttpError> {
    let prefix = state.config.route_prefix();
    let status = state.node.status();
    let members = members_from_local(&status);
    let flags = state.config.flag_map();
    let started = state.started;
    let page =
        render_view(state, move |view| crate::ui::status_page(view, &prefix, &status, &members, &flags, started))
            .await?;
    Ok(html(page))
}

/// The cluster's members as far as this node can tell without asking its peers: itself
/// with its own status, and every other voter and learner of its membership without
/// one (`"not asked"`).
fn members_from_local(status: &NodeStatus) -> Vec<MemberStatus> {
    let all = status.voters.iter().map(|(id, addr)| (*id, addr, true));
    let all = all.chain(status.learners.iter().map(|(id, addr)| (*id, addr, false)));
    let mut members: Vec<MemberStatus> = all
        .map(|(id, address, voter)| {
            let own = id == status.node_id;
            MemberStatus {
                id,
                address: address.clone(),
                voter,
                status: own.then(|| status.clone()),
                error: (!own).then(|| "not asked".to_string()),
            }
        })
        .collect();
    if !members.iter().any(|m| m.id == status.node_id) {
        // Not (or no longer) in its own membership: still shown, as the node answering.
        members.push(MemberStatus {
            id: status.node_id,
            address: String::new(),
            voter: false,
            status: Some(status.clone()),
            error: None,
        });
    }
    members.sort_by_key(|m| m.id);
    members
}

/// `GET /static/*`.
pub(super) fn static_file(path: &[u8]) -> Response<Body> {
    match crate::ui::static_file(path) {
        Some((content_type, text)) => {
            let mut r = plain(StatusCode::OK, text);
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r
        }
        None => http_error(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// `GET /debug/pprof/`.
pub(super) fn pprof() -> Response<Body> {
    html(crate::ui::pprof_page().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_node_answers_for_itself_alone() {
        let status = NodeStatus {
            voters: [(1, "a:1".to_string()), (2, "b:2".to_string())].into(),
            learners: [(3, "c:3".to_string())].into(),
            ..crate::ui::tests::node(2, 1, 5, 5)
        };
        let members = members_from_local(&status);
        let seen: Vec<_> = members.iter().map(|m| (m.id, m.address.as_str(), m.voter, m.status.is_some())).collect();
        assert_eq!(seen, [(1, "a:1", true, false), (2, "b:2", true, true), (3, "c:3", false, false)]);
        assert_eq!(members[0].error.as_deref(), Some("not asked"));
        assert_eq!(members[1].error, None);
    }
}
