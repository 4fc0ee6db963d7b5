//! Server only, without the `redis` feature: the Redis log's place, a type with no values. The
//! hub's config refuses a Redis URL in such a build, so no code path can reach one; the compiler
//! checks that every use of it is dead.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::store_error::StoreError;
use crate::protocol::ResyncReason;
use crate::server::stream::hub::Hub;
use crate::server::stream::ring::{Frame, Pos};

/// What a read of missed events gives: the events, or why they cannot be replayed.
pub type Missed = Result<Vec<Arc<Frame>>, ResyncReason>;

/// No Redis in this build: there is no value of this type.
pub enum RedisLog {}

impl RedisLog {
    pub fn hub(&self) -> &Arc<Hub> {
        match *self {}
    }

    pub async fn append(
        &self,
        _name: &str,
        _data: &str,
        _topics: &[String],
    ) -> Result<String, StoreError> {
        match *self {}
    }

    pub async fn revoke(&self, _subject: &str) -> Result<(), StoreError> {
        match *self {}
    }

    pub async fn presence(&self, _topic: &str) -> Result<(u64, u32), StoreError> {
        match *self {}
    }

    pub async fn control(self: Arc<Self>, _stop: CancellationToken) {
        match *self {}
    }

    pub async fn fetch(&self, _after: Pos, _head: Pos) -> Result<Missed, StoreError> {
        match *self {}
    }

    pub async fn follow(self: Arc<Self>, _stop: CancellationToken) {
        match *self {}
    }

    pub async fn lease(self: Arc<Self>, _stop: CancellationToken) {
        match *self {}
    }
}
