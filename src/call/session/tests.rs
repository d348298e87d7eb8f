//! The call's timing rules on tokio's paused clock: a whole call (driver + session + turn
//! tasks) over a pair of channels instead of a socket, with the scripted interviewer. No
//! real seconds are spent waiting.
//!
//! Two test doubles, for one reason: on a paused clock, virtual time jumps to the next
//! timer whenever every task waits, so a real whisper decode or espeak-ng synthesis on its
//! own thread would let the call's timers race ahead of it (a greeting "took" 300 s and the
//! call went idle). [`InstantTranscriber`] and [`InstantVoice`] answer at once; these tests
//! are about the timers, and both engines are tested for real in tests/ end to end.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{Sink, Stream};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::{CancellationToken, PollSender};

use crate::asr::pool::AsrPool;
use crate::asr::{AsrError, DecodeOptions, Transcriber, Transcription};
use crate::call::admission::{Admission, Open};
use crate::call::driver::{CallHub, serve_socket};
use crate::call::{CallSettings, Engines, LlmTimeouts};
use crate::protocol::{
    DoneStatus, EndReason, ServerMessage, decode_output_frame, encode_input_frame,
    parse_server_message,
};
use crate::tts::{Speech, Synthesizer, TtsError, Urgency};

/// Hears, at once, how much audio it was given: "1230 ms", or the words a test sets (see
/// the module docs for why).
struct InstantTranscriber {
    words: Option<&'static str>,
}

impl Transcriber for InstantTranscriber {
    fn transcribe(
        &self,
        audio: &[f32],
        _options: &DecodeOptions,
        cancel: &CancellationToken,
    ) -> Result<Transcription, AsrError> {
        if cancel.is_cancelled() {
            return Err(AsrError::Cancelled);
        }
        let text = match self.words {
            Some(w) => w.to_owned(),
            None => format!("{} ms", audio.len() / 16),
        };
        Ok(Transcription {
            text,
            segments: Vec::new(),
        })
    }

    fn name(&self) -> &'static str {
        "instant"
    }
}

/// Speaks at once, on the calling task: 150 ms of a 300 Hz tone per word, at 16 kHz.
struct InstantVoice;

impl Synthesizer for InstantVoice {
    fn synthesize(
        &self,
        text: String,
        _cancel: CancellationToken,
        _urgency: Urgency,
    ) -> BoxFuture<'static, Result<Speech, TtsError>> {
        let samples = 16 * 150 * text.split_whitespace().count();
        let tone = (0..samples)
            .map(|i| ((i as f32 * 300.0 / 16_000.0 * std::f32::consts::TAU).sin() * 8000.0) as i16)
            .collect();
        Box::pin(std::future::ready(Ok(Speech {
            samples: tone,
            sample_rate: 16_000,
        })))
    }

    fn name(&self) -> &'static str {
        "instant"
    }

    fn voice(&self) -> String {
        "instant".into()
    }
}

/// One half of a socket made of channels.
struct ChannelSocket {
    incoming: mpsc::Receiver<Result<Message, WsError>>,
    outgoing: PollSender<Message>,
}

impl Stream for ChannelSocket {
    type Item = Result<Message, WsError>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.incoming.poll_recv(cx)
    }
}

impl Sink<Message> for ChannelSocket {
    type Error = tokio_util::sync::PollSendError<Message>;
    fn poll_ready(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::pin::Pin::new(&mut self.outgoing).poll_ready(cx)
    }
    fn start_send(mut self: std::pin::Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        std::pin::Pin::new(&mut self.outgoing).start_send(item)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::pin::Pin::new(&mut self.outgoing).poll_flush(cx)
    }
    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::pin::Pin::new(&mut self.outgoing).poll_close(cx)
    }
}

/// What the client saw.
#[derive(Debug)]
enum Got {
    Event(ServerMessage),
    Audio { turn: u32 },
    Closed(String),
}

/// The client end of one connection to a call.
struct Client {
    to_server: Option<mpsc::Sender<Result<Message, WsError>>>,
    from_server: mpsc::Receiver<Message>,
    seq: u32,
}

async fn hub(settings: CallSettings) -> Arc<CallHub> {
    hub_hearing(settings, None).await
}

/// A hub whose transcriber hears `words` in every decode (`None`: the audio's length).
async fn hub_hearing(settings: CallSettings, words: Option<&'static str>) -> Arc<CallHub> {
    hub_of(settings, words, crate::llm::PersonaSet::builtin())
}

/// Hears `words`, after `real_delay` of wall-clock time: on the paused clock the call's
/// timers run on meanwhile, as they do when whisper is slow on a busy machine.
struct SlowTranscriber {
    words: &'static str,
    real_delay: Duration,
}

