//! TEST DOUBLE for the client's unit tests, not the real server: a scripted callgate.v1
//! peer. It injects on demand what a real server only does by chance, so the client's own
//! logic (handshake, seq numbering, the ack window, event handling, audio collection,
//! reports) is tested against exact, repeatable behaviour: acks held back until the
//! `fast` window is full, an `error` event in the middle of a turn, a greeting that must
//! not be reported. The real server is tested end to end in `tests/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use super::replay::{MAX_UNACKED_CHUNKS, unacked};
use crate::protocol::{
    ClientMessage, DoneStatus, EndOfTurn, EndReason, EndRule, ErrorCode, ErrorEvent, Latency,
    Limits, ResponseStatus, ServerMessage, SessionStart, decode_input_frame, encode_output_frame,
    parse_client_message,
};

/// A fresh temporary folder for one test.
pub(crate) fn test_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("callgate-replay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `mono` as 16-bit PCM, the same signal on every channel.
pub(crate) fn write_wav(path: &Path, rate: u32, channels: u16, mono: &[f32]) {
    let samples: Vec<i16> = mono
        .iter()
        .flat_map(|&s| std::iter::repeat_n((s * 32767.0) as i16, channels as usize))
        .collect();
    crate::audio::wav::write_interleaved(path, &samples, rate, channels).unwrap();
}

/// What the scripted server saw on one call.
#[derive(Debug, Default)]
pub(crate) struct CallLog {
    pub(crate) start: Option<SessionStart>,
    pub(crate) subprotocol_offered: bool,
    pub(crate) chunks: u32,
    pub(crate) frames: u64,
    pub(crate) max_outstanding: u32,
    pub(crate) ended: bool,
    /// When each chunk arrived, with the frames received so far.
    pub(crate) arrivals: Vec<(Instant, u64)>,
}

type PeerSink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    Message,
>;

/// The scripted peer of one call, on an accepted TCP connection. It greets (turn 0),
/// acks only when 64 chunks are outstanding (to exercise the `fast` window), and once
/// `reply_after_ms` of input has arrived plays out turn 1: speech events, transcripts,
/// a response with text deltas, two kind-2 frames and `response.done`.
pub(crate) async fn scripted_call(
    stream: tokio::net::TcpStream,
    reply_after_ms: u64,
    reply_samples: usize,
) -> CallLog {
    let (ws, offered) = accept(stream).await;
    let (tx, mut rx) = ws.split();
    let Some(Ok(Message::Text(first))) = rx.next().await else {
        panic!("no session.start")
    };
    let ClientMessage::SessionStart(start) = parse_client_message(first.as_str()).unwrap() else {
        panic!("first message is not session.start: {first}")
    };
    let mut peer = Peer {
        tx,
        rate: start.input.sample_rate as u64,
        channels: start.input.channels as u64,
        reply_after_ms,
        reply_samples,
        acked: None,
        spoke: false,
        replied: false,
        log: CallLog {
            subprotocol_offered: offered,
            ..CallLog::default()
        },
    };
    peer.greet(start).await;
    while let Some(Ok(msg)) = rx.next().await {
        match msg {
            Message::Binary(b) => peer.on_chunk(&b).await,
            Message::Text(t) => {
                if let ClientMessage::SessionEnd = parse_client_message(t.as_str()).unwrap() {
                    peer.end().await;
                    break;
                }
            }
            _ => {}
        }
    }
    peer.log
}

/// Accepts the upgrade, answering subprotocol `callgate.v1` when it is offered; says
/// whether it was.
#[allow(clippy::result_large_err)] // accept_hdr_async's callback signature
async fn accept(
    stream: tokio::net::TcpStream,
) -> (
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    bool,
) {
    let mut offered = false;
    let ws = tokio_tungstenite::accept_hdr_async(stream, |req: &Request, mut resp: Response| {
        if let Some(p) = req.headers().get("Sec-WebSocket-Protocol") {
            offered = p
                .to_str()
                .unwrap()
                .split(',')
                .any(|p| p.trim() == "callgate.v1");
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", "callgate.v1".parse().unwrap());
        }
        Ok(resp)
    })
    .await
    .unwrap();
    (ws, offered)
}

/// One scripted call in progress.
struct Peer {
    tx: PeerSink,
    rate: u64,
    channels: u64,
    reply_after_ms: u64,
    reply_samples: usize,
    acked: Option<u32>,
    spoke: bool,
    replied: bool,
    log: CallLog,
}

impl Peer {
    async fn send(&mut self, m: ServerMessage) {
        self.tx.send(Message::text(m.to_json())).await.unwrap();
    }

    async fn send_audio(&mut self, seq: u32, turn: u32, first: bool, last: bool, pcm: &[i16]) {
        let frame = encode_output_frame(seq, turn, first, last, pcm);
        self.tx.send(Message::binary(frame)).await.unwrap();
    }

    /// `session.started`, then the greeting: printed by the client, not reported.
    async fn greet(&mut self, start: SessionStart) {
        self.send(ServerMessage::SessionStarted {
            session_id: "sess-1".into(),
            resume_token: "rt".into(),
            protocol: "callgate.v1".into(),
            input: start.input.clone(),
            output: start.output.clone(),
            limits: Limits::default(),
            voice: "espeak:en-us".into(),
        })
        .await;
        self.log.start = Some(start);
        self.send(ServerMessage::ResponseStarted {
            turn_id: 0,
            status: ResponseStatus::Thinking,
            eta_ms: None,
        })
        .await;
        self.send(ServerMessage::ResponseTextDelta {
            turn_id: 0,
            index: 0,
            delta: "Hello, welcome.".into(),
        })
        .await;
        self.send_audio(0, 0, true, true, &[7; 100]).await;
        self.send(done(0, "Hello, welcome.", Latency::default()))
            .await;
    }

    /// One input chunk: checked and counted; acked when the window is full (or after the
    /// reply); speech starts after 100 ms of input, and turn 1 plays out after
    /// `reply_after_ms`.
    async fn on_chunk(&mut self, frame: &[u8]) {
        let c = decode_input_frame(frame).unwrap();
        assert_eq!(c.seq, self.log.chunks, "seq must count from 0 without gaps");
        assert_eq!(c.samples.len() as u64 % self.channels, 0);
        self.log.chunks += 1;
        self.log.frames += c.samples.len() as u64 / self.channels;
        self.log.arrivals.push((Instant::now(), self.log.frames));
        let outstanding = unacked(self.log.chunks, self.acked);
        self.log.max_outstanding = self.log.max_outstanding.max(outstanding);
        if outstanding >= MAX_UNACKED_CHUNKS || self.replied {
            self.acked = Some(c.seq);
            self.send(ServerMessage::AudioAck { seq: c.seq }).await;
        }
        let got_ms = self.log.frames * 1000 / self.rate;
        if !self.spoke && got_ms >= 100 {
            self.spoke = true;
            self.send(ServerMessage::InputSpeechStarted {
                turn_id: 1,
                audio_ms: 100,
            })
            .await;
            self.send(transcript("I have", false, None)).await;
        }
        if !self.replied && got_ms >= self.reply_after_ms {
            self.replied = true;
            self.answer().await;
        }
    }

    /// Turn 1 end to end, with a recoverable error in the middle.
    async fn answer(&mut self) {
        let end = self.reply_after_ms;
        for m in [
            ServerMessage::InputSpeechStopped {
                turn_id: 1,
                audio_ms: end,
                end_of_turn: EndOfTurn {
                    rule: EndRule::Complete,
                    silence_ms: 300,
                    score: Some(0.8),
                },
            },
            transcript("I have five years.", true, Some((100, end))),
            ServerMessage::ResponseStarted {
                turn_id: 1,
                status: ResponseStatus::Thinking,
                eta_ms: None,
            },
            ServerMessage::ResponseTextDelta {
                turn_id: 1,
                index: 0,
                delta: "Great. ".into(),
            },
            ServerMessage::ResponseTextDelta {
                turn_id: 1,
                index: 1,
                delta: "Why Rust?".into(),
            },
            ErrorEvent::new(ErrorCode::TtsError, "scripted hiccup", true)
                .turn(1)
                .into(),
        ] {
            self.send(m).await;
        }
        let half = self.reply_samples / 2;
        let rest = self.reply_samples - half;
        self.send_audio(1, 1, true, false, &vec![1000; half]).await;
        self.send_audio(2, 1, false, true, &vec![-1000; rest]).await;
        let latency = Latency {
            endpoint_ms: Some(300),
            end_of_turn: None,
            asr_ms: Some(90),
            llm_first_token_ms: Some(5),
            tts_first_audio_ms: Some(3),
            first_audio_ms: Some(110),
            total_ms: Some(150),
        };
        self.send(done(1, "Great. Why Rust?", latency)).await;
    }

    /// `session.end` came: `session.ended`, then a close frame.
    async fn end(&mut self) {
        self.log.ended = true;
        self.send(ServerMessage::SessionEnded {
            session_id: "sess-1".into(),
            reason: EndReason::Client,
            turns: 1,
            duration_ms: 1,
        })
        .await;
        let _ = self.tx.close().await;
    }
}

fn transcript(text: &str, is_final: bool, span: Option<(u64, u64)>) -> ServerMessage {
    ServerMessage::Transcript {
        turn_id: 1,
        text: text.into(),
        is_final,
        start_ms: span.map(|s| s.0),
        end_ms: span.map(|s| s.1),
    }
}

fn done(turn_id: u32, text: &str, latency: Latency) -> ServerMessage {
    ServerMessage::ResponseDone {
        turn_id,
        status: DoneStatus::Completed,
        text: text.into(),
        heard_text: text.into(),
        latency,
        usage: None,
    }
}
