//! The call driver: one task per call that reads whichever connection is attached (a
//! "link"), decodes frames through the call's codec, feeds the session, and handles what
//! outlives a connection: the resume grace period, the idle and longest-call limits, and
//! finishing on shutdown. It is generic over the socket, so a call runs the same over a
//! TCP WebSocket, an upgraded HTTP connection or, in tests, a pair of channels.
//!
//! When a connection drops without `session.end`, the response in flight is cancelled, the
//! input state is kept and the call waits for `session.resume` on a new connection, which
//! hands its link over through the [`CallRegistry`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::admission::{Admission, UserSlot};
use super::events::{CallEvent, CallInput, Fault};
use super::limits::UnstartedGuard;
use super::outbox::{ClientGone, Outbox};
use super::registry::{CallRegistry, Registered};
use super::relay::{self, RelayTarget};
use super::session::{Control, Session, SessionFeedback};
use super::v1::{Closing, Codec, V1Codec};
use super::{CallSettings, Engines};
use crate::protocol::EndReason;

/// How often the driver looks at timers and schedules partial transcripts.
pub const TICK: Duration = Duration::from_millis(100);

/// Time a finishing call keeps back from the server's drain deadline, to say it ended and
/// close before the server stops.
const DRAIN_MARGIN: Duration = Duration::from_millis(500);

/// Output messages queued per connection before the client counts as slow.
const WRITER_QUEUE: usize = 256;

/// Everything calls share on one server: engines, settings, the registry and the start
/// policy.
pub struct CallHub {
    /// Engines all calls share.
    pub engines: Arc<Engines>,
    /// Per-call settings.
    pub settings: CallSettings,
    /// Calls by session id, so a new connection can resume a dropped one.
    pub calls: CallRegistry,
    /// Who may start a call.
    pub admission: Admission,
    /// The drain deadline the server was given, for calls finishing on shutdown.
    drain_ms: AtomicU64,
}

impl CallHub {
    /// A hub over built engines with this start policy.
    pub fn new(engines: Arc<Engines>, settings: CallSettings, admission: Admission) -> Arc<Self> {
        Arc::new(Self {
            engines,
            settings,
            calls: CallRegistry::default(),
            admission,
            drain_ms: AtomicU64::new(10_000),
        })
    }

    /// Sets how long calls get to finish once shutdown begins.
    pub fn set_drain(&self, drain: Duration) {
        self.drain_ms
            .store(drain.as_millis() as u64, Ordering::SeqCst);
    }
}

type Frames = Pin<Box<dyn Stream<Item = Result<Message, WsError>> + Send>>;

/// A connection attached to a call: what it reads, and its writer task's queue.
pub struct Link {
    pub(super) stream: Frames,
    pub(super) writer_tx: mpsc::Sender<Message>,
    /// Aborted when the link is dropped: a writer stuck on a peer that stopped reading
    /// must not outlive its connection.
    writer: AbortOnDropHandle<()>,
    /// The user its upgrade request authenticated, if any.
    pub(super) user: Option<String>,
}

impl Link {
    /// Splits `socket`: one task owns its write half, fed by a bounded queue.
    pub fn spawn<S>(socket: S, user: Option<String>) -> Self
    where
        S: Stream<Item = Result<Message, WsError>> + Sink<Message> + Send + 'static,
    {
        let (sink, stream) = socket.split();
        let (writer_tx, writer_rx) = mpsc::channel::<Message>(WRITER_QUEUE);
        let writer = AbortOnDropHandle::new(tokio::spawn(write_socket(sink, writer_rx)));
        Self {
            stream: Box::pin(stream),
            writer_tx,
            writer,
            user,
        }
    }

    /// Sends `msg` then the close frame, and waits (briefly) for the writer to flush; a
    /// writer still stuck after that is aborted.
    pub(super) async fn close_with(self, msgs: Vec<Message>, close: Message) {
        let Self {
            writer_tx, writer, ..
        } = self;
        let flush = async move {
            for msg in msgs.into_iter().chain([close]) {
                let _ = writer_tx.send(msg).await;
            }
            drop(writer_tx);
            let _ = writer.await;
        };
        // Dropping the unfinished flush drops (aborts) the writer.
        let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
    }
}

