//! One HTTP request, as hyper hands it over: the routes (the page and contract in [`web`],
//! `/healthz`, `/metrics`, `/v1/personas`, a call's files behind its token) and the checks
//! and handshake of the `/v1/call` and `/v1/realtime` WebSocket upgrades.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::create_response_with_body;

use super::{Server, auth, web};
use crate::protocol::PROTOCOL_NAME;

/// A response body: bytes in memory or a file streamed from disk.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Read size when streaming a call file (recordings can be tens of MB).
const FILE_CHUNK: usize = 64 * 1024;

/// A `/v1/call` request answered with 101: once hyper has sent that, the connection is the
/// call's.
pub struct Upgrade {
    /// Resolves to the connection after the 101 went out.
    pub on_upgrade: OnUpgrade,
    /// The user the upgrade request's token named, if it carried one.
    pub user: Option<String>,
    /// Counts the connection among those waiting to start a call.
    pub unstarted: crate::call::limits::UnstartedGuard,
    /// The wire protocol the connection speaks.
    pub protocol: Protocol,
}

/// Which wire protocol an accepted upgrade speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// callgate.v1, on `/v1/call`.
    V1,
    /// OpenAI Realtime, on `/v1/realtime`, for the model its `?model=` named.
    Realtime {
        /// The model asked for (a persona id picks that persona).
        model: String,
    },
}

/// Model named when a Realtime client names none.
const DEFAULT_REALTIME_MODEL: &str = "gpt-realtime";

/// Answers `req`. An accepted upgrade is queued on `upgrades` for the connection's task.
pub async fn route(
    mut req: Request<Incoming>,
    peer: std::net::IpAddr,
    server: &Server,
    upgrades: &mpsc::Sender<Upgrade>,
) -> Response<Body> {
    if req.method() != Method::GET {
        return not_found();
    }
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/v1/call" if asks_for_websocket(&req) => {
            upgrade(&mut req, (peer, Protocol::V1), server, upgrades)
        }
        "/v1/realtime" if asks_for_websocket(&req) => {
            let model = realtime_model(req.uri().query());
            let protocol = Protocol::Realtime { model };
            upgrade(&mut req, (peer, protocol), server, upgrades)
        }
        "/healthz" if server.accepting.load(Ordering::SeqCst) => text(StatusCode::OK, "ok\n"),
        "/healthz" => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        "/metrics" => bytes(
            StatusCode::OK,
            crate::metrics::CONTENT_TYPE,
            server.engines.metrics.render(),
        ),
        "/v1/personas" => personas(server),
        "/v1/cluster" => cluster_view(server).await,
        "/v1/calls" => call_history(&req, server).await,
        p if p.starts_with("/v1/calls/") => call_files(&req, server, path).await,
        p => match web::asset(p) {
            Some(reply) => send_reply(reply).await,
            None => not_found(),
        },
    }
}

/// A header's value; one that is not visible ASCII reads as empty (never as absent, so
/// an unreadable `Origin` is not mistaken for a request without one).
fn header(req: &Request<Incoming>, name: header::HeaderName) -> Option<&str> {
    req.headers()
        .get(name)
        .map(|v| v.to_str().unwrap_or_default())
}

fn asks_for_websocket(req: &Request<Incoming>) -> bool {
    header(req, header::UPGRADE).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The `?model=` of a Realtime upgrade, kept to a plain name.
fn realtime_model(query: Option<&str>) -> String {
    let model: String = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "model")
        .map(|(_, v)| v)
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(64)
        .collect();
    if model.is_empty() {
        DEFAULT_REALTIME_MODEL.to_owned()
    } else {
        model
    }
}

/// The token of an upgrade request: the header or query (see [`auth::request_token`]),
/// and for Realtime also a browser's `openai-insecure-api-key.<key>` subprotocol.
fn upgrade_token(req: &Request<Incoming>, protocol: &Protocol) -> Option<String> {
    let token = auth::request_token(header(req, header::AUTHORIZATION), req.uri().query());
    if token.is_some() || *protocol == Protocol::V1 {
        return token;
    }
    header(req, header::SEC_WEBSOCKET_PROTOCOL)?
        .split(',')
        .find_map(|p| {
            p.trim()
                .strip_prefix(crate::call::realtime::KEY_SUBPROTOCOL_PREFIX)
        })
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// The subprotocol the 101 names: the protocol's own, when the client offered it.
fn chosen_subprotocol(req: &Request<Incoming>, protocol: &Protocol) -> Option<&'static str> {
    let name = match protocol {
        Protocol::V1 => PROTOCOL_NAME,
        Protocol::Realtime { .. } => crate::call::realtime::SUBPROTOCOL,
    };
    header(req, header::SEC_WEBSOCKET_PROTOCOL)
        .is_some_and(|v| v.split(',').any(|p| p.trim() == name))
        .then_some(name)
}

