//! Who may start a call: the token a start carries (when the server checks tokens), the
//! server's call limit and the per-user limit (across the cluster in cluster mode). A
//! refusal is a [`Fault`] the adapter turns into an error and a close.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::events::{Fault, StartRequest};
use super::limits::{LimitSettings, UserCallGuard, UserCalls};
use crate::cluster::{Cluster, ClusterSlot};

/// Checks a call token and names its user; the server's JWT verifier implements it.
pub trait TokenVerifier: Send + Sync {
    /// Whether calls need a token at all.
    fn enabled(&self) -> bool;
    /// The token's user (`sub`), or why the token (or its absence) is refused.
    fn verify(&self, token: Option<&str>) -> Result<String, String>;
    /// A short-lived token for `user`, whom this node has authenticated, that another
    /// node of the cluster (the same secret) accepts; `None` without tokens.
    fn vouch(&self, _user: &str) -> Option<String> {
        None
    }
}

/// No tokens: anyone who reaches the port may call (loopback use and tests).
pub struct Open;

impl TokenVerifier for Open {
    fn enabled(&self) -> bool {
        false
    }
    fn verify(&self, _token: Option<&str>) -> Result<String, String> {
        Err("tokens are not checked on this server".into())
    }
}

/// The start policy of a server.
pub struct Admission {
    /// Token checks.
    pub verifier: Arc<dyn TokenVerifier>,
    /// Open calls per user.
    pub user_calls: Arc<UserCalls>,
    /// One permit per call the server may hold (`--max-calls`); a call keeps its permit
    /// for its whole life, so concurrent starts cannot overshoot the limit.
    pub call_permits: Arc<Semaphore>,
    /// The cluster, whose nodes count each user's calls together (`--redis`).
    pub cluster: Option<Arc<Cluster>>,
}

/// One of a user's calls, counted on this node and, in cluster mode, across the cluster;
/// uncounted on drop.
#[derive(Debug)]
pub struct UserSlot {
    _here: UserCallGuard,
    _cluster: Option<ClusterSlot>,
}

/// What a start may go on with.
pub struct Admitted {
    /// The call's user, from the upgrade request or the start's token.
    pub user: Option<String>,
    /// The user's counted call, held for the call's life.
    pub slot: Option<UserSlot>,
    /// The server's counted call, held for the call's life.
    pub permit: OwnedSemaphorePermit,
}

impl Admission {
    /// A start policy of `verifier` for a server of `max_calls` calls, counting users'
    /// calls with `cluster`'s other nodes when there is one.
    pub fn new(
        verifier: Arc<dyn TokenVerifier>,
        max_calls: usize,
        cluster: Option<Arc<Cluster>>,
    ) -> Self {
        Self {
            verifier,
            user_calls: Arc::default(),
            call_permits: Arc::new(Semaphore::new(max_calls)),
            cluster,
        }
    }

    /// Decides on `start` for a connection whose upgrade authenticated `user`, with `slot`
    /// and `permit` already held (a start that failed validation keeps both for the next
    /// attempt).
    pub async fn admit(
        &self,
        start: &StartRequest,
        user: Option<String>,
        slot: Option<UserSlot>,
        permit: Option<OwnedSemaphorePermit>,
        limits: &LimitSettings,
    ) -> Result<Admitted, Fault> {
        let user = match user {
            Some(u) => Some(u),
            None if self.verifier.enabled() => Some(self.token_user(start)?),
            None => None,
        };
        let permit =
            match permit {
                Some(p) => p,
                None => self.call_permits.clone().try_acquire_owned().map_err(|_| {
                    Fault::Overloaded {
                        what: format!("the server is at its limit of {} calls", limits.max_calls),
                        retry_after_ms: 5000,
                    }
                })?,
            };
        let slot = match (&user, slot) {
            (_, Some(slot)) => Some(slot),
            (Some(u), None) => Some(self.user_slot(u, limits.max_calls_per_user).await?),
            (None, None) => None,
        };
        Ok(Admitted { user, slot, permit })
    }

    fn token_user(&self, start: &StartRequest) -> Result<String, Fault> {
        self.verifier.verify(start.token.as_deref()).map_err(|e| {
            tracing::info!(error = %e, "session.start without a valid token");
            Fault::Unauthorized(e)
        })
    }

    async fn user_slot(&self, user: &str, max: usize) -> Result<UserSlot, Fault> {
        let full = || Fault::RateLimited {
            what: format!("this user already has {max} calls open"),
            retry_after_ms: 5000,
            user_message: Some("You already have a call open. End it before starting another."),
        };
        let here = self.user_calls.try_open(user, max).ok_or_else(full)?;
        let cluster = match &self.cluster {
            None => None,
            Some(cluster) => match cluster.try_user_slot(user, max).await {
                Ok(Some(slot)) => Some(slot),
                Ok(None) => return Err(full()),
                Err(e) => {
                    // Redis out of reach must not stop every call: the limit holds on this
                    // node meanwhile.
                    tracing::warn!(error = %e, "per-user limit counted on this node only");
                    None
                }
            },
        };
        Ok(UserSlot {
            _here: here,
            _cluster: cluster,
        })
    }
}