/// Sends queued messages until the queue closes or a close frame went out.
async fn write_socket<S: Sink<Message> + Unpin>(mut sink: S, mut rx: mpsc::Receiver<Message>) {
    while let Some(msg) = rx.recv().await {
        let closing = matches!(msg, Message::Close(_));
        if sink.send(msg).await.is_err() || closing {
            break;
        }
    }
    let _ = sink.close().await;
}

/// Serves one callgate.v1 connection: a new call, or a resume handed to its call.
/// `shutdown` starts the drain; `user` is who the upgrade request authenticated;
/// `unstarted` counts the connection among those waiting to start until it starts or
/// resumes a call.
pub async fn serve_socket<S>(
    socket: S,
    hub: Arc<CallHub>,
    shutdown: CancellationToken,
    user: Option<String>,
    unstarted: Option<UnstartedGuard>,
) where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message> + Send + 'static,
{
    let codec = Arc::new(V1Codec::default());
    serve_socket_with(socket, hub, shutdown, (user, unstarted), codec, None).await;
}

/// Serves one connection speaking `codec`'s protocol, as [`serve_socket`] does for
/// callgate.v1: `upgrade` is who the upgrade request authenticated and its place among the
/// connections waiting to start; `log`, when given, is the codec the call's events.jsonl
/// is written with (callgate.v1, so every call's record reads the same).
pub async fn serve_socket_with<S>(
    socket: S,
    hub: Arc<CallHub>,
    shutdown: CancellationToken,
    (user, unstarted): (Option<String>, Option<UnstartedGuard>),
    codec: Arc<dyn Codec>,
    log: Option<Arc<dyn Codec>>,
) where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message> + Send + 'static,
{
    let link = Link::spawn(socket, user);
    let metrics = hub.engines.metrics.clone();
    metrics.calls_active.inc();
    let mut call = CallLoop::new(link, hub, codec, log);
    call.unstarted = unstarted;
    call.run(shutdown).await;
    metrics.calls_active.dec();
}

/// What the call loop does after a step.
enum Step {
    Continue,
    /// The connection is gone (or the client stopped reading): wait for a resume.
    Detach,
    /// End the call; close an attached connection so.
    End(Closing),
    /// This connection left the call (refused, or it resumed another call).
    HandedOver,
}

impl From<Result<Control, ClientGone>> for Step {
    fn from(r: Result<Control, ClientGone>) -> Self {
        match r {
            Ok(Control::Continue) => Step::Continue,
            Ok(Control::Close) => Step::End(Closing::Ended("")),
            Err(_) => Step::Detach,
        }
    }
}

impl From<Result<(), ClientGone>> for Step {
    fn from(r: Result<(), ClientGone>) -> Self {
        Step::from(r.map(|_| Control::Continue))
    }
}

/// One call's state beyond the session: its connection, registration and timers.
struct CallLoop {
    hub: Arc<CallHub>,
    codec: Arc<dyn Codec>,
    session: Session,
    feedback: SessionFeedback,
    outbox: Outbox,
    link: Option<Link>,
    /// Resumes hand new links in here.
    links_tx: mpsc::Sender<Link>,
    links_rx: mpsc::Receiver<Link>,
    registered: Option<String>,
    user_slot: Option<UserSlot>,
    /// The server's count of this call (`--max-calls`), from its admission to its end.
    call_permit: Option<OwnedSemaphorePermit>,
    /// Counts the connection as waiting to start; dropped once the call starts.
    unstarted: Option<UnstartedGuard>,
    /// When a connection that has neither started nor resumed a call is closed.
    start_by: Instant,
    detached_at: Option<Instant>,
    finish_by: Option<Instant>,
    /// Not a child of the server's shutdown: on shutdown a call finishes its response first.
    call_cancel: CancellationToken,
    /// Replaced connections being closed (a resume elsewhere).
    closing_links: JoinSet<()>,
}

