//! Client side of callgate.v1: a reusable call connection ([`CallClient`]) for the CLI
//! test harness ([`replay`]), the live terminal client ([`mic`]) and the turn-latency
//! benchmark ([`bench`], which runs replay's per-file call concurrently).
//!
//! A [`CallClient`] is an open call: the WebSocket is connected with subprotocol
//! `callgate.v1`, `session.start` was sent and `session.started` received. It is two
//! independent halves, public fields so a `tokio::select!` loop can borrow both at once:
//!
//! - [`CallSender`]: input audio as binary frames with the `seq` counted for you, and any
//!   [`ClientMessage`].
//! - [`CallReceiver`]: every server frame, parsed, stamped with the [`Instant`] it was read
//!   off the socket by a background task (so timings do not depend on when the caller gets
//!   round to polling).
//!
//! [`open`] gives the two halves before anything is sent, for a caller that starts
//! differently (the integration tests' client, which also sends hostile frames through
//! the raw sends). `testing` (unit tests only) holds a scripted server, a test double.
//!
//! The only arrow from here into `server` is [`crate::server::spawn`], the in-process
//! gateway of `bench --spawn`.

pub mod bench;
pub mod mic;
pub mod replay;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::protocol::{
    ClientMessage, ENCODING_PCM_S16LE, ErrorEvent, InputFormat, MAX_SAMPLES_PER_FRAME, OutputChunk,
    OutputFormat, PROTOCOL_NAME, ServerMessage, SessionStart, Transport, TurnDetection, TurnMode,
    TurnRecord, decode_output_frame, encode_input_frame, parse_server_message,
};

/// How long [`CallClient::connect`] waits for the upgrade plus `session.started`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Input frames kept for a resend until acknowledged: a minute of 20 ms chunks. The server
/// acknowledges at least every 500 ms, so only a server that stopped acknowledging (and
/// will then not be able to resume without a gap) reaches it.
pub const RESEND_LIMIT: usize = 3000;

/// Frames the reader task may queue before it stops reading (back-pressure on the socket).
const INCOMING_QUEUE: usize = 1024;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What can go wrong on the client side of a call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL could not be turned into a WebSocket request.
    #[error("bad URL {url:?}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The WebSocket connection or handshake failed, or a send failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// The server answered `session.start` (or the connection) with an `error`.
    #[error("server refused the session: {} {}", .0.code, .0.message)]
    Rejected(ErrorEvent),
    /// The server sent something callgate.v1 does not allow (unparseable JSON, a bad audio
    /// frame, an unexpected message). Not fatal: the connection goes on.
    #[error("protocol violation by the server: {0}")]
    Protocol(String),
    /// The connection is closed. `code`/`reason` come from the server's close frame, if any.
    #[error("connection closed{}", match .code { Some(c) => format!(" (code {c}: {reason})"), None => String::new() })]
    Closed {
        /// WebSocket close code, `None` when the socket dropped without a close frame.
        code: Option<u16>,
        /// Close reason text.
        reason: String,
    },
    /// Nothing arrived in time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    /// A local file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl ClientError {
    /// Whether the call is over after this error ([`ClientError::Protocol`] is the only
    /// error a receiver reports and then keeps going).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Self::Protocol(_))
    }

    /// The HTTP status with which the server refused the upgrade (401 for a bad token,
    /// 403 for a foreign origin), when that is what went wrong.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::WebSocket(tungstenite::Error::Http(response)) => Some(response.status().as_u16()),
            _ => None,
        }
    }

    /// A local file's problem.
    pub(crate) fn file(path: &Path, e: impl std::fmt::Display) -> Self {
        Self::File {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

/// One thing the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A JSON message.
    Event(ServerMessage),
    /// A kind-2 binary audio frame.
    Audio(OutputChunk),
}

/// An [`Incoming`] with the instant it was read off the socket.
#[derive(Debug, Clone)]
pub struct Received {
    /// When the reader task got the frame.
    pub at: Instant,
    /// The frame.
    pub msg: Incoming,
}

/// What `session.started` said: the call's id and the formats in effect.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    /// Server-assigned session id.
    pub session_id: String,
    /// Token for `session.resume`.
    pub resume_token: String,
    /// Input format the server will decode.
    pub input: InputFormat,
    /// Output format the server will send (its `sample_rate` is what kind-2 frames carry).
    pub output: OutputFormat,
    /// Largest frame the server accepts.
    pub max_frame_bytes: usize,
    /// The interviewer's voice.
    pub voice: String,
}

