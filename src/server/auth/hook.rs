//! Server only: the authorization hook — the [`Authorizer`] trait, what it answers ([`Grant`],
//! [`Denied`]), the default that grants no topic, and a hub's access policy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use crate::protocol::TopicPattern;

/// The request parts an authorizer sees (method, URI, headers; never a body).
pub type RequestParts = axum::http::request::Parts;

/// The future an [`Authorizer`] returns.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Grant, Denied>> + Send + 'a>>;

/// What a stream may read: granted by an [`Authorizer`] when the stream opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who reads (what `POST /api/revoke` names); `None`: anonymous.
    pub subject: Option<String>,
    /// The topic patterns the subject may subscribe to (`users/42`, `docs/*`).
    pub topics: Vec<TopicPattern>,
    /// When the grant ends: the stream then gets `reauth` and ends. `None`: never.
    pub expires_at: Option<SystemTime>,
}

impl Grant {
    /// Nobody in particular, no topics, no expiry: broadcasts only.
    pub fn anonymous() -> Grant {
        Grant {
            subject: None,
            topics: Vec::new(),
            expires_at: None,
        }
    }
}

/// Why an [`Authorizer`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The request carries no credentials. A stream without `?topic=` still gets the
    /// broadcasts (as an anonymous grant); one that asks for topics gets 401.
    #[error("no credentials")]
    NoCredentials,
    /// The credentials are not valid (forged, expired, wrong algorithm, unknown subject): 401,
    /// with or without topics.
    #[error("invalid credentials: {0}")]
    Invalid(String),
}

/// The embedding app's decision on who may read what. Runs once per stream request, on every
/// path (the axum router and [`serve`](crate::server::serve)'s direct writer alike).
///
/// ```
/// use sse_status::server::{AuthFuture, Authorizer, Denied, Grant, RequestParts};
/// use sse_status::protocol::TopicPattern;
///
/// struct Everyone;
/// impl Authorizer for Everyone {
///     fn authorize<'a>(&'a self, parts: &'a RequestParts) -> AuthFuture<'a> {
///         Box::pin(async move {
///             let user = parts.headers.get("x-user").ok_or(Denied::NoCredentials)?;
///             let user = user.to_str().map_err(|_| Denied::Invalid("x-user".into()))?;
///             Ok(Grant {
///                 subject: Some(user.to_owned()),
///                 topics: vec![TopicPattern::parse(&format!("users/{user}")).map_err(|e| Denied::Invalid(e.to_string()))?],
///                 expires_at: None,
///             })
///         })
///     }
/// }
/// ```
pub trait Authorizer: Send + Sync + 'static {
    /// Decide on one stream request.
    fn authorize<'a>(&'a self, parts: &'a RequestParts) -> AuthFuture<'a>;
}

/// Grants nobody a topic: every stream gets broadcasts only (the hub's default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAuthorizer;

impl Authorizer for NoAuthorizer {
    fn authorize<'a>(&'a self, _parts: &'a RequestParts) -> AuthFuture<'a> {
        Box::pin(async { Ok(Grant::anonymous()) })
    }
}

/// A hub's access policy: its authorizer and the topics everyone may read (an explicit opt-in
/// of the embedder; none by default).
#[derive(Clone)]
pub(crate) struct AuthPolicy {
    /// Decides on every stream request.
    pub authorizer: Arc<dyn Authorizer>,
    /// Granted to every stream, anonymous ones included.
    pub public_topics: Vec<TopicPattern>,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            authorizer: Arc::new(NoAuthorizer),
            public_topics: Vec::new(),
        }
    }
}

impl std::fmt::Debug for AuthPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPolicy")
            .field("public_topics", &self.public_topics)
            .finish_non_exhaustive()
    }
}