impl CallLoop {
    fn new(
        first: Link,
        hub: Arc<CallHub>,
        codec: Arc<dyn Codec>,
        log: Option<Arc<dyn Codec>>,
    ) -> Self {
        let call_cancel = CancellationToken::new();
        let mut outbox = Outbox::new(
            first.writer_tx.clone(),
            codec.clone(),
            None,
            hub.engines.metrics.clone(),
            call_cancel.clone(),
        );
        if let Some(log) = log {
            outbox = outbox.logging_with(log);
        }
        let (mut session, feedback) = Session::new(
            hub.engines.clone(),
            hub.settings.clone(),
            outbox.clone(),
            call_cancel.clone(),
        );
        session.set_user(first.user.clone());
        let (links_tx, links_rx) = mpsc::channel::<Link>(1);
        Self {
            codec,
            session,
            feedback,
            outbox,
            link: Some(first),
            links_tx,
            links_rx,
            registered: None,
            user_slot: None,
            call_permit: None,
            unstarted: None,
            start_by: Instant::now() + hub.settings.limits.start_timeout,
            detached_at: None,
            finish_by: None,
            call_cancel,
            closing_links: JoinSet::new(),
            hub,
        }
    }

    async fn run(mut self, shutdown: CancellationToken) {
        if let Some(opening) = self.codec.opening()
            && let Step::HandedOver = self.on_input(opening).await
        {
            return self.finish(None).await;
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let closing = loop {
            if let Some(closing) = self.finish_on_shutdown().await {
                break closing;
            }
            let step = tokio::select! {
                biased;
                _ = self.call_cancel.cancelled() => {
                    // The client stopped reading: its queue stayed full.
                    let _ = self.session.end(EndReason::Error).await;
                    break Closing::NotReading;
                }
                _ = shutdown.cancelled(), if self.finish_by.is_none() => {
                    let drain = Duration::from_millis(self.hub.drain_ms.load(Ordering::SeqCst));
                    self.finish_by = Some(Instant::now() + drain.saturating_sub(DRAIN_MARGIN));
                    Step::Continue
                }
                Some(new) = self.links_rx.recv() => self.on_resume(new).await,
                Some(mut f) = self.feedback.finished.recv() => {
                    let done_sent = f.done_sent.take();
                    self.session.on_turn_finished(f);
                    self.session.answer_when_free(done_sent).await.into()
                }
                Some(p) = self.feedback.partials.recv() => self.session.on_partial(p).await.into(),
                Some(c) = self.feedback.clues.recv() => self.session.on_clue(c).await.into(),
                Some(o) = self.feedback.overlaps.recv() => self.session.on_overlap_heard(o).await.into(),
                msg = next_message(&mut self.link) => self.on_message(msg).await,
                _ = tick.tick() => self.on_tick().await,
            };
            self.register();
            match step {
                Step::Continue => {}
                Step::HandedOver => return self.finish(None).await,
                Step::End(closing) => break closing,
                Step::Detach => {
                    if let Some(closing) = self.detach().await {
                        break closing;
                    }
                }
            }
        };
        self.finish(Some(closing)).await;
    }

    /// Once shutdown began: ends the call when it is quiet, detached, or out of time.
    async fn finish_on_shutdown(&mut self) -> Option<Closing> {
        let deadline = self.finish_by?;
        if self.session.busy() && self.link.is_some() && Instant::now() < deadline {
            return None;
        }
        let _ = self.session.end(EndReason::Shutdown).await;
        Some(Closing::Shutdown)
    }

    /// A resume: the new connection replaces whatever is attached (a half-open old
    /// connection may not have noticed it is dead).
    async fn on_resume(&mut self, new: Link) -> Step {
        if let Some(old) = self.link.take() {
            let close = self.codec.close(&Closing::ResumedElsewhere);
            // Reaped as the call goes on; aborted with the call.
            while self.closing_links.try_join_next().is_some() {}
            self.closing_links.spawn(old.close_with(Vec::new(), close));
        }
        self.outbox.attach(new.writer_tx.clone());
        self.link = Some(new);
        self.detached_at = None;
        self.session.on_resumed().await.into()
    }

    async fn on_message(&mut self, msg: Option<Result<Message, WsError>>) -> Step {
        let decoded = match msg {
            Some(Ok(Message::Text(text))) => match self.session.admit_text().await {
                Ok(true) => self.codec.decode_text(text.as_str()),
                Ok(false) => return Step::Continue,
                Err(ClientGone) => return Step::Detach,
            },
            Some(Ok(Message::Binary(bytes))) => self.codec.decode_binary(&bytes),
            Some(Ok(Message::Ping(p))) => return self.outbox.raw(Message::Pong(p)).await.into(),
            Some(Ok(Message::Pong(_) | Message::Frame(_))) => return Step::Continue,
            Some(Ok(Message::Close(_))) | None => return Step::Detach,
            Some(Err(WsError::Capacity(_))) => {
                let session = self.session.session_id().map(str::to_owned);
                tracing::info!(session, "frame too big; closing");
                let _ = self.session.end(EndReason::Error).await;
                return Step::End(Closing::TooBig);
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "socket read error");
                return Step::Detach;
            }
        };
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(fault) => return self.session.fault(fault).await.into(),
        };
        let step = match decoded.input {
            Some(input) => self.on_input(input).await,
            None => Step::Continue,
        };
        if !matches!(step, Step::Continue) {
            return step;
        }
        for reply in decoded.replies {
            if self.outbox.raw(reply).await.is_err() {
                return Step::Detach;
            }
        }
        Step::Continue
    }

    async fn on_input(&mut self, input: CallInput) -> Step {
        if self.session.session_id().is_some() {
            return self.session.on_input(input).await.into();
        }
        match input {
            CallInput::Resume {
                session_id,
                resume_token,
                token,
            } => {
                if let Err(fault) = self.authenticate_resume(token.as_deref()) {
                    return self.refuse(fault).await;
                }
                self.resume_elsewhere(&session_id, &resume_token).await
            }
            CallInput::Start(start) => {
                let admitted = self
                    .hub
                    .admission
                    .admit(
                        &start,
                        self.session.user().map(str::to_owned),
                        self.user_slot.take(),
                        self.call_permit.take(),
                        &self.hub.settings.limits,
                    )
                    .await;
                match admitted {
                    Ok(a) => {
                        self.session.set_user(a.user);
                        self.user_slot = a.slot;
                        self.call_permit = Some(a.permit);
                        self.session.on_input(CallInput::Start(start)).await.into()
                    }
                    Err(fault) => self.refuse(fault).await,
                }
            }
            other => self.session.on_input(other).await.into(),
        }
    }

    /// A token in `session.resume` authenticates this connection as one in `session.start`
    /// would: only when the upgrade request carried none, and only when tokens are checked.
    fn authenticate_resume(&mut self, token: Option<&str>) -> Result<(), Fault> {
        let verifier = &self.hub.admission.verifier;
        let Some(link) = self.link.as_mut() else {
            return Ok(());
        };
        if token.is_none() || link.user.is_some() || !verifier.enabled() {
            return Ok(());
        }
        let user = verifier.verify(token).map_err(|e| {
            tracing::info!(error = %e, "session.resume with an invalid token");
            Fault::Unauthorized(e)
        })?;
        link.user = Some(user);
        Ok(())
    }

    /// `session.resume` on a fresh connection: hand this link to that call, or refuse.
    async fn resume_elsewhere(&mut self, session_id: &str, resume_token: &str) -> Step {
        let Some(this) = self.link.take() else {
            return Step::HandedOver;
        };
        let auth_required = self.hub.admission.verifier.enabled();
        match self
            .hub
            .calls
            .hand_over(session_id, resume_token, auth_required, this)
        {
            Ok(()) => Step::HandedOver,
            Err(this) => {
                let user = this.user.clone();
                if let Some(target) = self
                    .relay_target(session_id, resume_token, user.as_deref())
                    .await
                {
                    return self.relay(*this, target).await;
                }
                tracing::info!(session_id, "resume refused");
                self.link = Some(*this);
                let fault = Fault::SessionNotFound(
                    "no call with this sessionId and resumeToken is waiting".into(),
                );
                self.refuse(fault).await
            }
        }
    }

    /// The node that holds call `session_id`, in cluster mode, when it is another live
    /// node and the resume's token and user are the call's.
    async fn relay_target(
        &mut self,
        session_id: &str,
        resume_token: &str,
        user: Option<&str>,
    ) -> Option<RelayTarget> {
        let cluster = self.hub.admission.cluster.as_ref()?;
        let verifier = &self.hub.admission.verifier;
        // With tokens on, only an authenticated connection is relayed.
        let user = if verifier.enabled() {
            Some(user?)
        } else {
            None
        };
        match cluster.owner_of(session_id, resume_token, user).await {
            Ok(owner) => owner.map(|owner| RelayTarget {
                address: owner.address,
                session_id: session_id.to_owned(),
                resume_token: resume_token.to_owned(),
                vouched: user.and_then(|u| verifier.vouch(u)),
            }),
            Err(e) => {
                tracing::warn!(session_id, error = %e, "cannot look the call up in the cluster");
                None
            }
        }
    }

    /// Relays `link` to the call's node until either side closes.
    async fn relay(&mut self, link: Link, target: RelayTarget) -> Step {
        match relay::connect(&target).await {
            Ok(owner) => {
                self.unstarted = None;
                tracing::info!(
                    session_id = target.session_id,
                    owner = target.address,
                    "resume relayed to the call's node"
                );
                relay::pump(link, owner).await;
                Step::HandedOver
            }
            Err(e) => {
                tracing::warn!(session_id = target.session_id, error = %e, "relaying the resume failed");
                self.link = Some(link);
                let fault = Fault::SessionNotFound(
                    "no call with this sessionId and resumeToken is waiting".into(),
                );
                self.refuse(fault).await
            }
        }
    }

    /// Refuses the connection with `fault` and a close; the call loop then ends.
    async fn refuse(&mut self, fault: Fault) -> Step {
        if let Some(this) = self.link.take() {
            let close = self.codec.close(&Closing::Refused(fault.clone()));
            let error = self.codec.encode(CallEvent::fault(fault));
            this.close_with(error, close).await;
        }
        Step::HandedOver
    }

    /// Closes a connection that neither started nor resumed a call within the deadline, so
    /// sockets that never start cannot hold a session and a writer task for long.
    async fn refuse_late_start(&mut self) -> Step {
        let ms = self.hub.settings.limits.start_timeout.as_millis();
        tracing::info!(ms, "no session.start or session.resume in time; closing");
        if let Some(this) = self.link.take() {
            let fault = Fault::BadMessage(format!(
                "no session.start or session.resume within {ms} ms of the upgrade"
            ));
            let error = self.codec.encode(CallEvent::fault(fault));
            this.close_with(error, self.codec.close(&Closing::NoStart))
                .await;
        }
        Step::HandedOver
    }

    async fn on_tick(&mut self) -> Step {
        if self.session.session_id().is_none() && Instant::now() >= self.start_by {
            return self.refuse_late_start().await;
        }
        let limits = &self.hub.settings.limits;
        if let Some(at) = self.detached_at {
            if at.elapsed() >= limits.resume_grace {
                let session = self.session.session_id();
                tracing::info!(session, "no resume within the grace period");
                let _ = self.session.end(EndReason::Timeout).await;
                return Step::End(Closing::Ended(""));
            }
        } else if self.session.is_idle() {
            let _ = self.session.end(EndReason::Idle).await;
            return Step::End(Closing::Ended(""));
        }
        if self
            .session
            .elapsed()
            .is_some_and(|d| d >= limits.max_call_duration)
        {
            let session = self.session.session_id();
            tracing::info!(session, "call reached its maximum duration");
            let _ = self.session.end(EndReason::Timeout).await;
            return Step::End(Closing::Ended("maximum call duration reached"));
        }
        self.session.on_tick();
        if self.link.is_some() && self.session.ack_paused_input().await.is_err() {
            return Step::Detach;
        }
        Step::Continue
    }

    /// Once the session has started, a new connection can find it.
    fn register(&mut self) {
        if self.registered.is_some() {
            return;
        }
        let (Some(id), Some(token)) = (self.session.session_id(), self.session.resume_token())
        else {
            return;
        };
        let call = Registered {
            resume_token: token.to_owned(),
            user: self.session.user().map(str::to_owned),
            links: self.links_tx.clone(),
        };
        self.hub.calls.insert(id.to_owned(), call);
        self.registered = Some(id.to_owned());
        self.unstarted = None;
    }

    /// The connection is gone: wait for a resume, or end a call that cannot be resumed.
    async fn detach(&mut self) -> Option<Closing> {
        if self.session.session_id().is_none() || self.call_cancel.is_cancelled() {
            // Nothing to resume (or the client stopped reading): the call is over.
            let _ = self.session.end(EndReason::Error).await;
            return Some(Closing::Ended(""));
        }
        if !self.codec.resumable() {
            // This protocol has no resume: its client ends a call by closing.
            let _ = self.session.end(EndReason::Client).await;
            return Some(Closing::Ended(""));
        }
        if self.detached_at.is_none() {
            let grace_s = self.hub.settings.limits.resume_grace.as_secs_f32();
            let session = self.session.session_id();
            tracing::info!(
                session,
                grace_s,
                "connection dropped; waiting for session.resume"
            );
            self.outbox.detach();
            self.link = None;
            self.session.on_detached().await;
            self.detached_at = Some(Instant::now());
        }
        None
    }

    /// Stops the call's work, forgets it, and closes an attached connection with `closing`.
    async fn finish(self, closing: Option<Closing>) {
        self.call_cancel.cancel();
        if let Some(id) = &self.registered {
            self.hub.calls.remove(id);
        }
        self.outbox.detach();
        let codec = self.codec.clone();
        let link = self.link;
        drop(self.session);
        drop(self.user_slot);
        drop(self.call_permit);
        if let (Some(link), Some(closing)) = (link, closing) {
            link.close_with(Vec::new(), codec.close(&closing)).await;
        }
    }
}