/// The `/v1/call` and `/v1/realtime` upgrades: refused while draining (503), from a
/// disallowed origin (403) or with a bad token (401); otherwise tungstenite checks the
/// handshake headers (400), the caps on connections waiting to start a call are checked
/// (429 per address, 503 in all), and the 101 goes out, naming the protocol's subprotocol
/// ([`PROTOCOL_NAME`], or `realtime`) when the client offered it.
fn upgrade(
    req: &mut Request<Incoming>,
    (peer, protocol): (std::net::IpAddr, Protocol),
    server: &Server,
    upgrades: &mpsc::Sender<Upgrade>,
) -> Response<Body> {
    if !server.accepting.load(Ordering::SeqCst) {
        return text(StatusCode::SERVICE_UNAVAILABLE, "draining\n");
    }
    let origin = header(req, header::ORIGIN);
    if !auth::origin_allowed(&server.access.allowed_origins, origin) {
        tracing::info!(origin, "upgrade from a disallowed origin");
        return text(StatusCode::FORBIDDEN, "origin not allowed\n");
    }
    // A token given on the request is checked before the upgrade (401); without one,
    // session.start must carry it.
    let mut user = None;
    if server.access.auth.enabled()
        && let Some(token) = upgrade_token(req, &protocol)
    {
        match server.access.auth.verify(&token) {
            Ok(claims) => user = Some(claims.sub),
            Err(e) => {
                tracing::info!(error = %e, "upgrade with a bad token");
                return unauthorized(&e.to_string());
            }
        }
    }
    // tungstenite hashes any key it is given; RFC 6455 (4.2.1) asks for 16 bytes in base64.
    if let Some(key) = header(req, header::SEC_WEBSOCKET_KEY)
        && !is_websocket_key(key)
    {
        return text(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key must be 16 bytes in base64\n",
        );
    }
    let mut reply = match create_response_with_body(req, empty) {
        Ok(reply) => reply,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    if let Some(name) = chosen_subprotocol(req, &protocol) {
        reply.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(name),
        );
    }
    let limits = &server.settings.limits;
    let max = (limits.max_unstarted_per_ip, limits.max_unstarted);
    let unstarted = match server.unstarted.try_enter(peer, max.0, max.1) {
        Ok(guard) => guard,
        Err(full) => return too_many_unstarted(full, peer),
    };
    let on_upgrade = hyper::upgrade::on(req);
    let queued = upgrades.try_send(Upgrade {
        on_upgrade,
        user,
        unstarted,
        protocol,
    });
    if queued.is_err() {
        // One upgrade per connection: a second request on it cannot be one.
        return text(StatusCode::BAD_REQUEST, "one upgrade per connection\n");
    }
    reply
}

/// Whether `key` is a `Sec-WebSocket-Key` as RFC 6455 defines it: 16 bytes in base64.
fn is_websocket_key(key: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .is_ok_and(|bytes| bytes.len() == 16)
}

/// The refusal of an upgrade over a cap on connections waiting to start a call.
fn too_many_unstarted(
    full: crate::call::limits::UnstartedFull,
    peer: std::net::IpAddr,
) -> Response<Body> {
    use crate::call::limits::UnstartedFull;
    tracing::info!(%peer, ?full, "upgrade refused: too many connections waiting to start");
    let mut reply = match full {
        UnstartedFull::Address => text(
            StatusCode::TOO_MANY_REQUESTS,
            "too many connections from this address are waiting to start a call\n",
        ),
        UnstartedFull::Server => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections are waiting to start a call\n",
        ),
    };
    reply
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    reply
}

fn personas(server: &Server) -> Response<Body> {
    let list: Vec<_> = server
        .engines
        .personas
        .iter()
        .map(|p| serde_json::json!({"id": p.id, "name": p.name, "description": p.description}))
        .collect();
    let body = serde_json::json!({ "personas": list, "default": server.settings.default_persona })
        .to_string();
    bytes(StatusCode::OK, "application/json", body)
}

/// `/v1/cluster`: the nodes on this node's Redis and their load (operators' view, like
/// `/metrics`: no user's data is in it). 404 on a single node.
async fn cluster_view(server: &Server) -> Response<Body> {
    let Some(node) = &server.cluster else {
        return text(StatusCode::NOT_FOUND, "cluster mode is off (no --redis)\n");
    };
    match node.cluster.view().await.map(|v| serde_json::to_vec(&v)) {
        Ok(Ok(body)) => bytes(StatusCode::OK, "application/json", body),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    }
}

