//! The controllers' error type.

/// Why one reconcile failed; the key is retried with back-off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{verb} {what}: {source}")]
    Api {
        verb: &'static str,
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{0}")]
    Failed(String),
    #[error("leader election lost")]
    LeaderElectionLost,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an API error with the verb and object it concerned.
    pub fn api(verb: &'static str, what: impl std::fmt::Display, source: kube::Error) -> Error {
        Error::Api { verb, what: what.to_string(), source: Box::new(source) }
    }
}

/// The HTTP status of an API error (`None` for transport errors).
pub fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

pub fn is_not_found(e: &kube::Error) -> bool {
    status_code(e) == Some(404)
}

pub fn is_conflict(e: &kube::Error) -> bool {
    status_code(e) == Some(409)
}

/// The message the API server gave, or the error's own text.
pub fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}
