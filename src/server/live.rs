//! Server only: [`LiveHub`], the handle an app embeds — build it from a validated
//! [`HubConfig`], publish to it from Rust, mount its routes in any axum `Router`, shut it down.

use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

use crate::protocol::TopicPattern;
use crate::server::api::control::{self, Presence};
use crate::server::api::{events, ops, publish};
use crate::server::auth::{AuthPolicy, Authorizer};
use crate::server::config::{ConfigError, HubConfig};
use crate::server::error::ApiError;
use crate::server::stream::state::AppState;

/// The live-status server of an app: the SSE stream's fan-out, its event log (embedded ring
/// buffer, or Redis Streams shared by a fleet), metrics and shutdown. Cheap to clone (every
/// clone is the same hub).
///
/// ```no_run
/// # // no_run: it would serve forever.
/// use axum::Router;
/// use sse_status::server::{HubConfig, LiveHub};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = LiveHub::new(HubConfig::default().heartbeat_ms(5_000))?;
/// let app: Router = Router::new()
///     // GET /live/events, the stream the browser hook opens.
///     .nest("/live", hub.stream_router());
/// // Publish from anywhere in the server (a handler, a job, a server function):
/// let id = hub.publish("update", &serde_json::json!({ "n": 1 })).await?;
/// # let _ = id;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let stopping = hub.clone();
/// axum::serve(listener, app)
///     // Open streams would hold a graceful shutdown forever: end them first.
///     .with_graceful_shutdown(async move {
///         let _ = tokio::signal::ctrl_c().await;
///         stopping.shutdown().await;
///     })
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct LiveHub {
    state: AppState,
}

/// Why [`LiveHub::publish`] refused an event.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The event name is not 1–64 characters of `[A-Za-z0-9_.:-]`, or it is one the protocol
    /// reserves (`connected`, `ping`, `resync`, `draining`, `reauth`, `revoked`).
    #[error("invalid event name: {0}")]
    BadEventName(String),
    /// The topic list is not 1–64 topics of 1–200 characters of `[A-Za-z0-9._~:/-]`.
    #[error("invalid topics: {0}")]
    BadTopics(String),
    /// The subject to revoke is not 1–256 characters without control characters.
    #[error("invalid subject")]
    BadSubject,
    /// The data did not serialise to JSON.
    #[error("the event data is not serialisable to JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// The serialised data is larger than the publish limit (64 KiB).
    #[error("the event data is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The event log (Redis) is unreachable: the event was not stored. Retry later.
    #[error("the event log is unreachable; the event was not stored")]
    StoreUnavailable,
}

impl From<PublishError> for std::io::Error {
    fn from(err: PublishError) -> Self {
        std::io::Error::other(err)
    }
}

impl LiveHub {
    /// Check `config` ([`HubConfig::validate`]), create the hub and start its background work:
    /// the `ping` heartbeat and, with `config.redis_url`, the Redis follower. Both run until
    /// [`LiveHub::shutdown`]. A bad setting is an error naming it; nothing is started then.
    ///
    /// # Panics
    /// Outside a Tokio runtime (it spawns tasks).
    pub fn new(config: HubConfig) -> Result<LiveHub, ConfigError> {
        LiveHub::builder(config).build()
    }

    /// A hub with more than settings: an [`Authorizer`] deciding who reads which topics, and
    /// public topics. Without an authorizer nobody is granted a topic (a `?topic=` request is
    /// answered 403; broadcasts still reach every stream).
    ///
    /// ```no_run
    /// use sse_status::server::{HubConfig, JwtAuthorizer, LiveHub};
    /// use sse_status::protocol::TopicPattern;
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = LiveHub::builder(HubConfig::default())
    ///     .authorizer(JwtAuthorizer::new(std::env::var("SSE_AUTH_SECRET")?))
    ///     .public_topics(vec![TopicPattern::parse("public")?])
    ///     .build()?;
    /// # let _ = hub; Ok(()) }
    /// ```
    pub fn builder(config: HubConfig) -> LiveHubBuilder {
        LiveHubBuilder {
            config,
            auth: AuthPolicy::default(),
            mount: String::new(),
        }
    }

    fn start(config: HubConfig, auth: AuthPolicy, mount: &str) -> Result<LiveHub, ConfigError> {
        config.validate()?;
        let stream_path = stream_path(mount)?;
        let mut state = AppState::new(config, auth);
        state.stream_path = stream_path.into();
        tokio::spawn(
            state
                .hub
                .clone()
                .run_heartbeat(state.config.heartbeat(), state.shutdown.clone()),
        );
        state.start_log();
        Ok(LiveHub { state })
    }

