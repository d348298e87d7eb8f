//! The listener: HTTP/1.1 through hyper on one port (the routes and the `/v1/call`
//! WebSocket upgrade are in [`http`]), one task per connection, graceful shutdown, and the
//! node's heartbeat in cluster mode.

pub mod auth;
pub mod http;
pub mod web;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::call::admission::Admission;
use crate::call::driver::CallHub;
use crate::call::limits::Unstarted;
use crate::call::{CallSettings, Engines};
use crate::cluster::{Cluster, NodeEntry};
use crate::protocol::MAX_FRAME_BYTES;
use auth::Authenticator;

/// Largest HTTP request head (request line and headers); a larger one gets 431.
const MAX_HEAD: usize = 16 * 1024;

/// Time a client has to send a whole request head (from the connection's start); a slower
/// one is disconnected without a reply, so trickled heads cannot hold connections open.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared state of a running server.
pub struct Server {
    /// Engines all calls share.
    pub engines: Arc<Engines>,
    /// Per-call settings.
    pub settings: CallSettings,
    /// False while draining: `/healthz` says 503 and new calls are refused.
    accepting: AtomicBool,
    /// Who may call.
    access: Access,
    /// The calls: registry, start policy, drain deadline.
    hub: Arc<CallHub>,
    /// Upgraded connections that have not started a call yet.
    unstarted: Arc<Unstarted>,
    /// This node in a cluster (`--redis`).
    cluster: Option<ClusterNode>,
}

/// This node in a cluster: its link to the directory and how other nodes reach it.
pub struct ClusterNode {
    /// The link to Redis.
    pub cluster: Arc<Cluster>,
    /// Where other nodes reach this one; `None`: the address it listens on.
    pub advertise: Option<String>,
}

impl ClusterNode {
    /// Joins the cluster `cfg` names, if it names one: a Redis out of reach is an error
    /// at start, not a node that quietly runs alone.
    pub async fn from_config(
        cfg: &crate::config::ServeConfig,
    ) -> Result<Option<Self>, crate::cluster::ClusterError> {
        let Some(c) = &cfg.cluster else {
            return Ok(None);
        };
        let cluster = Cluster::connect(&c.redis, &c.node_id).await?;
        tracing::info!(node_id = c.node_id, "joined the cluster");
        Ok(Some(Self {
            cluster,
            advertise: c.advertise.clone(),
        }))
    }
}

/// Who may open a call: the token check and the browser origin allowlist.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// JWT verification (off without a secret).
    pub auth: Authenticator,
    /// Allowed `Origin`s; empty allows any.
    pub allowed_origins: Vec<String>,
}

impl Access {
    /// The access rules of a configuration.
    pub fn from_config(cfg: &crate::config::ServeConfig) -> Self {
        Self {
            auth: Authenticator::new(cfg.jwt_secret.as_deref()),
            allowed_origins: cfg.allowed_origins.clone(),
        }
    }
}

impl Server {
    /// A server over built engines that lets anyone call (loopback use and tests).
    pub fn new(engines: Arc<Engines>, settings: CallSettings) -> Arc<Self> {
        Self::with_access(engines, settings, Access::default())
    }

    /// A server over built engines with these access rules.
    pub fn with_access(engines: Arc<Engines>, settings: CallSettings, access: Access) -> Arc<Self> {
        Self::in_cluster(engines, settings, access, None)
    }

    /// A server over built engines with these access rules, a node of `cluster` if given.
    pub fn in_cluster(
        engines: Arc<Engines>,
        settings: CallSettings,
        access: Access,
        cluster: Option<ClusterNode>,
    ) -> Arc<Self> {
        let admission = Admission::new(
            Arc::new(access.auth.clone()),
            settings.limits.max_calls,
            cluster.as_ref().map(|c| c.cluster.clone()),
        );
        let hub = CallHub::new(engines.clone(), settings.clone(), admission);
        Arc::new(Self {
            engines,
            settings,
            accepting: AtomicBool::new(true),
            access,
            hub,
            unstarted: Arc::default(),
            cluster,
        })
    }

