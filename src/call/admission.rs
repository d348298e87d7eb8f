//! Who may start a call: the token a start carries (when the server checks tokens), the
//! server's call limit and the per-user limit. A refusal is a [`Fault`] the adapter turns
//! into an error and a close.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::events::{Fault, StartRequest};
use super::limits::{LimitSettings, UserCallGuard, UserCalls};

/// Checks a call token and names its user; the server's JWT verifier implements it.
pub trait TokenVerifier: Send + Sync {
    /// Whether calls need a token at all.
    fn enabled(&self) -> bool;
    /// The token's user (`sub`), or why the token (or its absence) is refused.
    fn verify(&self, token: Option<&str>) -> Result<String, String>;
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
}

/// What a start may go on with.
pub struct Admitted {
    /// The call's user, from the upgrade request or the start's token.
    pub user: Option<String>,
    /// The user's counted call, held for the call's life.
    pub slot: Option<UserCallGuard>,
    /// The server's counted call, held for the call's life.
    pub permit: OwnedSemaphorePermit,
}

impl Admission {
    /// A start policy of `verifier` for a server of `max_calls` calls.
    pub fn new(verifier: Arc<dyn TokenVerifier>, max_calls: usize) -> Self {
        Self {
            verifier,
            user_calls: Arc::default(),
            call_permits: Arc::new(Semaphore::new(max_calls)),
        }
    }

    /// Decides on `start` for a connection whose upgrade authenticated `user`, with `slot`
    /// and `permit` already held (a start that failed validation keeps both for the next
    /// attempt).
    pub fn admit(
        &self,
        start: &StartRequest,
        user: Option<String>,
        slot: Option<UserCallGuard>,
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
            (Some(u), None) => Some(self.user_slot(u, limits.max_calls_per_user)?),
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

    fn user_slot(&self, user: &str, max: usize) -> Result<UserCallGuard, Fault> {
        self.user_calls
            .try_open(user, max)
            .ok_or_else(|| Fault::RateLimited {
                what: format!("this user already has {max} calls open"),
                retry_after_ms: 5000,
                user_message: Some("You already have a call open. End it before starting another."),
            })
    }
}
