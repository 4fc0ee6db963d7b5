//! Server only: who may read which topics. The embedding app's [`Authorizer`] looks at a stream
//! request and answers with a [`Grant`] (subject, topic patterns, expiry) or [`Denied`]; the hub
//! runs it on every path a stream can take. [`JwtAuthorizer`] is the ready one (signed access
//! tokens, HS256 through the small `hs256` module and nothing else); [`NoAuthorizer`] grants
//! nobody a topic (the default: private unless said otherwise).

mod hook;
mod hs256;
mod jwt;

pub(crate) use hook::AuthPolicy;
pub use hook::{AuthFuture, Authorizer, Denied, Grant, NoAuthorizer, RequestParts};
// The app reads its demo session cookie with the same parser.
#[cfg(feature = "app-server")]
pub(crate) use jwt::cookie;
pub use jwt::{access_token, bearer_token, AccessClaims, IssueError, JwtAuthorizer, ACCESS_COOKIE};
