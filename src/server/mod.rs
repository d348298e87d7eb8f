//! The listener: plain HTTP (the page, `/healthz`, `/metrics`, `/v1/personas`, the
//! contract and call files in [`web`]) and the `/v1/call` WebSocket upgrade on one port, one
//! task per connection, graceful shutdown.

pub mod auth;
pub mod calls;
pub mod web;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;

use crate::call::{CallSettings, Engines};
use crate::protocol::{MAX_FRAME_BYTES, PROTOCOL_NAME};
use auth::Authenticator;

/// Largest HTTP request head read before the request is refused.
const MAX_HEAD: usize = 16 * 1024;

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
    /// Calls by session id, so a new socket can resume a dropped one.
    calls: calls::CallRegistry,
    /// Open calls per authenticated user.
    user_calls: Arc<crate::call::limits::UserCalls>,
    /// The drain deadline `run` was given, for calls finishing on shutdown.
    drain_ms: std::sync::atomic::AtomicU64,
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
        Arc::new(Self {
            engines,
            settings,
            accepting: AtomicBool::new(true),
            access,
            calls: calls::CallRegistry::default(),
            user_calls: Arc::new(crate::call::limits::UserCalls::default()),
            drain_ms: std::sync::atomic::AtomicU64::new(10_000),
        })
    }
}