/// What `session.ended` said.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionEnded {
    /// The session that ended.
    pub session_id: String,
    /// Who ended it (`client` after [`CallClient::end`]).
    pub reason: crate::protocol::EndReason,
    /// User turns taken.
    pub turns: u32,
    /// Call length according to the server.
    pub duration_ms: u64,
}

/// An open call: both halves plus what `session.started` said.
pub struct CallClient {
    /// Sends audio and messages.
    pub tx: CallSender,
    /// Yields what the server sends.
    pub rx: CallReceiver,
    /// The `session.started` contents.
    pub session: SessionInfo,
}

impl CallClient {
    /// Connects to `url` (`ws://host:port/v1/call`, query parameters such as
    /// `access_token` allowed), offering subprotocol `callgate.v1`, sends `session.start`
    /// and waits for `session.started`, with [`DEFAULT_CONNECT_TIMEOUT`].
    pub async fn connect(url: &str, start: &SessionStart) -> Result<Self, ClientError> {
        Self::connect_with_timeout(url, start, DEFAULT_CONNECT_TIMEOUT).await
    }

    /// [`CallClient::connect`] with an explicit limit on handshake plus `session.started`.
    pub async fn connect_with_timeout(
        url: &str,
        start: &SessionStart,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let text = serde_json::to_string(&ClientMessage::SessionStart(start.clone()))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let open = async {
            let (mut tx, mut rx) = open(url, &[]).await?;
            tx.send_raw_text(&text).await?;
            let started = first_answer(&mut rx, |m| match m {
                ServerMessage::SessionStarted {
                    session_id,
                    resume_token,
                    input,
                    output,
                    limits,
                    voice,
                    ..
                } => Some(SessionInfo {
                    session_id,
                    resume_token,
                    input,
                    output,
                    max_frame_bytes: limits.max_frame_bytes,
                    voice,
                }),
                _ => None,
            })
            .await?;
            Ok(CallClient {
                tx,
                rx,
                session: started,
            })
        };
        tokio::time::timeout(timeout, open)
            .await
            .map_err(|_| ClientError::Timeout(timeout, "session.started"))?
    }

    /// Takes the call over on a new connection after the old one dropped: sends
    /// `session.resume` (to `url`, which carries any `access_token` as before), waits for
    /// `session.resumed`, then resends every input frame from its `nextSeq` on, so the
    /// server's input has nothing lost and nothing doubled. The old halves are replaced.
    ///
    /// A refusal (`SESSION_NOT_FOUND`: the grace period is over, or the call is gone) is
    /// [`ClientError::Rejected`]; the frames the server asks for but this sender no longer
    /// holds are a [`ClientError::Protocol`].
    pub async fn resume(&mut self, url: &str, timeout: Duration) -> Result<Resumed, ClientError> {
        let msg = ClientMessage::SessionResume {
            session_id: self.session.session_id.clone(),
            resume_token: self.session.resume_token.clone(),
            token: None,
        };
        let open = async {
            let (mut tx, mut rx) = open(url, &[]).await?;
            tx.send(&msg).await?;
            let resumed = first_answer(&mut rx, |m| match m {
                ServerMessage::SessionResumed {
                    next_seq, turns, ..
                } => Some(Resumed {
                    next_seq,
                    turns,
                    resent: 0,
                }),
                _ => None,
            })
            .await?;
            Ok::<_, ClientError>((tx, rx, resumed))
        };
        let (new_tx, rx, mut resumed) = tokio::time::timeout(timeout, open)
            .await
            .map_err(|_| ClientError::Timeout(timeout, "session.resumed"))??;
        // The new socket; the frames kept for a resend and the seq count stay.
        self.tx.sink = new_tx.sink;
        self.rx = rx;
        resumed.resent = self.tx.resend_from(resumed.next_seq).await?;
        Ok(resumed)
    }

