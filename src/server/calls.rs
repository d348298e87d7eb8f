//! Calls outlive their sockets: the per-call loop, the registry through which a new socket
//! resumes a dropped call, the resume grace period, the call limits checked at
//! `session.start`, and finishing calls on shutdown.
//!
//! A call loop owns its [`Session`] and reads from whichever socket is attached ("link").
//! When the socket drops without `session.end`, the response in flight is cancelled, the
//! input state is kept and the call waits `resume_grace` for `session.resume` on a new
//! socket, which hands its link over through the registry.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::Server;
use super::auth::constant_time_eq;
use crate::call::outbox::Outbox;
use crate::call::session::{Control, Session, TICK};
use crate::protocol::{
    ClientMessage, EndReason, ErrorCode, ErrorEvent, ServerMessage, Transport, parse_client_message,
};

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Time a finishing call keeps back from the server's drain deadline, to say
/// `session.ended` and close before the server stops.
const DRAIN_MARGIN: Duration = Duration::from_millis(500);

/// A socket attached to a call: what it reads, and its writer task's queue.
pub struct Link {
    stream: SplitStream<Socket>,
    writer_tx: mpsc::Sender<Message>,
    writer: JoinHandle<()>,
    /// The user its upgrade request authenticated, if any.
    user: Option<String>,
}

impl Link {
    /// Sends `msg` then closes with `code`, and waits (briefly) for the writer to flush.
    async fn close_with(self, msg: Option<ServerMessage>, code: CloseCode, reason: &str) {
        if let Some(msg) = msg {
            let _ = self.writer_tx.send(Message::text(msg.to_json())).await;
        }
        let _ = self.writer_tx.send(close_frame(code, reason)).await;
        drop(self.writer_tx);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.writer).await;
    }
}

fn close_frame(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    }))
}

/// A started call, as a resuming socket finds it.
struct Registered {
    resume_token: String,
    user: Option<String>,
    links: mpsc::Sender<Link>,
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