/// The next message of the attached connection; never resolves while detached.
async fn next_message(link: &mut Option<Link>) -> Option<Result<Message, WsError>> {
    match link.as_mut() {
        Some(l) => l.stream.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    //! Link teardown on tokio's paused clock.

    use super::*;
    use std::task::{Context, Poll};

    /// A peer that never reads and never writes: every send waits forever.
    struct Stuck;

    impl Stream for Stuck {
        type Item = Result<Message, WsError>;
        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Pending
        }
    }

    impl Sink<Message> for Stuck {
        type Error = WsError;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Pending
        }
        fn start_send(self: Pin<&mut Self>, _: Message) -> Result<(), WsError> {
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Pending
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Pending
        }
    }

    fn alive() -> usize {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    }

    #[tokio::test(start_paused = true)]
    async fn closing_a_link_to_a_stuck_peer_leaves_no_writer_running() {
        let baseline = alive();
        let link = Link::spawn(Stuck, None);
        // More than the writer queue holds: the close frame itself has to wait.
        for _ in 0..WRITER_QUEUE + 8 {
            let _ = link.writer_tx.try_send(Message::Text("x".into()));
        }
        tokio::task::yield_now().await;
        assert_eq!(alive(), baseline + 1, "the writer runs");
        link.close_with(Vec::new(), Message::Close(None)).await;
        tokio::task::yield_now().await;
        assert_eq!(alive(), baseline, "the stuck writer was stopped");
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_a_link_stops_its_writer() {
        let baseline = alive();
        let link = Link::spawn(Stuck, None);
        let _ = link.writer_tx.try_send(Message::Text("x".into()));
        tokio::task::yield_now().await;
        drop(link);
        tokio::task::yield_now().await;
        assert_eq!(alive(), baseline);
    }
}