    /// What the cluster directory says of this node now.
    fn node_entry(&self, id: &str, address: &str, started_at_ms: u64) -> NodeEntry {
        let (finals, partials) = self.engines.asr.queued();
        NodeEntry {
            id: id.to_owned(),
            address: address.to_owned(),
            calls: self.hub.calls.len(),
            max_calls: self.settings.limits.max_calls,
            asr_queued: finals + partials,
            started_at_ms,
            heartbeat_at_ms: crate::call::recorder::unix_ms(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Why [`spawn`] could not start a server.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// An engine could not be built.
    #[error(transparent)]
    Engines(#[from] crate::call::EngineError),
    /// The cluster's Redis could not be reached.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Builds the engines `cfg` describes, binds `cfg.listen` (port 0 for an ephemeral port)
/// and serves on the current runtime until `shutdown` is cancelled; returns the bound
/// address. For in-process servers: tests and `callgate bench --spawn`.
pub async fn spawn(
    cfg: &crate::config::ServeConfig,
    shutdown: CancellationToken,
) -> Result<std::net::SocketAddr, SpawnError> {
    let engines = Engines::from_config(cfg).await?;
    let bind_error = |source| SpawnError::Bind {
        addr: cfg.listen,
        source,
    };
    let listener = TcpListener::bind(cfg.listen).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let cluster = ClusterNode::from_config(cfg).await?;
    let server = Server::in_cluster(
        Arc::new(engines),
        CallSettings::from_config(cfg),
        Access::from_config(cfg),
        cluster,
    );
    tokio::spawn(run(listener, server, shutdown.cancelled_owned(), cfg.drain));
    Ok(addr)
}

/// Serves on an already-bound listener until `shutdown` resolves. Then it drains: new calls
/// are refused and `/healthz` says 503 (HTTP is still answered), every call finishes its
/// response in flight and ends with `session.ended` reason `shutdown`, and `run` returns
/// once they are gone or `drain` has passed.
pub async fn run(
    listener: TcpListener,
    server: Arc<Server>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    server.hub.set_drain(drain);
    let heartbeat = keep_in_cluster(&server, &listener);
    let root = CancellationToken::new();
    let mut connections = JoinSet::new();
    // Every call's task, so the drain ends when the last one has returned.
    let calls = TaskTracker::new();
    tokio::pin!(shutdown);
    // Armed when shutdown begins.
    let drain_deadline = tokio::time::sleep(Duration::from_secs(86_400 * 365));
    tokio::pin!(drain_deadline);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = &mut shutdown, if !draining => {
                draining = true;
                tracing::info!(calls = server.hub.calls.len(), "shutting down: finishing calls");
                server.accepting.store(false, Ordering::SeqCst);
                root.cancel();
                calls.close();
                drain_deadline.as_mut().reset(tokio::time::Instant::now() + drain);
            }
            _ = &mut drain_deadline, if draining => {
                tracing::warn!(calls = server.hub.calls.len(), "drain deadline passed; closing the rest");
                break;
            }
            _ = calls.wait(), if draining => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let server = server.clone();
                    let shutdown = root.clone();
                    let calls = calls.clone();
                    connections.spawn(async move {
                        if let Err(e) =
                            handle_connection(stream, peer.ip(), server, shutdown, calls).await
                        {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    // What the calls left behind (answer feedback) gets the rest of the drain time.
    let after_call = &server.engines.after_call;
    after_call.close();
    let left = drain_deadline
        .deadline()
        .saturating_duration_since(tokio::time::Instant::now());
    if tokio::time::timeout(left, after_call.wait()).await.is_err() {
        tracing::warn!(
            tasks = after_call.len(),
            "answer feedback unfinished at shutdown"
        );
    }
    if let Some((stop, task)) = heartbeat {
        // After the last call: the node leaves the directory with nothing left in it.
        stop.cancel();
        let _ = task.await;
    }
}

/// Starts the cluster heartbeat of a clustered server; stopped by cancelling the token.
fn keep_in_cluster(
    server: &Arc<Server>,
    listener: &TcpListener,
) -> Option<(CancellationToken, tokio::task::JoinHandle<()>)> {
    let node = server.cluster.as_ref()?;
    let address = node.advertise.clone().unwrap_or_else(|| {
        listener
            .local_addr()
            .map_or_else(|_| "unknown".into(), |a| a.to_string())
    });
    let started_at_ms = crate::call::recorder::unix_ms();
    let id = node.cluster.node_id().to_owned();
    let stop = CancellationToken::new();
    let (for_entry, for_calls) = (server.clone(), server.clone());
    let task = tokio::spawn(node.cluster.clone().keep_alive(
        move || for_entry.node_entry(&id, &address, started_at_ms),
        move || for_calls.hub.calls.directory(),
        stop.clone(),
    ));
    Some((stop, task))
}

/// The HTTP/1.1 server settings every connection gets: the head size limit and the time
/// allowed to send a head.
fn http1() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_header_size(MAX_HEAD);
    builder
}

/// Serves one connection: its HTTP request, then, if that was an accepted `/v1/call`
/// upgrade, the call on the upgraded socket.
async fn handle_connection(
    stream: TcpStream,
    peer: std::net::IpAddr,
    server: Arc<Server>,
    shutdown: CancellationToken,
    calls: TaskTracker,
) -> hyper::Result<()> {
    let (upgrades_tx, mut upgrades_rx) = mpsc::channel::<http::Upgrade>(1);
    let routes = server.clone();
    let service = service_fn(move |req| {
        let server = routes.clone();
        let upgrades = upgrades_tx.clone();
        async move { Ok::<_, Infallible>(http::route(req, peer, &server, &upgrades).await) }
    });
    http1()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await?;
    let Ok(upgrade) = upgrades_rx.try_recv() else {
        return Ok(());
    };
    let socket = TokioIo::new(upgrade.on_upgrade.await?);
    let max_bytes = match upgrade.protocol {
        http::Protocol::V1 => MAX_FRAME_BYTES,
        http::Protocol::Realtime { .. } => crate::call::realtime::MAX_MESSAGE_BYTES,
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_bytes))
        .max_frame_size(Some(max_bytes));
    let ws = WebSocketStream::from_raw_socket(socket, Role::Server, Some(config)).await;
    let hub = server.hub.clone();
    let caller = (upgrade.user, Some(upgrade.unstarted));
    match upgrade.protocol {
        http::Protocol::V1 => {
            let call = crate::call::driver::serve_socket(ws, hub, shutdown, caller.0, caller.1);
            calls.track_future(call).await;
        }
        http::Protocol::Realtime { model } => {
            let persona = server.engines.personas.get(&model).map(|_| model.clone());
            let codec = Arc::new(crate::call::realtime::RealtimeCodec::new(&model, persona));
            let log = Arc::new(crate::call::v1::V1Codec::default());
            let call =
                crate::call::driver::serve_socket_with(ws, hub, shutdown, caller, codec, Some(log));
            calls.track_future(call).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The head limits of [`http1`], on an in-memory connection and tokio's paused clock.

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// A connection served with [`http1`] and a service that answers 200 to anything and
    /// closes.
    fn serve() -> DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let service = service_fn(|_req| async {
            let mut reply = hyper::Response::new(http_body_util::Empty::<bytes::Bytes>::new());
            let close = hyper::header::HeaderValue::from_static("close");
            reply.headers_mut().insert(hyper::header::CONNECTION, close);
            Ok::<_, Infallible>(reply)
        });
        tokio::spawn(http1().serve_connection(TokioIo::new(server), service));
        client
    }

    /// Sends `request` and reads what comes back until the server closes.
    async fn exchange(request: &[u8]) -> String {
        let mut client = serve();
        client.write_all(request).await.expect("write");
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.expect("read");
        String::from_utf8_lossy(&reply).into_owned()
    }

    fn head_of(len: usize) -> Vec<u8> {
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
        head.resize(len - 4, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        head
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_over_the_limit_is_refused_with_431() {
        let reply = exchange(&head_of(MAX_HEAD + 1)).await;
        assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
        let reply = exchange(&head_of(MAX_HEAD)).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }

    #[tokio::test(start_paused = true)]
    async fn garbage_request_lines_get_400() {
        for garbage in [
            &b"HELLO\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"\x00\x01\x02\x03 / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET / HTTP/9.9\r\n\r\n",
        ] {
            let reply = exchange(garbage).await;
            assert!(
                reply.starts_with("HTTP/1.1 400"),
                "{:?}: {reply}",
                String::from_utf8_lossy(garbage)
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_trickled_slower_than_the_timeout_is_cut_off_without_a_reply() {
        let mut client = serve();
        let started = tokio::time::Instant::now();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let mut reply = Vec::new();
        // A byte now and then does not extend the deadline.
        let trickle = async {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if client.write_all(b"X-A: b\r\n").await.is_err() {
                    break;
                }
            }
        };
        tokio::select! {
            _ = trickle => {}
            _ = tokio::time::sleep(HEAD_TIMEOUT * 2) => panic!("still open after twice the timeout"),
        }
        assert!(started.elapsed() >= HEAD_TIMEOUT, "{:?}", started.elapsed());
        client.read_to_end(&mut reply).await.expect("read");
        assert!(reply.is_empty(), "{}", String::from_utf8_lossy(&reply));
    }
}