    /// Publish an application event to every open stream, with the same rules and the same
    /// event log as `POST /api/publish`: `data` is serialised with serde to JSON and becomes the
    /// event's `data:`; the name must be a valid application event name. Returns the event's id
    /// (what `Last-Event-ID` carries) once the log has stored it. No token is needed: this is
    /// the server's own code.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<String, PublishError> {
        self.publish_to::<&str, T>(&[], event, data).await
    }

    /// [`publish`](Self::publish) to `topics` (1–64): the event reaches only streams granted and
    /// subscribed to one of them, live and in replay. An empty list publishes a broadcast.
    pub async fn publish_to<S: AsRef<str>, T: Serialize + ?Sized>(
        &self,
        topics: &[S],
        event: &str,
        data: &T,
    ) -> Result<String, PublishError> {
        crate::protocol::validate_event_name(event)
            .map_err(|err| PublishError::BadEventName(err.to_string()))?;
        let topics = if topics.is_empty() {
            Vec::new()
        } else {
            crate::protocol::validate_topics(topics)
                .map_err(|err| PublishError::BadTopics(err.to_string()))?
        };
        let data = serde_json::to_string(data)?;
        publish::append(&self.state, event, data, &topics)
            .await
            .map_err(|err| match err {
                ApiError::PayloadTooLarge { limit } => PublishError::TooLarge { limit },
                _ => PublishError::StoreUnavailable,
            })
    }

    /// `GET /events`: the SSE stream (the browser hook's `url` is where you mount it plus
    /// `/events`, e.g. `/live/events` under `.nest("/live", ...)`).
    pub fn stream_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/events", get(events::stream))
            .with_state(self.state.clone())
    }

    /// End every stream of `subject` with `revoked`: in this process at once, and on every
    /// instance of a Redis fleet within moments. `StoreUnavailable`: this process's streams
    /// ended, the fleet was not told (retry).
    pub async fn revoke(&self, subject: &str) -> Result<(), PublishError> {
        control::revoke_subject(&self.state, subject)
            .await
            .map_err(|err| match err {
                ApiError::BadRequest { .. } => PublishError::BadSubject,
                _ => PublishError::StoreUnavailable,
            })
    }

    /// How many open streams an event to `topic` reaches, across the fleet (counts only).
    pub async fn presence(&self, topic: &str) -> Result<Presence, PublishError> {
        control::count(&self.state, topic)
            .await
            .map_err(|err| match err {
                ApiError::BadTopic { reason } => PublishError::BadTopics(reason),
                _ => PublishError::StoreUnavailable,
            })
    }

    /// `POST /api/publish`, `POST /api/revoke` and `GET /api/presence`: publishing and access
    /// control over HTTP with `Authorization: Bearer <token>` (`config.publish_token`; unset,
    /// they answer 403). Mount it only if something outside the process publishes.
    pub fn publish_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/api/publish", post(publish::publish))
            .route("/api/revoke", post(control::revoke))
            .route("/api/presence", get(control::presence))
            .with_state(self.state.clone())
    }

    /// `GET /healthz` (liveness), `GET /readyz` (503 while shutting down) and `GET /metrics`
    /// (Prometheus text) for operators.
    pub fn ops_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/healthz", get(ops::healthz))
            .route("/readyz", get(ops::readyz))
            .route("/metrics", get(ops::metrics))
            .with_state(self.state.clone())
    }

    /// All of the above: [`stream_router`](Self::stream_router),
    /// [`publish_router`](Self::publish_router) and [`ops_router`](Self::ops_router).
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        self.stream_router()
            .merge(self.publish_router())
            .merge(self.ops_router())
    }

    /// How many streams are open in this process.
    pub fn open_streams(&self) -> usize {
        self.state.hub.open_streams()
    }

    /// Begin draining without stopping: `/readyz` turns 503 and new streams are refused (a load
    /// balancer moves traffic away), every open stream gets `draining` with a jittered reconnect
    /// hint. [`shutdown`](Self::shutdown) does this first; call it alone from a pre-stop hook.
    pub fn start_draining(&self) {
        self.state.start_draining();
    }

    /// Shut down: `/readyz` turns 503, new streams are refused, every open stream gets
    /// `draining` (with a jittered reconnect hint) and ends; streams still open after half of
    /// `config.shutdown_timeout_ms` are cut. Then the heartbeat and the log stop. Call it before
    /// (or as part of) your server's graceful shutdown: open streams would otherwise hold it.
    pub async fn shutdown(&self) {
        let until = tokio::time::Instant::now() + self.state.config.shutdown_timeout() / 2;
        self.state.start_draining();
        self.state.hub.all_closed(until).await;
        self.state.close_streams();
        self.state.shutdown.cancel();
    }

    /// The id of this process's hub (random per start): what `connected` carries as
    /// `server_id`, and the epoch of event ids in the embedded log.
    pub fn server_id(&self) -> &str {
        self.state.hub.server_id()
    }

    /// How many sockets [`serve`](crate::server::serve) holds open (streams, page loads,
    /// idle keep-alive connections).
    pub fn open_sockets(&self) -> usize {
        self.state.sockets.open()
    }

    /// How many streams the direct writers' shards hold right now (parked: nothing to send).
    /// For this crate's tests, which wait on it instead of sleeping; not a stable API.
    #[doc(hidden)]
    pub fn parked_streams(&self) -> usize {
        usize::try_from(self.state.metrics.streams_parked.get()).unwrap_or(0)
    }

    /// The settings this hub runs with (secrets redacted in `Debug`).
    pub fn config(&self) -> &HubConfig {
        &self.state.config
    }

    /// Where the stream is served: `/events`, or under the prefix given to
    /// [`LiveHubBuilder::mounted_at`] (e.g. `/live/events`).
    pub fn stream_path(&self) -> &str {
        &self.state.stream_path
    }

    /// The shared internals, for this crate's serving loop and app.
    pub(crate) fn state(&self) -> &AppState {
        &self.state
    }
}

