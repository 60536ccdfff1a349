//! The one error enum of the HTTP boundary and the one table from errors to status.

use axum::http::StatusCode;
use cluster::ClusterError;

use crate::access::AccessDenied;
use crate::exposition::protobuf::ProtobufError;
use crate::exposition::text_parse::TextParseError;
use crate::grouping_key::GroupingKeyError;

/// Everything a request can fail with. `Display` is the body sent to the client,
/// which for 4xx answers is upstream's message.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    GroupingKey(#[from] GroupingKeyError),
    #[error(transparent)]
    Text(#[from] TextParseError),
    #[error(transparent)]
    Protobuf(#[from] ProtobufError),
    /// The request body could not be decompressed (or, with gzip, had no valid header).
    #[error("{0}")]
    Encoding(String),
    /// The push was judged inconsistent with the stored groups.
    #[error("pushed metrics are invalid or inconsistent with existing metrics: {0}")]
    Inconsistent(String),
    /// The push exceeds one of the `--push.max-*` limits; nothing was proposed.
    #[error("{0}")]
    Limit(model::LimitExceeded),
    /// Storing the push would grow the store beyond a `--store.max-*` quota; nothing was
    /// stored (the group's failure time was, if the group exists).
    #[error("{0}")]
    Quota(model::QuotaExceeded),
    /// The client stopped sending the body (`--web.body-read-timeout`).
    #[error("{0}")]
    BodyTimeout(String),
    /// The body is larger than `--push.max-body-bytes` (before or after decompression).
    #[error("request body exceeds the limit of {0} bytes")]
    BodyTooLarge(usize),
    /// A push, delete or wipe could not be confirmed.
    #[error("{0}")]
    Propose(ClusterError),
    /// A consistent read could not be had.
    #[error("no consistent read available: {0}")]
    Read(ClusterError),
    /// A membership change or a checkpoint failed.
    #[error("{0}")]
    Admin(ClusterError),
    /// A request to the admin API that is not understood.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// An admin call whose body is not declared JSON.
    #[error("the request body must be JSON, sent with Content-Type: application/json")]
    NotJson,
    /// An import whose body is not declared binary (a web page cannot send that without
    /// the browser asking first, as with [`HttpError::NotJson`]).
    #[error("the request body must be upstream's persistence file, sent with Content-Type: application/octet-stream")]
    NotOctetStream,
    /// The node is not ready to serve (no leader, or far behind).
    #[error("not ready: {0}")]
    NotReady(String),
    /// The push needs a replicated-format version the cluster has not switched to yet
    /// (an upgrade in progress); nothing was proposed.
    #[error("{0}")]
    Upgrading(String),
    /// What went wrong with one group of a batch (`/metrics/batch`): answered as a single
    /// push of that group would be, naming the group.
    #[error("group {group}: {error}")]
    InGroup { group: String, error: Box<HttpError> },
    /// Basic authentication is configured and the request's credentials are missing or
    /// wrong (upstream's body).
    #[error("Unauthorized")]
    Unauthorized,
    /// Authenticated, but `--web.access-config.file` does not allow it: the role, or the
    /// group a push or delete would change; nothing was proposed.
    #[error(transparent)]
    Forbidden(#[from] AccessDenied),
}

impl HttpError {
    /// The status table (see the README's "Cluster guarantees").
    pub fn status(&self) -> StatusCode {
        use ClusterError::*;
        match self {
            HttpError::InGroup { error, .. } => error.status(),
            HttpError::GroupingKey(_)
            | HttpError::Text(_)
            | HttpError::Protobuf(_)
            | HttpError::Encoding(_)
            | HttpError::Inconsistent(_)
            | HttpError::Limit(_)
            | HttpError::BadRequest(_)
            | HttpError::Admin(Refused(_)) => StatusCode::BAD_REQUEST,
            HttpError::Unauthorized => StatusCode::UNAUTHORIZED,
            HttpError::Forbidden(_) => StatusCode::FORBIDDEN,
            HttpError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            HttpError::NotJson | HttpError::NotOctetStream => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            // The store is full, not the request wrong: 507 says exactly that, every
            // client reports it as a failed push with the body, and unlike 429 or 503 no
            // client or proxy retries it on its own (a retry cannot succeed until groups
            // are deleted or the quota raised). See docs/decisions/0010.
            HttpError::Quota(_) => StatusCode::INSUFFICIENT_STORAGE,
            // Certainly not applied: retrying is safe.
            HttpError::Propose(NoLeader | NotLeader { .. } | Refused(_)) => StatusCode::SERVICE_UNAVAILABLE,
            // Proposed but not confirmed: it may still be applied.
            HttpError::Propose(Timeout) => StatusCode::GATEWAY_TIMEOUT,
            HttpError::Propose(Internal(_)) | HttpError::Admin(Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::Admin(NoLeader | NotLeader { .. } | Timeout)
            | HttpError::NotReady(_)
            | HttpError::Read(_)
            | HttpError::Upgrading(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}
