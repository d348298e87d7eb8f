//! Cluster mode (`--redis`): this node's entry in a Redis directory of nodes and calls, kept
//! by an expiring heartbeat, the directory as operators read it (`GET /v1/cluster`), and
//! each user's calls counted across every node.
//!
//! Keys (one Redis, or a primary with replicas; not Redis Cluster, whose scripts may not
//! span slots):
//! - `callgate:nodes`: the set of node ids that have registered;
//! - `callgate:node:<id>`: a node's [`NodeEntry`] (JSON), expiring [`NODE_TTL`] after its
//!   last heartbeat: a node without one is gone;
//! - `callgate:user:<sub>`: a sorted set of that user's open calls, `<node>/<slot>` scored by
//!   the Redis time at which the slot lapses unless its node renews it;
//! - `callgate:call:<sessionId>`: the call's owner node, user and the SHA-256 of its resume
//!   token (never the token), expiring like its node's entry.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often a node renews its entries.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a node's entries outlive its last heartbeat: after that its user slots are free
/// again and the directory no longer lists it.
pub const NODE_TTL: Duration = Duration::from_secs(10);
/// How long one Redis request may take; the node carries on without it after that.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

const NODES: &str = "callgate:nodes";

fn node_key(id: &str) -> String {
    format!("callgate:node:{id}")
}

fn user_key(user: &str) -> String {
    format!("callgate:user:{user}")
}

fn call_key(session_id: &str) -> String {
    format!("callgate:call:{session_id}")
}

/// Takes a slot of `KEYS[1]` (a user's calls) unless `ARGV[1]` are open: lapsed slots (their
/// node stopped renewing them) are dropped first, so a dead node's calls stop counting.
/// Redis's clock scores every slot, so nodes' clocks need not agree.
const TAKE_SLOT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Renews slots: `KEYS[i]` holds member `ARGV[i + 1]`, now lapsing `ARGV[1]` ms from now.
/// `XX`: a slot released meanwhile is not brought back.
const RENEW_SLOTS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
";

/// Why a cluster request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis could not be reached at start.
    #[error("cannot reach Redis at {url}: {source}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// Why.
        source: redis::RedisError,
    },
    /// A request failed.
    #[error("Redis: {0}")]
    Request(#[from] redis::RedisError),
    /// A request took longer than [`REQUEST_TIMEOUT`].
    #[error("Redis did not answer within {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
    /// A directory entry is not what a node writes.
    #[error("a directory entry is malformed: {0}")]
    Malformed(String),
}

/// A node as the directory lists it (`GET /v1/cluster`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeEntry {
    /// The node's id (`--node-id`).
    pub id: String,
    /// Where other nodes and balancers reach it (`--advertise`, else its listen address).
    pub address: String,
    /// Calls it holds, attached or waiting for a resume.
    pub calls: usize,
    /// Its `--max-calls`.
    pub max_calls: usize,
    /// Transcriptions waiting for a whisper worker.
    pub asr_queued: usize,
    /// When it started, Unix ms (its own clock).
    pub started_at_ms: u64,
    /// Its last heartbeat, Unix ms (its own clock).
    pub heartbeat_at_ms: u64,
    /// callgate's version on it.
    pub version: String,
}

/// A call as its node publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEntry {
    /// The call's session id.
    pub session_id: String,
    /// Its user, when the server checks tokens.
    pub user: Option<String>,
    /// SHA-256 of its resume token, hex.
    pub resume_hash: String,
}

/// The directory, as `GET /v1/cluster` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// The node that answered.
    pub this_node: String,
    /// Live nodes, by id.
    pub nodes: Vec<NodeEntry>,
    /// Calls on all of them.
    pub calls: usize,
}

/// This node's link to the cluster.
pub struct Cluster {
    conn: ConnectionManager,
    node_id: String,
    /// Slots this node holds, member -> user key, renewed at each heartbeat.
    held: DashMap<String, String>,
    /// Slots to release now (a call ended). Unbounded, but each slot is sent once, so it
    /// never holds more than the node's calls.
    releases: mpsc::UnboundedSender<(String, String)>,
    released: std::sync::Mutex<Option<mpsc::UnboundedReceiver<(String, String)>>>,
}

/// One of a user's calls, counted across the cluster until dropped.
#[derive(Debug)]
pub struct ClusterSlot {
    member: String,
    key: String,
    releases: mpsc::UnboundedSender<(String, String)>,
}

