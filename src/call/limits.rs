//! Per-call and per-server limits: the settings, a token bucket for text messages, the audio
//! rate guard, and the count of calls per user. Each limit rejects the offender only.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use dashmap::DashMap;

/// Every limit, as configured.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Calls at once on this server; the next gets close 1013.
    pub max_calls: usize,
    /// Calls at once per authenticated user (`sub`).
    pub max_calls_per_user: usize,
    /// Longest a call may last.
    pub max_call_duration: Duration,
    /// Text messages per second per call, sustained (bursts of twice that pass).
    pub text_messages_per_s: f64,
    /// Input audio faster than this multiple of real time, beyond a burst, is refused
    /// (0 turns the guard off).
    pub max_audio_rate: f64,
    /// How long a dropped call waits for `session.resume`.
    pub resume_grace: Duration,
    /// How long an upgraded connection may wait before `session.start` or `session.resume`.
    pub start_timeout: Duration,
    /// Upgraded, not yet started connections per IP address.
    pub max_unstarted_per_ip: usize,
    /// Upgraded, not yet started connections in all.
    pub max_unstarted: usize,
}

impl Default for LimitSettings {
    /// The serve settings' defaults (src/config.rs holds them).
    fn default() -> Self {
        crate::config::ServeConfig::default().limits
    }
}

/// A token bucket: `rate` tokens a second, holding at most `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token at `now`; false when the bucket is empty.
    pub fn take_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Input audio a client may send ahead of real time: a resumed client resends what was
/// not acknowledged, and a CLI may start with a buffered second or two.
const AUDIO_BURST_MS: f64 = 10_000.0;

/// Refuses input audio arriving faster than `max_rate` times real time, beyond a burst.
#[derive(Debug)]
pub struct AudioRateGuard {
    max_rate: f64,
    started: Instant,
    accepted_ms: f64,
}

impl AudioRateGuard {
    /// A guard from now; `max_rate` 0 accepts everything.
    pub fn new(max_rate: f64) -> Self {
        Self {
            max_rate,
            started: Instant::now(),
            accepted_ms: 0.0,
        }
    }

    /// Whether a chunk of `chunk_ms` arriving at `now` is accepted (and counts it if so).
    pub fn accept_at(&mut self, chunk_ms: f64, now: Instant) -> bool {
        if self.max_rate <= 0.0 {
            return true;
        }
        let elapsed_ms = now.saturating_duration_since(self.started).as_secs_f64() * 1000.0;
        if self.accepted_ms + chunk_ms > elapsed_ms * self.max_rate + AUDIO_BURST_MS {
            return false;
        }
        self.accepted_ms += chunk_ms;
        true
    }
}

/// Calls open per user, across the server.
#[derive(Debug, Default)]
pub struct UserCalls {
    open: DashMap<String, usize>,
}

impl UserCalls {
    /// Counts a call for `user` unless it already has `max`; the guard uncounts it on drop.
    pub fn try_open(self: &Arc<Self>, user: &str, max: usize) -> Option<UserCallGuard> {
        let mut n = self.open.entry(user.to_owned()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        drop(n);
        Some(UserCallGuard {
            calls: self.clone(),
            user: user.to_owned(),
        })
    }

    /// Calls open for `user`.
    pub fn count(&self, user: &str) -> usize {
        self.open.get(user).map_or(0, |n| *n)
    }
}

/// One counted call of a user.
#[derive(Debug)]
pub struct UserCallGuard {
    calls: Arc<UserCalls>,
    user: String,
}

impl Drop for UserCallGuard {
    fn drop(&mut self) {
        uncount(&self.calls.open, &self.user);
    }
}

/// Upgraded connections that have not started or resumed a call yet, per IP address and
/// in all: each holds a writer task and a session until its start deadline, so a client
/// that opens sockets and never starts is capped before the deadline frees them.
#[derive(Debug, Default)]
pub struct Unstarted {
    per_ip: DashMap<IpAddr, usize>,
    total: AtomicUsize,
}

/// Why an upgrade was refused by [`Unstarted::try_enter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnstartedFull {
    /// This address has its share waiting.
    Address,
    /// The server has its share waiting.
    Server,
}