impl Transcriber for SlowTranscriber {
    fn transcribe(
        &self,
        _audio: &[f32],
        _options: &DecodeOptions,
        _cancel: &CancellationToken,
    ) -> Result<Transcription, AsrError> {
        std::thread::sleep(self.real_delay);
        Ok(Transcription {
            text: self.words.to_owned(),
            segments: Vec::new(),
        })
    }

    fn name(&self) -> &'static str {
        "slow"
    }
}

/// As [`hub_hearing`], with `persona` in place of the built-in one with its id.
async fn hub_with_persona(
    persona: crate::llm::Persona,
    words: Option<&'static str>,
) -> Arc<CallHub> {
    let mut personas = crate::llm::PersonaSet::builtin();
    personas.insert(persona);
    hub_of(settings(), words, personas)
}

fn hub_of(
    settings: CallSettings,
    words: Option<&'static str>,
    personas: crate::llm::PersonaSet,
) -> Arc<CallHub> {
    hub_transcribing(settings, Arc::new(InstantTranscriber { words }), personas)
}

fn hub_transcribing(
    settings: CallSettings,
    transcriber: Arc<dyn Transcriber>,
    personas: crate::llm::PersonaSet,
) -> Arc<CallHub> {
    let engines = Engines {
        asr: AsrPool::new(transcriber, 1),
        decode: DecodeOptions::default(),
        llm: Arc::new(crate::llm::ScriptedInterviewer::new()),
        tts: Arc::new(InstantVoice),
        persona_voices: Default::default(),
        personas,
        metrics: Arc::default(),
        llm_timeouts: LlmTimeouts::default(),
        vad: crate::audio::vad::SpeechDetector::Energy,
        turn_model: None,
        after_call: Default::default(),
    };
    let admission = Admission::new(Arc::new(Open), settings.limits.max_calls, None);
    CallHub::new(Arc::new(engines), settings, admission)
}

fn settings() -> CallSettings {
    CallSettings {
        calls_dir: None,
        ..CallSettings::default()
    }
}

impl Client {
    /// A new connection to `hub`, served on its own task.
    fn connect(hub: &Arc<CallHub>) -> Self {
        let (to_server, incoming) = mpsc::channel(64);
        let (outgoing, from_server) = mpsc::channel(1024);
        let socket = ChannelSocket {
            incoming,
            outgoing: PollSender::new(outgoing),
        };
        tokio::spawn(serve_socket(
            socket,
            hub.clone(),
            CancellationToken::new(),
            None,
            None,
        ));
        Self {
            to_server: Some(to_server),
            from_server,
            seq: 0,
        }
    }

    async fn send(&self, msg: Message) {
        if let Some(tx) = &self.to_server {
            tx.send(Ok(msg)).await.expect("call is reading");
        }
    }

    async fn send_json(&self, v: serde_json::Value) {
        self.send(Message::text(v.to_string())).await;
    }

    /// Opens a call at 16 kHz and waits for `session.started`.
    async fn start(hub: &Arc<CallHub>) -> (Self, String, String) {
        Self::start_with(hub, json!({})).await
    }

    /// As [`Self::start`], with this `turnDetection` (`{}`: the server's default).
    async fn start_with(hub: &Arc<CallHub>, turns: serde_json::Value) -> (Self, String, String) {
        let mut c = Self::connect(hub);
        c.send_json(json!({"type":"session.start","input":{"sampleRate":16000},
            "turnDetection":turns}))
            .await;
        let started = c
            .until(|g| matches!(g, Got::Event(ServerMessage::SessionStarted { .. })))
            .await;
        match started.last() {
            Some(Got::Event(ServerMessage::SessionStarted {
                session_id,
                resume_token,
                ..
            })) => (c, session_id.clone(), resume_token.clone()),
            other => panic!("no session.started: {other:?}"),
        }
    }

    /// A started call whose greeting has been answered in full.
    async fn greeted(hub: &Arc<CallHub>) -> Self {
        Self::greeted_with(hub, json!({})).await
    }

    /// As [`Self::greeted`], with this `turnDetection`.
    async fn greeted_with(hub: &Arc<CallHub>, turns: serde_json::Value) -> Self {
        let (mut c, _, _) = Self::start_with(hub, turns).await;
        c.until(is_done).await;
        c
    }

    async fn next(&mut self) -> Got {
        match self.from_server.recv().await {
            Some(Message::Text(t)) => Got::Event(parse_server_message(t.as_str()).expect("valid")),
            Some(Message::Binary(b)) => Got::Audio {
                turn: decode_output_frame(&b).expect("frame").turn,
            },
            Some(Message::Close(frame)) => {
                Got::Closed(frame.map(|f| f.reason.to_string()).unwrap_or_default())
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => Got::Closed(String::new()),
        }
    }

    /// Everything up to and including the first message matching `want` (virtual 20 min
    /// at most).
    async fn until(&mut self, want: impl Fn(&Got) -> bool) -> Vec<Got> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(1200);
        loop {
            let got = tokio::time::timeout_at(deadline, self.next())
                .await
                .unwrap_or_else(|_| panic!("never came; saw {seen:?}"));
            let done = want(&got) || matches!(got, Got::Closed(_));
            seen.push(got);
            if done {
                return seen;
            }
        }
    }