impl Drop for ClusterSlot {
    fn drop(&mut self) {
        // The heartbeat task releases it at once; if that task is gone, the slot lapses.
        let _ = self.releases.send((
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.member),
        ));
    }
}

impl Cluster {
    /// Connects to Redis at `url` as node `node_id`.
    pub async fn connect(url: &str, node_id: &str) -> Result<Arc<Self>, ClusterError> {
        let connect_error = |source| ClusterError::Connect {
            url: redact(url),
            source,
        };
        let client = redis::Client::open(url).map_err(connect_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REQUEST_TIMEOUT))
            .set_response_timeout(Some(REQUEST_TIMEOUT))
            .set_number_of_retries(2);
        let conn = tokio::time::timeout(
            REQUEST_TIMEOUT * 2,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| ClusterError::Timeout)?
        .map_err(connect_error)?;
        let (releases, released) = mpsc::unbounded_channel();
        Ok(Arc::new(Self {
            conn,
            node_id: node_id.to_owned(),
            held: DashMap::new(),
            releases,
            released: std::sync::Mutex::new(Some(released)),
        }))
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Counts a call for `user` unless it has `max` open on all nodes together; `None`
    /// when it has.
    pub async fn try_user_slot(
        &self,
        user: &str,
        max: usize,
    ) -> Result<Option<ClusterSlot>, ClusterError> {
        let key = user_key(user);
        let member = format!("{}/{}", self.node_id, crate::call::random_id());
        let taken: i64 = bounded(
            redis::Script::new(TAKE_SLOT)
                .key(&key)
                .arg(max)
                .arg(NODE_TTL.as_millis() as u64)
                .arg(&member)
                .invoke_async(&mut self.conn.clone()),
        )
        .await?;
        if taken == 0 {
            return Ok(None);
        }
        self.held.insert(member.clone(), key.clone());
        Ok(Some(ClusterSlot {
            member,
            key,
            releases: self.releases.clone(),
        }))
    }

    /// Where another live node holds call `session_id`, if `resume_token` and `user` are
    /// the call's (a wrong id, token or user all read as no call, as on one node).
    pub async fn owner_of(
        &self,
        session_id: &str,
        resume_token: &str,
        user: Option<&str>,
    ) -> Result<Option<NodeEntry>, ClusterError> {
        let mut conn = self.conn.clone();
        let (owner, call_user, resume_hash): (Option<String>, Option<String>, Option<String>) =
            bounded(
                redis::cmd("HMGET")
                    .arg(call_key(session_id))
                    .arg(&["owner", "user", "resumeHash"])
                    .query_async(&mut conn),
            )
            .await?;
        let (Some(owner), Some(resume_hash)) = (owner, resume_hash) else {
            return Ok(None);
        };
        let call_user = call_user.filter(|u| !u.is_empty());
        let token_ok =
            crate::call::registry::constant_time_eq(&resume_hash, &secret_hash(resume_token));
        if !token_ok || owner == self.node_id || call_user.as_deref() != user {
            return Ok(None);
        }
        let entry: Option<String> = bounded(conn.get(node_key(&owner))).await?;
        entry
            .map(|json| {
                serde_json::from_str::<NodeEntry>(&json)
                    .map_err(|e| ClusterError::Malformed(format!("{owner}: {e}")))
            })
            .transpose()
    }