/// `/v1/calls/<id>[/<file>]`. With tokens on, a call's recordings are its user's alone:
/// no token or a bad one is 401, and someone else's call looks like no call at all (404).
async fn call_files(req: &Request<Incoming>, server: &Server, path: String) -> Response<Body> {
    let owner_needed = match caller(req, server) {
        Ok(user) => user,
        Err(refused) => return refused,
    };
    let calls_dir = server.settings.calls_dir.clone();
    // The lookups touch the file system: not on a tokio worker.
    let found = tokio::task::spawn_blocking(move || {
        let dir = calls_dir.as_deref();
        if let Some(user) = owner_needed
            && dir.and_then(|d| web::call_owner(d, &path)) != Some(user)
        {
            return None;
        }
        web::call_files(dir, &path)
    })
    .await;
    match found {
        Ok(Some(reply)) => send_reply(reply).await,
        _ => not_found(),
    }
}

/// With tokens on, the user a request's token names (`None` with tokens off); no token or
/// a bad one is a 401.
fn caller(req: &Request<Incoming>, server: &Server) -> Result<Option<String>, Response<Body>> {
    let auth = &server.access.auth;
    if !auth.enabled() {
        return Ok(None);
    }
    let token = auth::request_token(header(req, header::AUTHORIZATION), req.uri().query());
    match token.map(|t| auth.verify(&t)) {
        Some(Ok(claims)) => Ok(Some(claims.sub)),
        Some(Err(e)) => Err(unauthorized(&e.to_string())),
        None => Err(unauthorized(
            "a token is needed: Authorization: Bearer TOKEN or ?access_token=TOKEN",
        )),
    }
}

/// `/v1/calls`: the token's user's ended calls and how their figures moved. Without
/// tokens there is no user to list for (a session id stays the only key to a call): 404.
async fn call_history(req: &Request<Incoming>, server: &Server) -> Response<Body> {
    let user = match caller(req, server) {
        Ok(Some(user)) => user,
        Ok(None) => return not_found(),
        Err(refused) => return refused,
    };
    let calls_dir = server.settings.calls_dir.clone();
    // Reads every call's report: not on a tokio worker.
    let history = tokio::task::spawn_blocking(move || match calls_dir {
        Some(dir) => crate::report::history::history(&dir, &user),
        None => crate::report::history::History::default(),
    })
    .await;
    match history.map(|h| serde_json::to_vec(&h)) {
        Ok(Ok(body)) => bytes(StatusCode::OK, "application/json", body),
        _ => text(StatusCode::INTERNAL_SERVER_ERROR, "history unavailable\n"),
    }
}

/// A [`web::Reply`] as a response; a file is streamed, read off the tokio workers.
async fn send_reply(reply: web::Reply) -> Response<Body> {
    let status = status_of(reply.status);
    let path = match reply.body {
        web::Body::Bytes(b) => return bytes(status, reply.content_type, b.into_owned()),
        web::Body::File(path) => path,
    };
    let opened = async {
        let file = tokio::fs::File::open(&path).await?;
        let len = file.metadata().await?.len();
        Ok::<_, std::io::Error>((file, len))
    };
    let Ok((file, len)) = opened.await else {
        // Gone between the lookup and the read.
        return not_found();
    };
    let chunks = tokio_util::io::ReaderStream::with_capacity(file.take(len), FILE_CHUNK);
    let body = StreamBody::new(futures_util::TryStreamExt::map_ok(chunks, Frame::data));
    let mut response = with_headers(status, reply.content_type, BodyExt::boxed(body));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    response
}

/// The code of a status line such as `200 OK` (how [`web::Reply`] states it).
fn status_of(line: &str) -> StatusCode {
    line.split(' ')
        .next()
        .and_then(|code| StatusCode::from_bytes(code.as_bytes()).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn empty() -> Body {
    Full::new(Bytes::new()).map_err(|e| match e {}).boxed()
}

fn bytes(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let body = Full::new(body.into()).map_err(|e| match e {}).boxed();
    with_headers(status, content_type, body)
}

/// Every reply but the 101 ends its connection: one request per connection, as clients
/// that read to the end expect, and nothing idle left open for the drain to wait on.
fn with_headers(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    bytes(status, "text/plain", body)
}

fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// 401 with why, one line of text.
fn unauthorized(why: &str) -> Response<Body> {
    text(StatusCode::UNAUTHORIZED, format!("{why}\n"))
}