    /// Hands `link` to the call `session_id` if `resume_token` and the user match; gives it
    /// back otherwise. A wrong id, a wrong token and a wrong user are refused alike, so a
    /// guess learns nothing.
    fn hand_over(
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

/// Serves one upgraded socket: a new call, or a resume handed to its call.
pub async fn serve_socket(
    ws: Socket,
    server: Arc<Server>,
    shutdown: CancellationToken,
    user: Option<String>,
) {
    let (sink, stream) = ws.split();
    let (writer_tx, writer_rx) = mpsc::channel::<Message>(256);
    let writer = tokio::spawn(write_socket(sink, writer_rx));
    let link = Link {
        stream,
        writer_tx,
        writer,
        user,
    };
    let metrics = server.engines.metrics.clone();
    metrics.calls_active.inc();
    run_call(link, &server, shutdown).await;
    metrics.calls_active.dec();
}

/// Sends queued messages until the queue closes or a close frame went out.
async fn write_socket(mut sink: SplitSink<Socket, Message>, mut rx: mpsc::Receiver<Message>) {
    while let Some(msg) = rx.recv().await {
        let closing = matches!(msg, Message::Close(_));
        if sink.send(msg).await.is_err() || closing {
            break;
        }
    }
    let _ = sink.close().await;
}

/// The next message of the attached socket; never resolves while detached.
async fn next_message(
    link: &mut Option<Link>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match link.as_mut() {
        Some(l) => l.stream.next().await,
        None => std::future::pending().await,
    }
}

/// What the call loop does after a step.
enum Step {
    Continue,
    /// The socket is gone (or the client stopped reading it): wait for a resume.
    Detach,
    /// End the call; close an attached socket with this code.
    End(CloseCode, &'static str),
    /// This socket resumed another call: it belongs to that call now.
    HandedOver,
}

impl From<Result<Control, crate::call::outbox::ClientGone>> for Step {
    fn from(r: Result<Control, crate::call::outbox::ClientGone>) -> Self {
        match r {
            Ok(Control::Continue) => Step::Continue,
            Ok(Control::Close) => Step::End(CloseCode::Normal, ""),
            Ok(Control::ClosePolicy) => Step::End(CloseCode::Policy, "session not found"),
            Err(_) => Step::Detach,
        }
    }
}

async fn run_call(first: Link, server: &Arc<Server>, shutdown: CancellationToken) {
    let engines = server.engines.clone();
    let limits = server.settings.limits.clone();
    // Not a child of `shutdown`: on shutdown a call finishes its response first.
    let call_cancel = CancellationToken::new();
    let outbox = Outbox::new(
        first.writer_tx.clone(),
        Transport::Binary,
        None,
        engines.metrics.clone(),
        call_cancel.clone(),
    );
    let (mut session, mut finished_rx, mut partial_rx) = Session::new(
        engines.clone(),
        server.settings.clone(),
        outbox.clone(),
        call_cancel.clone(),
    );
    session.set_user(first.user.clone());
    let (links_tx, mut links_rx) = mpsc::channel::<Link>(1);
    let mut link = Some(first);
    let mut registered: Option<String> = None;
    let mut user_slot = None;
    let mut detached_at: Option<Instant> = None;
    let mut finish_by: Option<Instant> = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    let (close_code, close_reason) = loop {
        if let Some(deadline) = finish_by
            && (!session.busy() || link.is_none() || Instant::now() >= deadline)
        {
            let _ = session.end(EndReason::Shutdown).await;
            break (CloseCode::Away, "server shutting down");
        }
        let step = tokio::select! {
            biased;
            _ = call_cancel.cancelled() => {
                // The client stopped reading: its queue stayed full.
                let _ = session.end(EndReason::Error).await;
                break (CloseCode::Error, "client not reading");
            }
            _ = shutdown.cancelled(), if finish_by.is_none() => {
                let drain = Duration::from_millis(server.drain_ms.load(Ordering::SeqCst));
                finish_by = Some(Instant::now() + drain.saturating_sub(DRAIN_MARGIN));
                Step::Continue
            }
            Some(new) = links_rx.recv() => {
                // A resume: the new socket replaces whatever is attached (a half-open
                // old connection may not have noticed it is dead).
                if let Some(old) = link.take() {
                    tokio::spawn(old.close_with(None, CloseCode::Normal, "resumed on another connection"));
                }
                outbox.attach(new.writer_tx.clone());
                link = Some(new);
                detached_at = None;
                session.on_resumed().await.map(|_| Control::Continue).into()
            }
            Some(f) = finished_rx.recv() => {
                session.on_turn_finished(f);
                Step::Continue
            }
            Some(p) = partial_rx.recv() => session.on_partial(p).await.map(|_| Control::Continue).into(),
            msg = next_message(&mut link) => match msg {
                Some(Ok(Message::Text(text))) => {
                    if session.session_id().is_none() {
                        match before_start(server, &mut session, &mut link, &mut user_slot, text.as_str()).await {
                            Some(step) => step,
                            None => session.on_text(text.as_str()).await.into(),
                        }
                    } else {
                        session.on_text(text.as_str()).await.into()
                    }
                }
                Some(Ok(Message::Binary(bytes))) => session.on_binary(&bytes).await.into(),
                Some(Ok(Message::Ping(p))) => outbox.raw(Message::Pong(p)).await.map(|_| Control::Continue).into(),
                Some(Ok(Message::Pong(_))) | Some(Ok(Message::Frame(_))) => Step::Continue,
                Some(Ok(Message::Close(_))) | None => Step::Detach,
                Some(Err(e)) => {
                    use tokio_tungstenite::tungstenite::Error as WsError;
                    if let WsError::Capacity(_) = e {
                        tracing::info!(session = session.session_id(), "frame too big; closing with 1009");
                        let _ = session.end(EndReason::Error).await;
                        Step::End(CloseCode::Size, "frame larger than 65536 bytes")
                    } else {
                        tracing::debug!(error = %e, "socket read error");
                        Step::Detach
                    }
                }
            },
            _ = tick.tick() => {
                if let Some(at) = detached_at {
                    if at.elapsed() >= limits.resume_grace {
                        tracing::info!(session = session.session_id(), "no resume within the grace period");
                        let _ = session.end(EndReason::Timeout).await;
                        break (CloseCode::Normal, "");
                    }
                } else if session.is_idle() {
                    let _ = session.end(EndReason::Idle).await;
                    break (CloseCode::Normal, "");
                }
                if session.elapsed().is_some_and(|d| d >= limits.max_call_duration) {
                    tracing::info!(session = session.session_id(), "call reached its maximum duration");
                    let _ = session.end(EndReason::Timeout).await;
                    break (CloseCode::Normal, "maximum call duration reached");
                }
                session.on_tick();
                Step::Continue
            }
        };
        if registered.is_none()
            && let (Some(id), Some(token)) = (session.session_id(), session.resume_token())
        {
            server.calls.calls.insert(
                id.to_owned(),
                Registered {
                    resume_token: token.to_owned(),
                    user: session.user().map(str::to_owned),
                    links: links_tx.clone(),
                },
            );
            registered = Some(id.to_owned());
        }
        match step {
            Step::Continue => {}
            Step::HandedOver => return,
            Step::End(code, reason) => break (code, reason),
            Step::Detach => {
                if session.session_id().is_none() || call_cancel.is_cancelled() {
                    // Nothing to resume (or the client stopped reading): the call is over.
                    let _ = session.end(EndReason::Error).await;
                    break (CloseCode::Normal, "");
                }
                if detached_at.is_none() {
                    tracing::info!(
                        session = session.session_id(),
                        grace_s = limits.resume_grace.as_secs_f32(),
                        "connection dropped; waiting for session.resume"
                    );
                    outbox.detach();
                    link = None;
                    session.on_detached();
                    detached_at = Some(Instant::now());
                }
            }
        }
    };
    call_cancel.cancel();
    if let Some(id) = registered {
        server.calls.calls.remove(&id);
    }
    outbox.detach();
    drop(outbox);
    drop(session);
    drop(user_slot);
    if let Some(link) = link {
        link.close_with(None, close_code, close_reason).await;
    }
}

/// Handles a text message that arrives before the session started, where it concerns the
/// server rather than the session: `session.resume` (hand this socket over) and the checks
/// on `session.start` (token, call limits). `None`: let the session handle the message.
async fn before_start(
    server: &Arc<Server>,
    session: &mut Session,
    link: &mut Option<Link>,
    user_slot: &mut Option<crate::call::limits::UserCallGuard>,
    text: &str,
) -> Option<Step> {
    let auth = &server.access.auth;
    match parse_client_message(text) {
        Ok(ClientMessage::SessionResume {
            session_id,
            resume_token,
        }) => {
            let this = link.take()?;
            match server
                .calls
                .hand_over(&session_id, &resume_token, auth.enabled(), this)
            {
                Ok(()) => Some(Step::HandedOver),
                Err(this) => {
                    tracing::info!(session_id, "resume refused");
                    let error = ErrorEvent::new(
                        ErrorCode::SessionNotFound,
                        "no call with this sessionId and resumeToken is waiting",
                        false,
                    );
                    this.close_with(Some(error.into()), CloseCode::Policy, "session not found")
                        .await;
                    Some(Step::HandedOver)
                }
            }
        }
        Ok(ClientMessage::SessionStart(start)) => {
            if auth.enabled() && session.user().is_none() {
                let verified = match start.token.as_deref() {
                    Some(token) => auth.verify(token),
                    None => Err(super::auth::AuthError::Missing),
                };
                match verified {
                    Ok(claims) => session.set_user(Some(claims.sub)),
                    Err(e) => {
                        tracing::info!(error = %e, "session.start without a valid token");
                        let error = ErrorEvent::new(ErrorCode::Unauthorized, e.to_string(), false);
                        return Some(refuse(link, error, CloseCode::Policy, "unauthorized").await);
                    }
                }
            }
            let max_calls = server.settings.limits.max_calls;
            if server.calls.len() >= max_calls {
                let error = ErrorEvent::new(
                    ErrorCode::Overloaded,
                    format!("the server is at its limit of {max_calls} calls"),
                    true,
                )
                .retry_after(5000);
                return Some(
                    refuse(link, error, CloseCode::Again, "server at its call limit").await,
                );
            }
            // A start that fails validation keeps its slot for the next attempt.
            if let (Some(user), None) = (session.user(), user_slot.as_ref()) {
                let max = server.settings.limits.max_calls_per_user;
                match server.user_calls.try_open(user, max) {
                    Some(slot) => *user_slot = Some(slot),
                    None => {
                        let error = ErrorEvent::new(
                            ErrorCode::RateLimited,
                            format!("this user already has {max} calls open"),
                            true,
                        )
                        .user_message(
                            "You already have a call open. End it before starting another.",
                        )
                        .retry_after(5000);
                        return Some(
                            refuse(
                                link,
                                error,
                                CloseCode::Again,
                                "too many calls for this user",
                            )
                            .await,
                        );
                    }
                }
            }
            None
        }
        _ => None,
    }
}

/// Refuses the socket with `error` and a close; the call loop then ends.
async fn refuse(
    link: &mut Option<Link>,
    error: ErrorEvent,
    code: CloseCode,
    reason: &'static str,
) -> Step {
    if let Some(this) = link.take() {
        this.close_with(Some(error.into()), code, reason).await;
    }
    Step::HandedOver
}