    /// Sends `samples` at real-time pace in 20 ms chunks, collecting what arrives.
    async fn speak(&mut self, samples: &[i16]) -> Vec<(Instant, Got)> {
        let mut seen = Vec::new();
        for chunk in samples.chunks(320) {
            self.send(Message::binary(encode_input_frame(self.seq, chunk)))
                .await;
            self.seq += 1;
            settle().await;
            let due = Instant::now() + Duration::from_millis(20);
            while let Ok(Some(got)) = tokio::time::timeout_at(due, self.recv_one()).await {
                seen.push((Instant::now(), got));
            }
        }
        seen
    }

    async fn recv_one(&mut self) -> Option<Got> {
        Some(self.next().await)
    }
}

/// Lets the ASR pool's thread finish what it was given before virtual time moves on: a
/// blocking task holds the paused clock still while it runs.
async fn settle() {
    let _ = tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(2))).await;
}

/// A voiced-like sound at -20 dBFS (200 Hz with decaying harmonics), 16 kHz.
fn voiced(ms: usize) -> Vec<i16> {
    (0..16 * ms)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            let v: f32 = (1..=5)
                .map(|k| (2.0 * std::f32::consts::PI * 200.0 * k as f32 * t).sin() / k as f32)
                .sum();
            (v * 0.1 * 32767.0 / 1.5) as i16
        })
        .collect()
}

/// Speech-like syllables: 240 ms voiced, 60 ms quiet, for `ms` (a steady tone would
/// become the VAD's noise floor within seconds).
fn syllables(ms: usize) -> Vec<i16> {
    let mut out = Vec::with_capacity(16 * ms);
    while out.len() < 16 * ms {
        out.extend(voiced(240));
        out.extend(silence(60));
    }
    out.truncate(16 * ms);
    out
}

fn silence(ms: usize) -> Vec<i16> {
    vec![0; 16 * ms]
}

fn is_done(g: &Got) -> bool {
    matches!(g, Got::Event(ServerMessage::ResponseDone { .. }))
}

fn events(seen: &[(Instant, Got)]) -> impl Iterator<Item = &ServerMessage> {
    seen.iter().filter_map(|(_, g)| match g {
        Got::Event(e) => Some(e),
        _ => None,
    })
}