impl Unstarted {
    /// Counts a connection from `ip` unless the address has `per_ip` or the server `total`
    /// waiting already; the guard uncounts it on drop.
    pub fn try_enter(
        self: &Arc<Self>,
        ip: IpAddr,
        per_ip: usize,
        total: usize,
    ) -> Result<UnstartedGuard, UnstartedFull> {
        let mut n = self.per_ip.entry(ip).or_insert(0);
        if *n >= per_ip {
            return Err(UnstartedFull::Address);
        }
        let admitted = self
            .total
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                (t < total).then_some(t + 1)
            });
        if admitted.is_err() {
            return Err(UnstartedFull::Server);
        }
        *n += 1;
        drop(n);
        Ok(UnstartedGuard {
            waiting: self.clone(),
            ip,
        })
    }

    /// Connections waiting to start, in all.
    pub fn count(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }
}

/// One counted connection waiting to start a call.
#[derive(Debug)]
pub struct UnstartedGuard {
    waiting: Arc<Unstarted>,
    ip: IpAddr,
}

impl Drop for UnstartedGuard {
    fn drop(&mut self) {
        self.waiting.total.fetch_sub(1, Ordering::SeqCst);
        uncount(&self.waiting.per_ip, &self.ip);
    }
}

/// Takes one off `key`'s count, forgetting the key at zero so the map holds only the
/// keys with something counted.
fn uncount<K: std::hash::Hash + Eq>(counts: &DashMap<K, usize>, key: &K) {
    let empty = counts.get_mut(key).is_some_and(|mut n| {
        *n = n.saturating_sub(1);
        *n == 0
    });
    if empty {
        counts.remove_if(key, |_, n| *n == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_bursts_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 20.0);
        assert_eq!((0..25).filter(|_| b.take_at(t0)).count(), 20);
        assert!(!b.take_at(t0));
        let later = t0 + Duration::from_millis(500);
        assert_eq!((0..25).filter(|_| b.take_at(later)).count(), 5);
    }

    #[test]
    fn audio_guard_allows_real_time_and_a_burst_but_not_a_flood() {
        let t0 = Instant::now();
        let mut g = AudioRateGuard::new(4.0);
        g.started = t0;
        // 10 s burst at once is fine.
        assert!((0..500).all(|_| g.accept_at(20.0, t0)));
        assert!(!g.accept_at(20.0, t0), "beyond the burst");
        // Real time afterwards is fine: 1 s later, 4 s more are allowed.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..300).filter(|_| g.accept_at(20.0, t1)).count(), 200);
        let off = &mut AudioRateGuard::new(0.0);
        assert!((0..10_000).all(|_| off.accept_at(20.0, t0)));
    }

    #[test]
    fn user_calls_are_counted_and_released() {
        let calls = Arc::new(UserCalls::default());
        let a = calls.try_open("ada", 2).expect("first");
        let b = calls.try_open("ada", 2).expect("second");
        assert!(calls.try_open("ada", 2).is_none());
        assert!(
            calls.try_open("bob", 2).is_some(),
            "another user is not affected"
        );
        drop(a);
        assert_eq!(calls.count("ada"), 1);
        drop(b);
        assert_eq!(calls.count("ada"), 0);
    }

    #[test]
    fn unstarted_connections_are_capped_per_address_and_in_all() {
        let waiting = Arc::new(Unstarted::default());
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let a1 = waiting.try_enter(a, 2, 3).expect("a1");
        let _a2 = waiting.try_enter(a, 2, 3).expect("a2");
        assert_eq!(
            waiting.try_enter(a, 2, 3).err(),
            Some(UnstartedFull::Address)
        );
        let _b1 = waiting.try_enter(b, 2, 3).expect("b1");
        assert_eq!(
            waiting.try_enter(b, 2, 3).err(),
            Some(UnstartedFull::Server)
        );
        drop(a1);
        assert_eq!(waiting.count(), 2);
        assert!(waiting.try_enter(a, 2, 3).is_ok(), "a slot came back");
    }
}