    /// The live nodes; entries of nodes gone are dropped from the set on the way.
    pub async fn view(&self) -> Result<ClusterView, ClusterError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = bounded(conn.smembers(NODES)).await?;
        let mut nodes = Vec::with_capacity(ids.len());
        if !ids.is_empty() {
            let keys: Vec<String> = ids.iter().map(|id| node_key(id)).collect();
            let entries: Vec<Option<String>> = bounded(conn.mget(&keys)).await?;
            let mut gone = Vec::new();
            for (id, entry) in ids.iter().zip(entries) {
                match entry {
                    Some(json) => nodes.push(
                        serde_json::from_str::<NodeEntry>(&json)
                            .map_err(|e| ClusterError::Malformed(format!("{id}: {e}")))?,
                    ),
                    None => gone.push(id.clone()),
                }
            }
            if !gone.is_empty() {
                let _: () = bounded(conn.srem(NODES, &gone)).await?;
            }
        }
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(ClusterView {
            this_node: self.node_id.clone(),
            calls: nodes.iter().map(|n| n.calls).sum(),
            nodes,
        })
    }

    /// Keeps this node's entries alive until `stop`, then removes them. `entry` says what
    /// the node is now, `calls` which calls it holds; a failed heartbeat is logged and the
    /// next one tries again (entries lapse only if Redis stays out of reach for
    /// [`NODE_TTL`]).
    pub async fn keep_alive(
        self: Arc<Self>,
        entry: impl Fn() -> NodeEntry,
        calls: impl Fn() -> Vec<CallEntry>,
        stop: CancellationToken,
    ) {
        let Some(mut released) = self
            .released
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            tracing::error!("the cluster heartbeat is already running");
            return;
        };
        let mut published = HashSet::new();
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                Some((key, member)) = released.recv() => self.release(&key, &member).await,
                _ = tick.tick() => {
                    if let Err(e) = self.beat(&entry(), &calls(), &mut published).await {
                        tracing::warn!(error = %e, "cluster heartbeat failed");
                    }
                }
            }
        }
        while let Ok((key, member)) = released.try_recv() {
            self.release(&key, &member).await;
        }
        if let Err(e) = self.leave(&published).await {
            tracing::warn!(error = %e, "leaving the cluster failed; the entries will lapse");
        }
    }

    async fn release(&self, key: &str, member: &str) {
        self.held.remove(member);
        let mut conn = self.conn.clone();
        if let Err(e) = bounded::<()>(conn.zrem(key, member)).await {
            tracing::warn!(error = %e, "releasing a user's call slot failed; it will lapse");
        }
    }

    /// One heartbeat: the node's entry, its calls (new ones added, ended ones removed) and
    /// its user slots, all renewed.
    async fn beat(
        &self,
        entry: &NodeEntry,
        calls: &[CallEntry],
        published: &mut HashSet<String>,
    ) -> Result<(), ClusterError> {
        let ttl_ms = NODE_TTL.as_millis() as u64;
        let json =
            serde_json::to_string(entry).map_err(|e| ClusterError::Malformed(e.to_string()))?;
        let mut pipe = redis::pipe();
        pipe.set_options(
            node_key(&self.node_id),
            json,
            redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl_ms)),
        )
        .ignore()
        .sadd(NODES, &self.node_id)
        .ignore();
        let now: HashSet<String> = calls.iter().map(|c| c.session_id.clone()).collect();
        for call in calls {
            let key = call_key(&call.session_id);
            pipe.hset_multiple(
                &key,
                &[
                    ("owner", self.node_id.as_str()),
                    ("user", call.user.as_deref().unwrap_or("")),
                    ("resumeHash", call.resume_hash.as_str()),
                ],
            )
            .ignore()
            .pexpire(&key, ttl_ms as i64)
            .ignore();
        }
        for ended in published.difference(&now) {
            pipe.del(call_key(ended)).ignore();
        }
        let mut conn = self.conn.clone();
        bounded::<()>(pipe.query_async(&mut conn)).await?;
        *published = now;
        self.renew_slots().await
    }

    async fn renew_slots(&self) -> Result<(), ClusterError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let renew = redis::Script::new(RENEW_SLOTS);
        let mut script = renew.prepare_invoke();
        script.arg(NODE_TTL.as_millis() as u64);
        for slot in self.held.iter() {
            script.key(slot.value()).arg(slot.key());
        }
        let _: i64 = bounded(script.invoke_async(&mut self.conn.clone())).await?;
        Ok(())
    }

    /// Removes the node's entry, its calls and its slots (a clean stop).
    async fn leave(&self, published: &HashSet<String>) -> Result<(), ClusterError> {
        let mut pipe = redis::pipe();
        pipe.del(node_key(&self.node_id))
            .ignore()
            .srem(NODES, &self.node_id)
            .ignore();
        for call in published {
            pipe.del(call_key(call)).ignore();
        }
        for slot in self.held.iter() {
            pipe.zrem(slot.value(), slot.key()).ignore();
        }
        let mut conn = self.conn.clone();
        bounded::<()>(pipe.query_async(&mut conn)).await
    }
}

/// `call`, given up on after [`REQUEST_TIMEOUT`].
async fn bounded<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, ClusterError> {
    tokio::time::timeout(REQUEST_TIMEOUT, call)
        .await
        .map_err(|_| ClusterError::Timeout)?
        .map_err(ClusterError::Request)
}

/// `url` without its password, for logs and errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// SHA-256 of `secret`, hex: what the directory keeps of a resume token.
pub fn secret_hash(secret: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_loses_its_password_and_keeps_the_rest() {
        assert_eq!(
            redact("redis://user:hunter2@10.0.0.5:6379/0"),
            "redis://user:***@10.0.0.5:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn a_resume_token_is_published_as_its_sha256() {
        assert_eq!(
            secret_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