    /// Sends `session.end` and waits up to `timeout` for `session.ended`, then closes the
    /// socket. Returns what `session.ended` said and every other frame that arrived in the
    /// meantime (late responses, acks), in order, so the caller can still account for them.
    pub async fn end(
        mut self,
        timeout: Duration,
    ) -> (Result<SessionEnded, ClientError>, Vec<Received>) {
        let mut others = Vec::new();
        let result = async {
            self.tx.send(&ClientMessage::SessionEnd).await?;
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let r = tokio::time::timeout_at(deadline, self.rx.recv())
                    .await
                    .map_err(|_| ClientError::Timeout(timeout, "session.ended"))?;
                let r = match r {
                    Ok(r) => r,
                    Err(e) if !e.is_fatal() => {
                        tracing::warn!("{e}");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                match r.msg {
                    Incoming::Event(ServerMessage::SessionEnded {
                        session_id,
                        reason,
                        turns,
                        duration_ms,
                    }) => {
                        return Ok(SessionEnded {
                            session_id,
                            reason,
                            turns,
                            duration_ms,
                        });
                    }
                    _ => others.push(r),
                }
            }
        }
        .await;
        self.tx.close().await;
        (result, others)
    }
}

/// Opens the WebSocket with subprotocol `callgate.v1` and these extra request headers
/// (e.g. `Authorization`, `Origin`); nothing is sent yet. [`CallClient::connect`] is this
/// plus `session.start`; the halves alone serve a caller that sends something else
/// first (`session.resume`, or the tests' hostile input). A refused upgrade is a
/// [`ClientError::WebSocket`] whose [`ClientError::http_status`] says why.
pub async fn open(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(CallSender, CallReceiver), ClientError> {
    let bad = |reason: String| ClientError::BadUrl {
        url: url.to_owned(),
        reason,
    };
    let mut request = url.into_client_request().map_err(|e| bad(e.to_string()))?;
    request.headers_mut().insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(PROTOCOL_NAME),
    );
    for &(name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let value = HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
        request.headers_mut().insert(name, value);
    }
    let (ws, _response) = tokio_tungstenite::connect_async(request).await?;
    let (sink, stream) = ws.split();
    Ok((CallSender::new(sink), CallReceiver::spawn(stream)))
}

/// The `session.start` of a call with server-side turn detection and binary output
/// audio, the way `replay`, `bench` and `mic` open theirs: input at `rate` Hz with
/// `channels`, output at `output_rate`; `silence_ms` asks for `server_vad` with that fixed
/// silence, `None` leaves the server's default (`smart`).
pub fn server_vad_start(
    (rate, channels): (u32, u16),
    output_rate: u32,
    persona: Option<String>,
    silence_ms: Option<u32>,
) -> SessionStart {
    SessionStart {
        token: None,
        persona,
        context: Default::default(),
        input: InputFormat {
            sample_rate: rate,
            channels,
            encoding: ENCODING_PCM_S16LE.to_owned(),
        },
        output: OutputFormat {
            sample_rate: output_rate,
            transport: Transport::Binary,
            ..OutputFormat::default()
        },
        turn_detection: match silence_ms {
            Some(ms) => TurnDetection {
                mode: TurnMode::ServerVad,
                silence_ms: Some(ms),
                ..TurnDetection::default()
            },
            None => TurnDetection::default(),
        },
    }
}

/// Turn-detection modes a client can ask for by name (the server-ended ones of
/// [`TurnMode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TurnModeName {
    /// Silence plus whether the answer sounds finished (a newer server's default).
    Smart,
    /// A fixed `silenceMs` of silence ends the turn.
    #[value(name = "server_vad", alias = "server-vad")]
    ServerVad,
}

/// The `session.start.turnDetection` fields a client sets on top of [`server_vad_start`]'s
/// (and a report shows as asked). A field left `None` keeps the start's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnTaking {
    /// `mode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<TurnModeName>,
    /// `silenceMs`: the fixed window of `server_vad`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silence_ms: Option<u32>,
    /// `minSilenceMs`: the least silence `smart` ends a turn after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_silence_ms: Option<u32>,
    /// `maxSilenceMs`: the most silence `smart` waits before ending a turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_silence_ms: Option<u32>,
}

impl From<TurnModeName> for TurnMode {
    fn from(m: TurnModeName) -> Self {
        match m {
            TurnModeName::Smart => TurnMode::Smart,
            TurnModeName::ServerVad => TurnMode::ServerVad,
        }
    }
}

impl TurnTaking {
    /// `base` with the fields these settings give.
    pub fn apply(&self, base: TurnDetection) -> TurnDetection {
        TurnDetection {
            mode: self.mode.map_or(base.mode, TurnMode::from),
            silence_ms: self.silence_ms.or(base.silence_ms),
            min_silence_ms: self.min_silence_ms.or(base.min_silence_ms),
            max_silence_ms: self.max_silence_ms.or(base.max_silence_ms),
        }
    }
}

