//! Started calls by session id, through which a new connection resumes a dropped call: the
//! id, the resume secret and the user must all match, and a miss says nothing about which.

use dashmap::DashMap;
use tokio::sync::mpsc;

use super::driver::Link;

/// A started call, as a resuming connection finds it.
pub(super) struct Registered {
    /// The secret a resume must present.
    pub(super) resume_token: String,
    /// The call's user, when the server checks tokens.
    pub(super) user: Option<String>,
    /// Where the call takes a new connection.
    pub(super) links: mpsc::Sender<Link>,
}

/// Started calls by session id.
#[derive(Default)]
pub struct CallRegistry {
    calls: DashMap<String, Registered>,
}

impl CallRegistry {
    /// Started calls, attached or waiting for a resume.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call is open.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The calls as the cluster directory lists them (the resume token only as its hash).
    pub fn directory(&self) -> Vec<crate::cluster::CallEntry> {
        self.calls
            .iter()
            .map(|call| crate::cluster::CallEntry {
                session_id: call.key().clone(),
                user: call.user.clone(),
                resume_hash: crate::cluster::secret_hash(&call.resume_token),
            })
            .collect()
    }

    pub(super) fn insert(&self, session_id: String, call: Registered) {
        self.calls.insert(session_id, call);
    }

    pub(super) fn remove(&self, session_id: &str) {
        self.calls.remove(session_id);
    }

    /// Hands `link` to the call `session_id` if `resume_token` and the user match; gives it
    /// back otherwise. A wrong id, a wrong token and a wrong user are refused alike, so a
    /// guess learns nothing.
    pub(super) fn hand_over(
        &self,
        session_id: &str,
        resume_token: &str,
        auth_required: bool,
        link: Link,
    ) -> Result<(), Box<Link>> {
        let Some(call) = self.calls.get(session_id) else {
            return Err(Box::new(link));
        };
        if !constant_time_eq(&call.resume_token, resume_token) {
            return Err(Box::new(link));
        }
        if auth_required && (link.user.is_none() || link.user != call.user) {
            // Another user's token (or none) never reaches this call.
            return Err(Box::new(link));
        }
        call.links.try_send(link).map_err(|e| match e {
            mpsc::error::TrySendError::Full(l) | mpsc::error::TrySendError::Closed(l) => {
                Box::new(l)
            }
        })
    }
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
