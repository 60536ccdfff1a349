//! The one error enum of the HTTP boundary and the one table from errors to status.

use axum::http::StatusCode;
use cluster::node::{AdminError, ProposeError, ReadError};

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
    /// The body is larger than `--push.max-body-bytes` (before or after decompression).
    #[error("request body exceeds the limit of {0} bytes")]
    BodyTooLarge(usize),
    #[error(transparent)]
    Propose(#[from] ProposeError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// A request to the admin API that is not understood.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The node is not ready to serve (no leader, or far behind).
    #[error("not ready: {0}")]
    NotReady(String),
    /// Basic authentication is configured and the request's credentials are missing or
    /// wrong (upstream's body).
    #[error("Unauthorized")]
    Unauthorized,
}

impl HttpError {
    /// The status table (see the README's "Cluster guarantees").
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::GroupingKey(_)
            | HttpError::Text(_)
            | HttpError::Protobuf(_)
            | HttpError::Encoding(_)
            | HttpError::Inconsistent(_)
            | HttpError::BadRequest(_)
            | HttpError::Admin(AdminError::Rejected(_)) => StatusCode::BAD_REQUEST,
            HttpError::Admin(AdminError::NotLeader { .. } | AdminError::Unavailable(_)) | HttpError::NotReady(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            HttpError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::Admin(AdminError::Checkpoint(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::Unauthorized => StatusCode::UNAUTHORIZED,
            HttpError::Propose(ProposeError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Propose(ProposeError::Timeout(_)) => StatusCode::GATEWAY_TIMEOUT,
            HttpError::Propose(ProposeError::Storage(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::Read(ReadError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}