/// Waits for the server's answer to `session.start`/`session.resume`: what `accept` takes,
/// or the `error` that refused it. Anything else before it is logged and skipped.
async fn first_answer<T>(
    rx: &mut CallReceiver,
    accept: impl Fn(ServerMessage) -> Option<T>,
) -> Result<T, ClientError> {
    loop {
        match rx.recv().await?.msg {
            Incoming::Event(ServerMessage::Error(e)) => return Err(ClientError::Rejected(e)),
            Incoming::Event(m) => {
                if let Some(v) = accept(m) {
                    return Ok(v);
                }
                tracing::warn!("ignoring a message before the session's answer");
            }
            Incoming::Audio(_) => tracing::warn!("ignoring audio before the session's answer"),
        }
    }
}

/// What `session.resumed` said, and how many input frames were sent again.
#[derive(Debug, Clone, PartialEq)]
pub struct Resumed {
    /// The first input `seq` the server had not received.
    pub next_seq: u32,
    /// The conversation so far, as the server recorded it.
    pub turns: Vec<TurnRecord>,
    /// Input frames resent from `next_seq` on.
    pub resent: usize,
}

/// The sending half of a call. It keeps every input frame the server has not acknowledged
/// yet (at most [`RESEND_LIMIT`]), so [`CallClient::resume`] can send them again.
pub struct CallSender {
    sink: SplitSink<Ws, Message>,
    next_seq: u32,
    /// Sent and not yet acknowledged: `(seq, encoded frame)`, oldest first.
    unacked: VecDeque<(u32, Bytes)>,
}

impl CallSender {
    fn new(sink: SplitSink<Ws, Message>) -> Self {
        Self {
            sink,
            next_seq: 0,
            unacked: VecDeque::new(),
        }
    }

    /// The `seq` the next audio frame will carry (= number of frames sent so far).
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Sends interleaved s16 samples (at the session's input rate and channels) as binary
    /// input frames, split so no frame exceeds the protocol's limit; returns the `seq` of the
    /// last frame sent. An empty slice sends nothing (the server rejects empty chunks) and
    /// returns `None`.
    pub async fn send_audio(&mut self, samples: &[i16]) -> Result<Option<u32>, ClientError> {
        let mut last = None;
        // Even split point so a stereo sample pair never straddles two frames.
        let max = MAX_SAMPLES_PER_FRAME & !1;
        for part in samples.chunks(max) {
            let seq = self.next_seq;
            let frame = Bytes::from(encode_input_frame(seq, part));
            if self.unacked.len() >= RESEND_LIMIT {
                self.unacked.pop_front();
            }
            self.unacked.push_back((seq, frame.clone()));
            // Counted as sent before the send: a frame lost with a dropping socket is resent.
            self.next_seq += 1;
            self.sink.send(Message::binary(frame)).await?;
            last = Some(seq);
        }
        Ok(last)
    }

    /// The server acknowledged every frame up to `seq` (`audio.ack`): they need not be
    /// kept for a resend any more.
    pub fn acknowledged(&mut self, seq: u32) {
        while self.unacked.front().is_some_and(|&(s, _)| s <= seq) {
            self.unacked.pop_front();
        }
    }

    /// Sends again, in order, every kept frame from `next_seq` on; returns how many.
    async fn resend_from(&mut self, next_seq: u32) -> Result<usize, ClientError> {
        if next_seq > self.next_seq {
            return Err(ClientError::Protocol(format!(
                "session.resumed asks for seq {next_seq}, but only {} frames were sent",
                self.next_seq
            )));
        }
        if next_seq > 0 {
            self.acknowledged(next_seq - 1);
        }
        let held_from = self.unacked.front().map_or(self.next_seq, |&(s, _)| s);
        if next_seq < held_from {
            return Err(ClientError::Protocol(format!(
                "session.resumed asks for seq {next_seq}, but frames before {held_from} are no longer held"
            )));
        }
        for (_, frame) in &self.unacked {
            self.sink.send(Message::binary(frame.clone())).await?;
        }
        Ok(self.unacked.len())
    }

    /// Sends one JSON message as a text frame.
    pub async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        let text = serde_json::to_string(msg).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.sink.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends a text frame exactly as given, valid JSON or not: for a test that feeds the
    /// server hostile input. Use [`CallSender::send`] for real messages.
    pub async fn send_raw_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.sink.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends a binary frame exactly as given, outside the `seq` count and the resend
    /// buffer: for a test that crafts its own frames (bad headers, chosen `seq` values,
    /// oversized frames). Use [`CallSender::send_audio`] for real audio.
    pub async fn send_raw_binary(&mut self, frame: Vec<u8>) -> Result<(), ClientError> {
        self.sink.send(Message::binary(frame)).await?;
        Ok(())
    }

    /// Sends a normal close frame and flushes; errors are ignored (the peer may be gone).
    pub async fn close(&mut self) {
        let _ = self.sink.close().await;
    }
}

/// The receiving half of a call. Dropping it stops the reader task.
pub struct CallReceiver {
    rx: mpsc::Receiver<Result<Received, ClientError>>,
    task: JoinHandle<()>,
    closed: Option<(Option<u16>, String)>,
}

impl CallReceiver {
    fn spawn(stream: SplitStream<Ws>) -> Self {
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        let task = tokio::spawn(read_loop(stream, tx));
        Self {
            rx,
            task,
            closed: None,
        }
    }

