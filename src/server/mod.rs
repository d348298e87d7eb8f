//! The listener: plain HTTP (`/`, `/healthz`, `/metrics`, `/v1/personas`) and the
//! `/v1/call` WebSocket upgrade on one port, one task per connection, graceful shutdown.

pub mod metrics;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;

use crate::call::outbox::Outbox;
use crate::call::session::{Control, Session, TICK};
use crate::call::{CallSettings, Engines};
use crate::protocol::{EndReason, MAX_FRAME_BYTES, PROTOCOL_NAME, Transport};

/// The placeholder page until the browser client lands.
const INDEX_HTML: &str = include_str!("index.html");

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
}

impl Server {
    /// A server over built engines.
    pub fn new(engines: Arc<Engines>, settings: CallSettings) -> Arc<Self> {
        Arc::new(Self {
            engines,
            settings,
            accepting: AtomicBool::new(true),
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
    let server = Server::new(Arc::new(engines), CallSettings::from_config(cfg));
    tokio::spawn(run(listener, server, shutdown.cancelled_owned(), cfg.drain));
    Ok(addr)
}

/// Serves on an already-bound listener until `shutdown` resolves, then ends every call
/// (`session.ended` reason `shutdown`) and returns once they are gone or `drain` passed.
pub async fn run(
    listener: TcpListener,
    server: Arc<Server>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let root = CancellationToken::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let server = server.clone();
                    let cancel = root.child_token();
                    connections.spawn(async move {
                        if let Err(e) = handle_connection(stream, server, cancel).await {
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
    tracing::info!(calls = connections.len(), "shutting down: ending calls");
    server.accepting.store(false, Ordering::SeqCst);
    root.cancel();
    let _ = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

/// The parts of an HTTP request head the server looks at.
struct RequestHead {
    method: String,
    path: String,
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
    let path = target.split('?').next().unwrap_or(target).to_string();
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
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
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
    let Some(req) = parse_head(&raw) else {
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
            serve_call(ws, server, cancel).await;
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
            let body = serde_json::json!({ "personas": list }).to_string();
            respond(&mut stream, "200 OK", "application/json", &body).await
        }
        ("GET", "/", _) => {
            respond(
                &mut stream,
                "200 OK",
                "text/html; charset=utf-8",
                INDEX_HTML,
            )
            .await
        }
        _ => respond(&mut stream, "404 Not Found", "text/plain", "not found\n").await,
    }
}

/// Runs one call over an upgraded socket: a reader loop driving the session, and one
/// writer task fed by a bounded queue.
async fn serve_call(
    ws: WebSocketStream<TcpStream>,
    server: Arc<Server>,
    server_cancel: CancellationToken,
) {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(256);
    let call_cancel = server_cancel.child_token();
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let closing = matches!(msg, Message::Close(_));
            if sink.send(msg).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let metrics = server.engines.metrics.clone();
    let outbox = Outbox::new(
        tx,
        Transport::Binary,
        None,
        metrics.clone(),
        call_cancel.clone(),
    );
    let (mut session, mut finished_rx, mut partial_rx) = Session::new(
        server.engines.clone(),
        server.settings.clone(),
        outbox.clone(),
        call_cancel.clone(),
    );
    metrics.calls_active.fetch_add(1, Ordering::Relaxed);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    let close = |code: CloseCode, reason: &str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_string().into(),
        }))
    };
    let mut close_frame = close(CloseCode::Normal, "");
    loop {
        let step = tokio::select! {
            biased;
            _ = call_cancel.cancelled() => {
                let reason = if server_cancel.is_cancelled() { EndReason::Shutdown } else { EndReason::Error };
                let _ = session.end(reason).await;
                if reason == EndReason::Shutdown {
                    close_frame = close(CloseCode::Away, "server shutting down");
                }
                break;
            }
            Some(f) = finished_rx.recv() => { session.on_turn_finished(f); Ok(Control::Continue) }
            Some(p) = partial_rx.recv() => session.on_partial(p).await.map(|_| Control::Continue),
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => session.on_text(text.as_str()).await,
                Some(Ok(Message::Binary(bytes))) => session.on_binary(&bytes).await,
                Some(Ok(Message::Ping(p))) => outbox.raw(Message::Pong(p)).await.map(|_| Control::Continue),
                Some(Ok(Message::Pong(_))) | Some(Ok(Message::Frame(_))) => Ok(Control::Continue),
                Some(Ok(Message::Close(_))) | None => {
                    tracing::debug!(session = session.session_id(), "client closed the connection");
                    break;
                }
                Some(Err(e)) => {
                    use tokio_tungstenite::tungstenite::Error as WsError;
                    if let WsError::Capacity(_) = e {
                        tracing::info!(session = session.session_id(), "frame too big; closing with 1009");
                        close_frame = close(CloseCode::Size, "frame larger than 65536 bytes");
                        let _ = session.end(EndReason::Error).await;
                    } else {
                        tracing::debug!(error = %e, "socket read error");
                    }
                    break;
                }
            },
            _ = tick.tick() => {
                if session.is_idle() {
                    let _ = session.end(EndReason::Idle).await;
                    break;
                }
                session.on_tick();
                Ok(Control::Continue)
            }
        };
        match step {
            Ok(Control::Continue) => {}
            Ok(Control::Close) => break,
            Ok(Control::ClosePolicy) => {
                close_frame = close(CloseCode::Policy, "session not found");
                break;
            }
            Err(_) => break,
        }
    }
    // Hang-up or end: stop every turn of this call.
    call_cancel.cancel();
    let _ = outbox.raw(close_frame).await;
    drop(outbox);
    drop(session);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    metrics.calls_active.fetch_sub(1, Ordering::Relaxed);
}