/// Why [`spawn`] could not start a server.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// An engine could not be built.
    #[error(transparent)]
    Engines(#[from] crate::call::EngineError),
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
    let server = Server::with_access(
        Arc::new(engines),
        CallSettings::from_config(cfg),
        Access::from_config(cfg),
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
    server
        .drain_ms
        .store(drain.as_millis() as u64, Ordering::SeqCst);
    let root = CancellationToken::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    // Armed when shutdown begins.
    let drain_deadline = tokio::time::sleep(Duration::from_secs(86_400 * 365));
    tokio::pin!(drain_deadline);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = &mut shutdown, if !draining => {
                draining = true;
                tracing::info!(calls = server.calls.len(), "shutting down: finishing calls");
                server.accepting.store(false, Ordering::SeqCst);
                root.cancel();
                drain_deadline.as_mut().reset(tokio::time::Instant::now() + drain);
            }
            _ = &mut drain_deadline, if draining => {
                tracing::warn!(calls = server.calls.len(), "drain deadline passed; closing the rest");
                break;
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let server = server.clone();
                    let shutdown = root.clone();
                    connections.spawn(async move {
                        if let Err(e) = handle_connection(stream, server, shutdown).await {
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
        if draining && server.engines.metrics.calls_active.get() == 0 {
            break;
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// The parts of an HTTP request head the server looks at.
struct RequestHead {
    method: String,
    path: String,
    /// The part after `?`, if any.
    query: Option<String>,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_head(raw: &[u8]) -> Option<RequestHead> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let target = first.next()?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Some(RequestHead {
        method,
        path,
        query,
        headers,
    })
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end + 4);
            return Ok(Some(buf));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    write_head(stream, status, content_type, body.len() as u64).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

async fn write_head(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    len: u64,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await
}

/// 401 with why, one line of text.
async fn unauthorized(stream: &mut TcpStream, why: &str) -> std::io::Result<()> {
    respond(
        stream,
        "401 Unauthorized",
        "text/plain",
        &format!("{why}\n"),
    )
    .await
}

async fn send_reply(stream: &mut TcpStream, reply: web::Reply) -> std::io::Result<()> {
    match reply.body {
        web::Body::Bytes(b) => {
            write_head(stream, reply.status, reply.content_type, b.len() as u64).await?;
            stream.write_all(&b).await?;
        }
        web::Body::File(path) => {
            let file = tokio::fs::File::open(&path).await?;
            let len = file.metadata().await?.len();
            write_head(stream, reply.status, reply.content_type, len).await?;
            tokio::io::copy(&mut file.take(len), stream).await?;
        }
    }
    stream.shutdown().await
}

async fn handle_connection(
    mut stream: TcpStream,
    server: Arc<Server>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let head = tokio::time::timeout(Duration::from_secs(10), read_head(&mut stream)).await;
    let Ok(Ok(Some(raw))) = head else {
        return Ok(());
    };
    let Some(mut req) = parse_head(&raw) else {
        return respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            "bad request\n",
        )
        .await;
    };
    let is_upgrade = req
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    match (req.method.as_str(), req.path.as_str(), is_upgrade) {
        ("GET", "/v1/call", true) => {
            if !server.accepting.load(Ordering::SeqCst) {
                return respond(
                    &mut stream,
                    "503 Service Unavailable",
                    "text/plain",
                    "draining\n",
                )
                .await;
            }
            if !auth::origin_allowed(&server.access.allowed_origins, req.header("origin")) {
                tracing::info!(
                    origin = req.header("origin"),
                    "upgrade from a disallowed origin"
                );
                return respond(
                    &mut stream,
                    "403 Forbidden",
                    "text/plain",
                    "origin not allowed\n",
                )
                .await;
            }
            // A token given on the request is checked before the upgrade (401); without one,
            // session.start must carry it.
            let mut user = None;
            if server.access.auth.enabled()
                && let Some(token) =
                    auth::request_token(req.header("authorization"), req.query.as_deref())
            {
                match server.access.auth.verify(&token) {
                    Ok(claims) => user = Some(claims.sub),
                    Err(e) => {
                        tracing::info!(error = %e, "upgrade with a bad token");
                        return unauthorized(&mut stream, &e.to_string()).await;
                    }
                }
            }
            req.query = None;
            let Some(key) = req.header("sec-websocket-key") else {
                return respond(
                    &mut stream,
                    "400 Bad Request",
                    "text/plain",
                    "missing Sec-WebSocket-Key\n",
                )
                .await;
            };
            let offers_protocol = req
                .header("sec-websocket-protocol")
                .is_some_and(|v| v.split(',').any(|p| p.trim() == PROTOCOL_NAME));
            let mut reply = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
                derive_accept_key(key.as_bytes())
            );
            if offers_protocol {
                reply.push_str(&format!("Sec-WebSocket-Protocol: {PROTOCOL_NAME}\r\n"));
            }
            reply.push_str("\r\n");
            stream.write_all(reply.as_bytes()).await?;
            let config = WebSocketConfig::default()
                .max_message_size(Some(MAX_FRAME_BYTES))
                .max_frame_size(Some(MAX_FRAME_BYTES));
            let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await;
            calls::serve_socket(ws, server, cancel, user).await;
            Ok(())
        }
        ("GET", "/healthz", _) => {
            if server.accepting.load(Ordering::SeqCst) {
                respond(&mut stream, "200 OK", "text/plain", "ok\n").await
            } else {
                respond(
                    &mut stream,
                    "503 Service Unavailable",
                    "text/plain",
                    "draining\n",
                )
                .await
            }
        }
        ("GET", "/metrics", _) => {
            let body = server.engines.metrics.render();
            respond(&mut stream, "200 OK", "text/plain; version=0.0.4", &body).await
        }
        ("GET", "/v1/personas", _) => {
            let list: Vec<_> = server
                .engines
                .personas
                .iter()
                .map(|p| serde_json::json!({"id": p.id, "name": p.name, "description": p.description}))
                .collect();
            let body =
                serde_json::json!({ "personas": list, "default": server.settings.default_persona })
                    .to_string();
            respond(&mut stream, "200 OK", "application/json", &body).await
        }
        ("GET", path, _) if path.starts_with("/v1/calls/") && server.access.auth.enabled() => {
            // With tokens on, a call's recordings are its user's alone; someone else's call
            // looks like no call at all.
            let token = auth::request_token(req.header("authorization"), req.query.as_deref());
            let claims = match token.map(|t| server.access.auth.verify(&t)) {
                Some(Ok(claims)) => claims,
                Some(Err(e)) => return unauthorized(&mut stream, &e.to_string()).await,
                None => {
                    return unauthorized(
                        &mut stream,
                        "a token is needed: Authorization: Bearer TOKEN or ?access_token=TOKEN",
                    )
                    .await;
                }
            };
            let calls_dir = server.settings.calls_dir.as_deref();
            let owner = calls_dir.and_then(|d| web::call_owner(d, path));
            let reply = match owner {
                Some(user) if user == claims.sub => {
                    web::call_files(calls_dir, path).unwrap_or_else(web::Reply::not_found)
                }
                _ => web::Reply::not_found(),
            };
            send_reply(&mut stream, reply).await
        }
        ("GET", path, _) => {
            let reply = web::asset(path)
                .or_else(|| web::call_files(server.settings.calls_dir.as_deref(), path))
                .unwrap_or_else(web::Reply::not_found);
            send_reply(&mut stream, reply).await
        }
        _ => respond(&mut stream, "404 Not Found", "text/plain", "not found\n").await,
    }
}