/// Builds a [`LiveHub`] with an access policy: see [`LiveHub::builder`].
#[must_use]
pub struct LiveHubBuilder {
    config: HubConfig,
    auth: AuthPolicy,
    mount: String,
}

impl std::fmt::Debug for LiveHubBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHubBuilder")
            .field("config", &self.config)
            .field("auth", &self.auth)
            .field("mount", &self.mount)
            .finish()
    }
}

impl LiveHubBuilder {
    /// Who may read which topics: runs on every stream request, on every path. Default: nobody
    /// is granted a topic.
    pub fn authorizer(mut self, authorizer: impl Authorizer) -> Self {
        self.auth.authorizer = std::sync::Arc::new(authorizer);
        self
    }

    /// Topics every stream may subscribe to, anonymous ones included (an explicit opt-in:
    /// none by default).
    pub fn public_topics(mut self, patterns: Vec<TopicPattern>) -> Self {
        self.auth.public_topics = patterns;
        self
    }

    /// Where your router nests [`LiveHub::stream_router`] (or [`LiveHub::router`]), e.g.
    /// `"/live"` for `.nest("/live", hub.stream_router())`; default: the root. Only
    /// [`serve`](crate::server::serve) needs it: it answers `GET` on exactly that stream path
    /// without hyper's per-connection buffers. Requests there still go through your router and
    /// its layers; a wrong prefix costs memory per stream, never correctness.
    pub fn mounted_at(mut self, prefix: impl Into<String>) -> Self {
        self.mount = prefix.into();
        self
    }

    /// Check the settings and start the hub (see [`LiveHub::new`]).
    ///
    /// # Panics
    /// Outside a Tokio runtime (it spawns tasks).
    pub fn build(self) -> Result<LiveHub, ConfigError> {
        LiveHub::start(self.config, self.auth, &self.mount)
    }
}

/// The stream's path under `prefix` (`""` or `"/"`: the root).
fn stream_path(prefix: &str) -> Result<String, ConfigError> {
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    if prefix.is_empty() {
        return Ok("/events".into());
    }
    if !prefix.starts_with('/') {
        return Err(ConfigError::BadMount("it must start with /"));
    }
    if prefix.len() > 1024 {
        return Err(ConfigError::BadMount("it is longer than 1,024 bytes"));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@%".contains(&b);
    if !prefix.bytes().all(allowed) || prefix.contains("//") {
        return Err(ConfigError::BadMount(
            "only path characters, no empty segment, query or fragment",
        ));
    }
    Ok(format!("{prefix}/events"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_path_follows_the_mount_prefix() {
        for (prefix, path) in [
            ("", "/events"),
            ("/", "/events"),
            ("/live", "/live/events"),
            ("/live/", "/live/events"),
            ("/a/b", "/a/b/events"),
        ] {
            assert_eq!(stream_path(prefix).unwrap(), path, "{prefix:?}");
        }
        for bad in ["live", "/live?x=1", "/li ve", "/a//b", "/a#b"] {
            assert!(
                matches!(stream_path(bad), Err(ConfigError::BadMount(_))),
                "{bad:?}"
            );
        }
    }
}