    /// The next frame from the server. Cancel-safe (usable in `tokio::select!`).
    ///
    /// `Err(ClientError::Protocol)` reports a frame the server should not have sent and is
    /// not the end: call again. Any other error means the connection is over, and every
    /// later call returns [`ClientError::Closed`] again.
    pub async fn recv(&mut self) -> Result<Received, ClientError> {
        if let Some((code, reason)) = &self.closed {
            return Err(ClientError::Closed {
                code: *code,
                reason: reason.clone(),
            });
        }
        match self.rx.recv().await {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => {
                if let ClientError::Closed { code, reason } = &e {
                    self.closed = Some((*code, reason.clone()));
                } else if e.is_fatal() {
                    self.closed = Some((None, e.to_string()));
                }
                Err(e)
            }
            None => {
                self.closed = Some((None, String::new()));
                Err(ClientError::Closed {
                    code: None,
                    reason: String::new(),
                })
            }
        }
    }
}

impl Drop for CallReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads frames until the socket ends; pings are answered by tungstenite itself (it queues
/// the pong and flushes it on the next read).
async fn read_loop(mut stream: SplitStream<Ws>, tx: mpsc::Sender<Result<Received, ClientError>>) {
    while let Some(frame) = stream.next().await {
        let at = Instant::now();
        let item = match frame {
            Ok(Message::Text(text)) => parse_server_message(text.as_str())
                .map(|m| Received {
                    at,
                    msg: Incoming::Event(m),
                })
                .map_err(|e| ClientError::Protocol(format!("{e}: {}", clip(text.as_str())))),
            Ok(Message::Binary(bytes)) => decode_output_frame(&bytes)
                .map(|c| Received {
                    at,
                    msg: Incoming::Audio(c),
                })
                .map_err(|e| ClientError::Protocol(format!("bad output audio frame: {e}"))),
            Ok(Message::Close(frame)) => {
                let (code, reason) = match frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.to_string()),
                    None => (None, String::new()),
                };
                let _ = tx.send(Err(ClientError::Closed { code, reason })).await;
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                let _ = tx.send(Err(ClientError::WebSocket(e))).await;
                return;
            }
        };
        if tx.send(item).await.is_err() {
            return;
        }
    }
    let _ = tx
        .send(Err(ClientError::Closed {
            code: None,
            reason: String::new(),
        }))
        .await;
}

fn clip(text: &str) -> &str {
    match text.char_indices().nth(200) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_taking_adds_only_the_fields_given() {
        let start = server_vad_start((16000, 1), 24000, None, Some(700));
        let text = |t: &TurnTaking| {
            let start = SessionStart {
                turn_detection: t.apply(start.turn_detection),
                ..start.clone()
            };
            serde_json::to_string(&ClientMessage::SessionStart(start)).unwrap()
        };
        let v: serde_json::Value = serde_json::from_str(&text(&TurnTaking::default())).unwrap();
        assert_eq!(v["type"], "session.start");
        assert_eq!(
            v["turnDetection"],
            serde_json::json!({"mode": "server_vad", "silenceMs": 700})
        );
        let smart = TurnTaking {
            mode: Some(TurnModeName::Smart),
            silence_ms: None,
            min_silence_ms: Some(250),
            max_silence_ms: Some(2500),
        };
        let v: serde_json::Value = serde_json::from_str(&text(&smart)).unwrap();
        assert_eq!(
            v["turnDetection"],
            serde_json::json!({"mode": "smart", "silenceMs": 700, "minSilenceMs": 250, "maxSilenceMs": 2500})
        );
        // Everything else of the typed start is kept.
        assert_eq!(v["input"]["sampleRate"], 16000);
    }
}