#[tokio::test(start_paused = true)]
async fn an_idle_call_ends_at_the_idle_timeout_and_not_before() {
    let hub = hub(CallSettings {
        idle_timeout: Duration::from_secs(300),
        ..settings()
    })
    .await;
    let (mut c, _, _) = Client::start(&hub).await;
    let last_message = Instant::now();
    let seen = c
        .until(|g| matches!(g, Got::Event(ServerMessage::SessionEnded { .. })))
        .await;
    let waited = last_message.elapsed();
    match seen.last() {
        Some(Got::Event(ServerMessage::SessionEnded { reason, .. })) => {
            assert_eq!(*reason, EndReason::Idle)
        }
        other => panic!("{other:?}"),
    }
    assert!(
        waited >= Duration::from_secs(300) && waited < Duration::from_millis(300_300),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_call_waits_out_the_resume_grace_then_ends() {
    let mut s = settings();
    s.limits.resume_grace = Duration::from_secs(30);
    let hub = hub(s).await;
    let mut c = Client::greeted(&hub).await;
    c.to_server = None;
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(hub.calls.len(), 1, "still waiting for a resume");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hub.calls.len(), 0, "given up after the grace");
}

#[tokio::test(start_paused = true)]
async fn a_resume_inside_the_grace_gets_the_call_back() {
    let hub = hub(settings()).await;
    let (mut c, session_id, resume_token) = Client::start(&hub).await;
    c.until(is_done).await;
    c.speak(&silence(200)).await;
    c.to_server = None;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut again = Client::connect(&hub);
    again
        .send_json(json!({"type":"session.resume","sessionId":session_id,
            "resumeToken":resume_token}))
        .await;
    let seen = again
        .until(|g| matches!(g, Got::Event(ServerMessage::SessionResumed { .. })))
        .await;
    match seen.last() {
        Some(Got::Event(ServerMessage::SessionResumed {
            next_seq, turns, ..
        })) => {
            assert_eq!(*next_seq, 10, "200 ms in 20 ms chunks");
            assert_eq!(turns.len(), 1, "the greeting");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_longest_call_ends_at_its_limit() {
    let mut s = settings();
    s.limits.max_call_duration = Duration::from_secs(600);
    let hub = hub(s).await;
    let (mut c, _, _) = Client::start(&hub).await;
    let started = Instant::now();
    c.until(is_done).await;
    // Pings keep it from going idle.
    for _ in 0..9 {
        tokio::time::sleep(Duration::from_secs(60)).await;
        c.send_json(json!({"type":"ping","t":1})).await;
    }
    let seen = c.until(|g| matches!(g, Got::Closed(_))).await;
    let ended = seen.iter().find_map(|g| match g {
        Got::Event(ServerMessage::SessionEnded { reason, .. }) => Some(*reason),
        _ => None,
    });
    assert_eq!(ended, Some(EndReason::Timeout));
    assert!(
        matches!(seen.last(), Some(Got::Closed(r)) if r == "maximum call duration reached"),
        "{seen:?}"
    );
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_secs(600) && lasted < Duration::from_millis(600_300),
        "{lasted:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn audio_is_acknowledged_at_the_first_chunk_then_every_200_ms() {
    let hub = hub(settings()).await;
    let mut c = Client::greeted(&hub).await;
    let seen = c.speak(&silence(800)).await;
    let acks: Vec<u32> = events(&seen)
        .filter_map(|e| match e {
            ServerMessage::AudioAck { seq } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(acks, vec![0, 10, 20, 30]);
}

#[tokio::test(start_paused = true)]
async fn the_last_chunk_is_acknowledged_within_100_ms_of_input_pausing() {
    let hub = hub(settings()).await;
    let (mut c, _, _) = Client::start(&hub).await;
    // 40 chunks: the acks every 200 ms of audio cover seqs 0, 10, 20 and 30 only.
    c.speak(&silence(800)).await;
    let paused_at = Instant::now();
    c.until(|g| matches!(g, Got::Event(ServerMessage::AudioAck { seq: 39 })))
        .await;
    let after = Instant::now() - paused_at;
    assert!(after <= Duration::from_millis(100), "{after:?}");
}

/// A call whose greeting is audible, its words heard as "N ms" (words that take the floor),
/// with a 200 ms barge-in.
async fn greeting_audible() -> Client {
    let hub = hub(CallSettings {
        barge_in_min: Duration::from_millis(200),
        ..settings()
    })
    .await;
    let (mut c, _, _) = Client::start(&hub).await;
    c.until(|g| matches!(g, Got::Audio { turn: 0 })).await;
    c
}

#[tokio::test(start_paused = true)]
async fn a_short_sound_over_the_ai_is_ignored_and_real_speech_interrupts_it() {
    let mut c = greeting_audible().await;
    let cough = [voiced(120), silence(700)].concat();
    let seen = c.speak(&cough).await;
    assert!(
        !seen.iter().any(|(_, g)| is_done(g) || paused(g)),
        "a 120 ms sound stopped the greeting: {seen:?}"
    );
    let onset = Instant::now();
    let seen = c.speak(&[voiced(400), silence(600)].concat()).await;
    let paused_at = seen.iter().find(|(_, g)| paused(g)).map(|(t, _)| *t);
    let paused_at = paused_at.unwrap_or_else(|| panic!("not paused: {seen:?}"));
    // The chunk that completes 200 ms of speech goes out 180 ms after the first.
    let after = paused_at - onset;
    assert!(
        after >= Duration::from_millis(180) && after < Duration::from_millis(350),
        "{after:?}"
    );
    let frames_after = seen
        .iter()
        .filter(|(t, g)| *t > paused_at && matches!(g, Got::Audio { turn: 0 }))
        .count();
    assert!(
        frames_after <= 1,
        "{frames_after} frames after the pause: {seen:?}"
    );
    let cancelled = events(&seen).any(|e| {
        matches!(
            e,
            ServerMessage::ResponseDone {
                turn_id: 0,
                status: DoneStatus::Cancelled,
                ..
            }
        )
    });
    assert!(cancelled, "not interrupted: {seen:?}");
    let turn_began =
        events(&seen).any(|e| matches!(e, ServerMessage::InputSpeechStarted { turn_id: 1, .. }));
    assert!(turn_began, "the interruption is not a turn: {seen:?}");
    assert!(!events(&seen).any(|e| matches!(e, ServerMessage::ResponseResumed { .. })));
}

#[tokio::test(start_paused = true)]
async fn no_frame_goes_out_over_speech_and_a_short_sound_lets_the_ai_catch_up() {
    let mut c = greeting_audible().await;
    let frames = |seen: &[(Instant, Got)], from: Instant, to: Instant| {
        seen.iter()
            .filter(|(t, g)| *t > from && *t <= to && matches!(g, Got::Audio { turn: 0 }))
            .count()
    };
    c.speak(&silence(300)).await;
    // The VAD hears a sound within its first 60 ms; from then until it is over, no frame.
    let onset = Instant::now();
    let seen = c.speak(&[voiced(120), silence(200)].concat()).await;
    let hushed = frames(
        &seen,
        onset + Duration::from_millis(60),
        onset + Duration::from_millis(140),
    );
    assert_eq!(hushed, 0, "frames while the sound went on: {seen:?}");
    // A 120 ms sound is no barge-in: the greeting plays on and refills its lead.
    let seen = c.speak(&silence(600)).await;
    let caught_up = frames(&seen, onset, Instant::now());
    assert!(
        caught_up >= 6,
        "{caught_up} frames after the sound: {seen:?}"
    );
    assert!(
        !seen.iter().any(|(_, g)| is_done(g) || paused(g)),
        "{seen:?}"
    );
}

fn paused(g: &Got) -> bool {
    matches!(g, Got::Event(ServerMessage::ResponsePaused { .. }))
}

#[tokio::test(start_paused = true)]
async fn a_backchannel_over_the_ai_pauses_it_and_it_plays_on() {
    let hub = hub_hearing(settings(), Some("Mm-hmm.")).await;
    let (mut c, _, _) = Client::start(&hub).await;
    c.until(|g| matches!(g, Got::Audio { turn: 0 })).await;
    c.speak(&silence(300)).await;
    let seen = c.speak(&[voiced(500), silence(800)].concat()).await;
    let at = |want: fn(&ServerMessage) -> bool| {
        seen.iter()
            .find(|(_, g)| matches!(g, Got::Event(e) if want(e)))
            .map(|(t, _)| *t)
    };
    let paused_at = at(|e| matches!(e, ServerMessage::ResponsePaused { turn_id: 0, .. }));
    let resumed_at = at(|e| matches!(e, ServerMessage::ResponseResumed { turn_id: 0, .. }));
    let (Some(paused_at), Some(resumed_at)) = (paused_at, resumed_at) else {
        panic!("not paused and resumed: {seen:?}");
    };
    // The backchannel ended 300 ms after the pause; its words are judged after 250 ms
    // of silence (the decode itself is instant here).
    let held = resumed_at - paused_at;
    assert!(held < Duration::from_millis(700), "held {held:?}");
    let said = events(&seen).find_map(|e| match e {
        ServerMessage::ResponseResumed {
            text, paused_ms, ..
        } => Some((text.clone(), *paused_ms)),
        _ => None,
    });
    assert_eq!(said.map(|s| s.0).as_deref(), Some("Mm-hmm."));
    let rest = c.until(is_done).await;
    let all: Vec<&ServerMessage> = events(&seen)
        .chain(rest.iter().filter_map(|g| match g {
            Got::Event(e) => Some(e),
            _ => None,
        }))
        .collect();
    assert!(
        !all.iter()
            .any(|e| matches!(e, ServerMessage::InputSpeechStarted { .. })),
        "a backchannel became a turn: {all:?}"
    );
    let done = all.iter().find_map(|e| match e {
        ServerMessage::ResponseDone {
            turn_id: 0,
            status,
            text,
            heard_text,
            ..
        } => Some((*status, text == heard_text)),
        _ => None,
    });
    assert_eq!(done, Some((DoneStatus::Completed, true)), "{all:?}");
}

#[tokio::test(start_paused = true)]
async fn a_backchannel_with_a_gap_inside_is_judged_whole_and_plays_on() {
    // "Mm … hmm": a 150 ms gap starts a decode (at 100 ms) that the second sound
    // discards; the words decide at the pause after it, not at the gap.
    let hub = hub_hearing(settings(), Some("Mm-hmm.")).await;
    let (mut c, _, _) = Client::start(&hub).await;
    c.until(|g| matches!(g, Got::Audio { turn: 0 })).await;
    c.speak(&silence(300)).await;
    let sound = [voiced(250), silence(150), voiced(250), silence(800)].concat();
    let seen = c.speak(&sound).await;
    let resumed = events(&seen)
        .filter(|e| matches!(e, ServerMessage::ResponseResumed { turn_id: 0, .. }))
        .count();
    assert_eq!(resumed, 1, "{seen:?}");
    let rest = c.until(is_done).await;
    assert!(
        rest.iter().any(|g| matches!(
            g,
            Got::Event(ServerMessage::ResponseDone {
                turn_id: 0,
                status: DoneStatus::Completed,
                ..
            })
        )),
        "{rest:?}"
    );
}

/// How long, in wall-clock time, each decode of [`greeting_heard_slowly`] takes.
const SLOW_DECODE_MS: u64 = 500;

/// A call with `turns` whose transcriber hears `words` after [`SLOW_DECODE_MS`], its
/// greeting audible, 300 ms of silence sent.
async fn greeting_heard_slowly(words: &'static str, turns: serde_json::Value) -> Client {
    let slow = SlowTranscriber {
        words,
        real_delay: Duration::from_millis(SLOW_DECODE_MS),
    };
    let personas = crate::llm::PersonaSet::builtin();
    let hub = hub_transcribing(settings(), Arc::new(slow), personas);
    let (mut c, _, _) = Client::start_with(&hub, turns).await;
    c.until(|g| matches!(g, Got::Audio { turn: 0 })).await;
    c.speak(&silence(300)).await;
    c
}

/// Waits out `n` slow decodes with the call's clock held still (a blocking task holds it).
async fn let_slow_decodes_finish(n: u64) {
    let ms = n * SLOW_DECODE_MS + 300;
    let _ =
        tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from_millis(ms))).await;
}

#[tokio::test(start_paused = true)]
async fn a_backchannel_whose_words_come_late_still_gives_the_floor_back() {
    // "Mm-hmm" is 500 ms; its decode ends after 1.5 s of the call's time has passed
    // since its onset, the silence after it included.
    let mut c = greeting_heard_slowly("Mm-hmm.", json!({})).await;
    let mut seen = c.speak(&[voiced(500), silence(1500)].concat()).await;
    let_slow_decodes_finish(1).await;
    seen.extend(
        c.until(is_done)
            .await
            .into_iter()
            .map(|g| (Instant::now(), g)),
    );
    let all: Vec<&ServerMessage> = events(&seen).collect();
    assert!(
        all.iter()
            .any(|e| matches!(e, ServerMessage::ResponseResumed { turn_id: 0, .. })),
        "not resumed: {all:?}"
    );
    assert!(
        !all.iter()
            .any(|e| matches!(e, ServerMessage::InputSpeechStarted { .. })),
        "a backchannel became a turn: {all:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_over_the_ai_whose_words_come_after_its_end_keeps_its_end_of_turn() {
    // The VAD ends "No, I haven't." (300 ms of silence) while its words are still being
    // decoded: the turn ends when they are known, with no speculation of its own.
    let vad = json!({"mode": "server_vad", "silenceMs": 300});
    let mut c = greeting_heard_slowly("No, I haven't.", vad).await;
    c.speak(&[voiced(600), silence(800)].concat()).await;
    // The overlap's decode, then the turn's final.
    let_slow_decodes_finish(2).await;
    let seen = c
        .until(|g| {
            matches!(
                g,
                Got::Event(ServerMessage::ResponseDone { turn_id: 1, .. })
            )
        })
        .await;
    let latency = seen.iter().find_map(|g| match g {
        Got::Event(ServerMessage::ResponseDone {
            turn_id: 1,
            latency,
            ..
        }) => Some(latency.clone()),
        _ => None,
    });
    let latency = latency.expect("turn 1 answered");
    assert!(latency.endpoint_ms.is_some(), "{latency:?}");
    assert!(latency.end_of_turn.is_some(), "{latency:?}");
}

#[tokio::test(start_paused = true)]
async fn long_speech_over_the_ai_takes_the_floor_whatever_it_says() {
    let hub = hub_hearing(settings(), Some("Okay.")).await;
    let (mut c, _, _) = Client::start(&hub).await;
    c.until(|g| matches!(g, Got::Audio { turn: 0 })).await;
    c.speak(&silence(300)).await;
    let onset = Instant::now();
    let seen = c.speak(&syllables(2000)).await;
    let cancelled_at = seen.iter().find_map(|(t, g)| match g {
        Got::Event(ServerMessage::ResponseDone {
            turn_id: 0,
            status: DoneStatus::Cancelled,
            ..
        }) => Some(*t),
        _ => None,
    });
    let cancelled_at = cancelled_at.unwrap_or_else(|| panic!("not interrupted: {seen:?}"));
    let after = cancelled_at - onset;
    assert!(
        after >= Duration::from_millis(1400) && after < Duration::from_millis(1700),
        "{after:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_turn_with_no_answer_gets_a_silence_prompt_after_the_quiet_time() {
    let hub = hub_hearing(settings(), Some("Okay.")).await;
    let mut c = Client::greeted_with(&hub, json!({"mode":"server_vad","silenceMs":500})).await;
    c.speak(&silence(300)).await;
    let persona = hub.engines.personas.get("interviewer").expect("built in");
    let mut prompts = Vec::new();
    for _ in 0..2 {
        let seen = c.speak(&[voiced(500), silence(700)].concat()).await;
        let stopped_at = seen.iter().find_map(|(t, g)| {
            matches!(g, Got::Event(ServerMessage::InputSpeechStopped { .. })).then_some(*t)
        });
        let stopped_at = stopped_at.unwrap_or_else(|| panic!("the turn never ended: {seen:?}"));
        let rest = c.until(is_done).await;
        let started_at = Instant::now();
        assert!(
            started_at - stopped_at
                >= Duration::from_secs(u64::from(persona.silence_prompt_after_s)),
            "prompted after {:?}",
            started_at - stopped_at
        );
        match rest.last() {
            Some(Got::Event(ServerMessage::ResponseDone { status, text, .. })) => {
                assert_eq!(*status, DoneStatus::Completed);
                prompts.push(text.clone());
            }
            other => panic!("{other:?}"),
        }
    }
    let question = &persona.questions[0];
    assert_eq!(prompts[0], "Take your time.");
    assert_eq!(
        prompts[1],
        format!("No rush. Let me repeat the question. {question}")
    );
}

#[tokio::test(start_paused = true)]
async fn speech_in_the_quiet_time_takes_the_turn_before_any_prompt() {
    let hub = hub_hearing(settings(), Some("Okay.")).await;
    let mut c = Client::greeted_with(&hub, json!({"mode":"server_vad","silenceMs":500})).await;
    c.speak(&silence(300)).await;
    c.speak(&[voiced(500), silence(1500)].concat()).await;
    let seen = c.speak(&[voiced(800), silence(500)].concat()).await;
    assert!(
        !events(&seen).any(|e| matches!(e, ServerMessage::ResponseStarted { .. })),
        "prompted over the candidate: {seen:?}"
    );
    assert!(
        events(&seen).any(|e| matches!(e, ServerMessage::InputSpeechStarted { turn_id: 2, .. })),
        "{seen:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_stops_at_the_personas_sentence_limit() {
    let mut persona = (*crate::llm::PersonaSet::builtin()
        .get("interviewer")
        .expect("built in"))
    .clone();
    persona.max_sentences = 2;
    let hub = hub_with_persona(
        persona,
        Some("I built billing services in Rust for five years."),
    )
    .await;
    let mut c = Client::greeted_with(&hub, json!({"mode":"server_vad","silenceMs":500})).await;
    c.speak(&silence(300)).await;
    let spoken = c.speak(&[voiced(800), silence(1000)].concat()).await;
    let mut seen: Vec<Got> = spoken.into_iter().map(|(_, g)| g).collect();
    if !seen.iter().any(is_done) {
        seen.extend(c.until(is_done).await);
    }
    let deltas: String = seen
        .iter()
        .filter_map(|g| match g {
            Got::Event(ServerMessage::ResponseTextDelta { delta, .. }) => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    match seen.iter().find(|g| is_done(g)) {
        Some(Got::Event(ServerMessage::ResponseDone {
            status,
            text,
            heard_text,
            ..
        })) => {
            assert_eq!(*status, DoneStatus::Completed);
            // An acknowledgement, then the first of the question's two sentences.
            assert!(
                text.ends_with("What is a project you are proud of?"),
                "{text}"
            );
            assert_eq!(&deltas, text);
            assert_eq!(heard_text, text);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_pause_shorter_than_silence_ms_keeps_the_turn_and_a_longer_one_ends_it() {
    let hub = hub(settings()).await;
    let mut c = Client::greeted_with(&hub, json!({"mode":"server_vad","silenceMs":500})).await;
    c.speak(&silence(300)).await;
    let answer = [voiced(800), silence(350), voiced(800), silence(800)].concat();
    let mut seen = c.speak(&answer).await;
    let rest = c
        .until(|g| matches!(g, Got::Event(ServerMessage::ResponseStarted { .. })))
        .await;
    seen.extend(rest.into_iter().map(|g| (Instant::now(), g)));
    let stopped: Vec<_> = events(&seen)
        .filter(|e| matches!(e, ServerMessage::InputSpeechStopped { .. }))
        .collect();
    assert_eq!(stopped.len(), 1, "{seen:?}");
    let finals: Vec<_> = events(&seen)
        .filter_map(|e| match e {
            ServerMessage::Transcript {
                is_final: true,
                start_ms: Some(s),
                end_ms: Some(e),
                ..
            } => Some(e - s),
            _ => None,
        })
        .collect();
    assert_eq!(finals.len(), 1, "{seen:?}");
    assert!(
        finals[0] >= 1900,
        "the final covers both halves: {finals:?}"
    );
    let order: Vec<_> = events(&seen)
        .filter_map(|e| match e {
            ServerMessage::InputSpeechStopped { .. } => Some("stopped"),
            ServerMessage::ResponseStarted { .. } => Some("started"),
            _ => None,
        })
        .collect();
    assert_eq!(order.first(), Some(&"stopped"), "{order:?}");
}

#[tokio::test(start_paused = true)]
async fn partials_come_no_faster_than_the_partial_interval() {
    let hub = hub(CallSettings {
        partial_interval: Duration::from_millis(300),
        ..settings()
    })
    .await;
    let mut c = Client::greeted(&hub).await;
    c.speak(&silence(300)).await;
    let seen = c.speak(&voiced(1800)).await;
    // Each partial says how much audio it decoded, fixed when it was scheduled.
    let heard_ms: Vec<u64> = events(&seen)
        .filter_map(|e| match e {
            ServerMessage::Transcript {
                is_final: false,
                text,
                ..
            } => text.trim_end_matches(" ms").parse().ok(),
            _ => None,
        })
        .collect();
    assert!((3..=5).contains(&heard_ms.len()), "{seen:?}");
    for pair in heard_ms.windows(2) {
        assert!(pair[1] - pair[0] >= 300, "{heard_ms:?}");
    }
}

/// The `endOfTurn` of every `input.speech_stopped` seen, with when it came.
fn ends(seen: &[(Instant, Got)]) -> Vec<(Instant, crate::protocol::EndOfTurn)> {
    seen.iter()
        .filter_map(|(at, g)| match g {
            Got::Event(ServerMessage::InputSpeechStopped { end_of_turn, .. }) => {
                Some((*at, *end_of_turn))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn smart_ends_a_finished_answer_at_the_shortest_silence() {
    let hub = hub_hearing(settings(), Some("I led the billing team for two years.")).await;
    let mut c = Client::greeted(&hub).await;
    c.speak(&silence(300)).await;
    let seen = c.speak(&[voiced(1500), silence(1000)].concat()).await;
    let ends = ends(&seen);
    assert_eq!(ends.len(), 1, "{seen:?}");
    let end = ends[0].1;
    assert_eq!(end.rule, crate::protocol::EndRule::Complete, "{end:?}");
    assert!((250..300).contains(&end.silence_ms), "{end:?}");
}

#[tokio::test(start_paused = true)]
async fn smart_waits_through_a_thinking_pause_and_ends_at_the_longest_silence() {
    let hub = hub_hearing(settings(), Some("At my last job I was responsible for")).await;
    let mut c = Client::greeted(&hub).await;
    c.speak(&silence(300)).await;
    let answer = [voiced(1500), silence(1500), voiced(1000), silence(2700)].concat();
    let seen = c.speak(&answer).await;
    let ends = ends(&seen);
    assert_eq!(ends.len(), 1, "one turn, not cut at the pause: {seen:?}");
    let end = ends[0].1;
    assert_eq!(end.rule, crate::protocol::EndRule::MaxSilence, "{end:?}");
    assert!((2500..2560).contains(&end.silence_ms), "{end:?}");
}

#[tokio::test(start_paused = true)]
async fn server_vad_keeps_its_fixed_silence_whatever_was_said() {
    let hub = hub_hearing(settings(), Some("I was responsible for")).await;
    let mut c = Client::greeted_with(&hub, json!({"mode":"server_vad","silenceMs":600})).await;
    c.speak(&silence(300)).await;
    let seen = c.speak(&[voiced(1000), silence(900)].concat()).await;
    let ends = ends(&seen);
    assert_eq!(ends.len(), 1, "{seen:?}");
    assert_eq!(ends[0].1.rule, crate::protocol::EndRule::Silence);
    assert!((600..650).contains(&ends[0].1.silence_ms), "{:?}", ends[0]);
}

/// A long answer: `sentences` stretches of speech of `speech_ms`, each followed by a pause
/// of `pause_ms`, then the end-of-turn silence.
fn long_answer(sentences: usize, speech_ms: usize, pause_ms: usize) -> Vec<i16> {
    let mut audio = Vec::new();
    for _ in 0..sentences {
        audio.extend(syllables(speech_ms));
        audio.extend(silence(pause_ms));
    }
    audio.extend(silence(3000));
    audio
}

#[tokio::test(start_paused = true)]
async fn a_long_answer_is_one_turn_and_its_final_is_all_of_it() {
    let hub = hub(settings()).await;
    let mut c = Client::greeted(&hub).await;
    c.speak(&silence(300)).await;
    // 60 s of speech in 4 s sentences with 400 ms pauses: twice whisper's window.
    let seen = c.speak(&long_answer(15, 4000, 400)).await;
    let rest = c.until(is_done).await;
    let all: Vec<_> = seen
        .into_iter()
        .chain(rest.into_iter().map(|g| (Instant::now(), g)))
        .collect();
    assert_eq!(ends(&all).len(), 1, "one turn");
    let heard_ms: u64 = events(&all)
        .find_map(|e| match e {
            ServerMessage::Transcript {
                is_final: true,
                text,
                ..
            } => Some(
                text.split(" ms")
                    .filter_map(|n| n.trim().parse::<u64>().ok())
                    .sum(),
            ),
            _ => None,
        })
        .expect("a final transcript");
    // Every piece was decoded once: the pieces add up to the whole answer (66 s with its
    // pauses), nothing dropped at 30 s, nothing decoded twice.
    assert!((64_000..68_000).contains(&heard_ms), "{heard_ms}");
}

#[tokio::test(start_paused = true)]
async fn speech_past_the_longest_turn_ends_that_turn_and_says_why() {
    let hub = hub(CallSettings {
        longest_turn: Duration::from_secs(20),
        ..settings()
    })
    .await;
    let mut c = Client::greeted(&hub).await;
    c.speak(&silence(300)).await;
    let seen = c.speak(&syllables(22_000)).await;
    let ends = ends(&seen);
    assert_eq!(ends.len(), 1, "{seen:?}");
    assert_eq!(ends[0].1.rule, crate::protocol::EndRule::LongestTurn);
}
