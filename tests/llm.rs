//! Real calls through a real LLM: llama.cpp's OpenAI-compatible server (scripts/llm-server,
//! SmolLM2-135M) behind the gateway's `openai` backend. A barge-in during generation closes
//! the model's stream (the server logs the disconnect), and a server killed mid-answer fails
//! the turn, not the call.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use callgate::protocol::{self, DoneStatus, ErrorCode, ServerMessage};

use crate::util::{Got, TestCall, free_port};

/// A llama.cpp server process; its stdout and stderr go to `log`.
struct LlmServer {
    child: Child,
    log: PathBuf,
}

impl LlmServer {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LlmServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_llm() -> (LlmServer, String) {
    let cache = std::env::var("CALLGATE_CACHE").unwrap_or_else(|_| {
        format!(
            "{}/.cache/callgate",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let venv = format!("{cache}/llm-venv/bin/python");
    assert!(
        std::path::Path::new(&venv).is_file(),
        "{venv} is missing: run scripts/llm-server --prepare (scripts/test does this)"
    );
    let port = free_port();
    let log = std::env::temp_dir().join(format!("callgate-llm-{port}.log"));
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    // scripts/llm-server execs the server, so this child is the server itself.
    let child = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/llm-server"))
        .args(["--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start scripts/llm-server");
    let server = LlmServer { child, log };
    let url = format!("http://127.0.0.1:{port}/v1");
    for _ in 0..240 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (server, url);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "the LLM server did not start within 60 s:\n{}",
        server.log_text()
    );
}

/// A call through a gateway whose `openai` backend is the llama.cpp server at `url`.
struct Call {
    ws: TestCall,
    /// Every event, in order.
    events: Vec<ServerMessage>,
    /// Audio frames as (turn, number of events seen before it).
    frames: Vec<(u32, usize)>,
}

impl Call {
    async fn start(url: String) -> Self {
        Self::start_with(url, Default::default()).await
    }

    /// [`Call::start`] on a gateway with `extra` settings on top.
    async fn start_with(url: String, extra: callgate::config::ServeSettings) -> Self {
        let settings = callgate::config::ServeSettings {
            llm_model: Some("smollm2".into()),
            llm_max_tokens: Some(150),
            // A loaded 2-core machine (parallel tests, a build) can slow the first token.
            llm_first_token_timeout_s: Some(90.0),
            ..crate::util::openai_backend(url)
        };
        let addr = crate::util::spawn_gateway(settings.overlay(extra)).await;
        let mut ws = TestCall::open(addr)
            .await
            .with_patience(Duration::from_secs(60));
        ws.send_json(
            json!({"type":"session.start","input":{"sampleRate":16000},"output":{"sampleRate":16000}}),
        )
        .await;
        Self {
            ws,
            events: Vec::new(),
            frames: Vec::new(),
        }
    }

    /// Reads one frame.
    async fn step(&mut self) {
        match self.ws.next().await {
            Got::Event(e) => self.events.push(e),
            Got::Audio(c) => self.frames.push((c.turn, self.events.len())),
            Got::Closed(code) => panic!("the call closed ({code:?})"),
        }
    }

    /// Reads until an event matches.
    async fn until(&mut self, pred: impl Fn(&ServerMessage) -> bool) {
        while !self.events.last().is_some_and(&pred) {
            self.step().await;
        }
    }

    async fn until_done(&mut self, turn: u32) -> DoneStatus {
        self.until(
            |e| matches!(e, ServerMessage::ResponseDone { turn_id, .. } if *turn_id == turn),
        )
        .await;
        match self.events.last() {
            Some(ServerMessage::ResponseDone { status, .. }) => *status,
            _ => unreachable!("until stopped on response.done"),
        }
    }

    async fn until_first_delta(&mut self, turn: u32) {
        self.until(
            |e| matches!(e, ServerMessage::ResponseTextDelta { turn_id, .. } if *turn_id == turn),
        )
        .await;
    }

    async fn say_text(&mut self, text: &str) {
        self.ws
            .send_json(json!({"type":"input.text","text":text}))
            .await;
    }

    fn errors(&self, turn: u32) -> Vec<&protocol::ErrorEvent> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ServerMessage::Error(err) if err.turn_id == Some(turn) => Some(err),
                _ => None,
            })
            .collect()
    }
}

/// A long answer, so the model is still generating when it is interrupted or killed.
const LONG_REQUEST: &str = "Please tell me, in great detail and at length, the full story of \
    every project your company has ever shipped, one by one.";

#[tokio::test]
async fn spoken_call_through_llama_cpp_with_barge_in_during_generation() {
    let (llm, url) = start_llm().await;
    let mut call = Call::start(url).await;
    assert_eq!(
        call.until_done(0).await,
        DoneStatus::Completed,
        "{:?}",
        call.errors(0)
    );
    assert!(
        call.events
            .iter()
            .any(|e| matches!(e, ServerMessage::ResponseTextDelta { turn_id: 0, .. })),
        "streamed tokens from the model"
    );
    assert!(
        call.frames.iter().any(|(t, _)| *t == 0),
        "the greeting was spoken"
    );
    let disconnects_before = llm.log_text().matches("Disconnected from client").count();

    // Ask for a long answer and talk over it as soon as the model starts streaming.
    call.say_text(LONG_REQUEST).await;
    call.until_first_delta(1).await;
    let fixture = crate::util::espeak_wav(
        "Sorry, can I stop you there? I have five years of experience with Rust.",
        "en-us",
        16000,
        1,
    );
    let clip = callgate::audio::wav::read_mono_at(&fixture, 16000).expect("wav");
    let mut audio = callgate::audio::f32_to_i16(&clip.samples);
    audio.extend(vec![0i16; 24000]);
    for (seq, chunk) in audio.chunks(320).enumerate() {
        call.ws
            .send_binary(protocol::encode_input_frame(seq as u32, chunk))
            .await;
    }
    assert_eq!(call.until_done(1).await, DoneStatus::Cancelled);
    let done1 = call.events.len() - 1;
    // The new turn is transcribed and answered by the model, in audio.
    while !call.frames.iter().any(|(t, _)| *t == 2) {
        call.step().await;
    }
    assert!(
        !call.frames.iter().any(|(t, at)| *t == 1 && *at > done1),
        "audio of the cancelled turn followed its response.done"
    );
    let transcript = call
        .events
        .iter()
        .find_map(|e| match e {
            ServerMessage::Transcript {
                turn_id: 2,
                text,
                is_final: true,
                ..
            } => Some(text.to_lowercase()),
            _ => None,
        })
        .expect("final transcript");
    assert!(transcript.contains("experience"), "{transcript}");
    assert!(
        call.events
            .iter()
            .any(|e| matches!(e, ServerMessage::ResponseTextDelta { turn_id: 2, .. }))
    );
    // llama.cpp saw its stream to us closed early (llama-cpp-python logs each disconnect).
    let mut closed = false;
    for _ in 0..100 {
        if llm.log_text().matches("Disconnected from client").count() > disconnects_before {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        closed,
        "llama.cpp never saw the cancelled request's stream closed:\n{}",
        llm.log_text()
    );
    call.ws.send_text(r#"{"type":"session.end"}"#).await;
}

/// The real server killed mid-answer: the turn fails with a recoverable `LLM_ERROR`, the text
/// streamed so far is kept, and the call goes on (the next turn fails fast: nothing listens).
#[tokio::test]
async fn llama_cpp_killed_mid_stream_fails_the_turn_not_the_call() {
    let (mut llm, url) = start_llm().await;
    let mut call = Call::start(url).await;
    assert_eq!(call.until_done(0).await, DoneStatus::Completed);
    call.say_text(LONG_REQUEST).await;
    call.until_first_delta(1).await;
    llm.child.kill().expect("kill the LLM server");
    assert_eq!(call.until_done(1).await, DoneStatus::Failed);
    match call.events.last() {
        Some(ServerMessage::ResponseDone { text, .. }) => {
            assert!(!text.is_empty(), "the streamed text is kept")
        }
        other => panic!("expected response.done, got {other:?}"),
    }
    let errs = call.errors(1);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].code, ErrorCode::LlmError);
    assert!(errs[0].recoverable && !errs[0].user_message.is_empty());

    call.say_text("Hello? Are you still there?").await;
    assert_eq!(call.until_done(2).await, DoneStatus::Failed);
    let errs = call.errors(2);
    assert!(
        errs.len() == 1 && errs[0].message.contains("cannot reach"),
        "{errs:?}"
    );
    call.ws.send_text(r#"{"type":"ping","t":1}"#).await;
    call.until(|e| matches!(e, ServerMessage::Pong { .. }))
        .await;
}

/// Interview answers, each spoken by espeak-ng in turn.
const SPOKEN_ANSWERS: &[&str] = &[
    "I have five years of experience building backend services in Rust and Python.",
    "The hardest bug I fixed was a race condition in our payment service.",
    "We moved the monolith to microservices over about eighteen months.",
    "I led a team of four engineers and I reviewed most of their code.",
    "I would like to work on distributed systems and on developer tools.",
];

/// The sentences of `text` as the gateway counts them.
fn sentences(text: &str) -> usize {
    let mut splitter = callgate::llm::sentences::SentenceSplitter::new();
    let mut n = splitter.push(text).len();
    n += usize::from(splitter.finish().is_some());
    n
}

/// Issue 14's real-LLM check: five spoken answers answered by a real model, each reply
/// completed and no longer than the persona's sentence limit (3), whatever the model would
/// have gone on to say (`bench` measures how long they take).
#[tokio::test]
async fn five_spoken_answers_through_llama_cpp_each_complete_within_the_sentence_limit() {
    let (_llm, url) = start_llm().await;
    let mut call = Call::start(url).await;
    assert_eq!(call.until_done(0).await, DoneStatus::Completed);
    let mut seq = 0u32;
    for (i, answer) in SPOKEN_ANSWERS.iter().enumerate() {
        let turn = i as u32 + 1;
        let voice = ["en-us", "en-gb"][i % 2];
        let fixture = crate::util::espeak_wav(answer, voice, 16000, 1);
        let clip = callgate::audio::wav::read_mono_at(&fixture, 16000).expect("wav");
        let mut audio = callgate::audio::f32_to_i16(&clip.samples);
        audio.extend(vec![0i16; 48000]);
        for chunk in audio.chunks(320) {
            call.ws
                .send_binary(protocol::encode_input_frame(seq, chunk))
                .await;
            seq += 1;
            // In real time, as a microphone would: the reply must not be spoken over.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let status = call.until_done(turn).await;
        let Some(ServerMessage::ResponseDone { text, .. }) = call.events.last() else {
            unreachable!("until_done stopped on response.done");
        };
        assert_eq!(status, DoneStatus::Completed, "turn {turn}: {text:?}");
        assert!(!text.trim().is_empty(), "turn {turn}: an empty reply");
        let n = sentences(text);
        assert!(n <= 3, "turn {turn}: {n} sentences: {text:?}");
    }
    call.ws.send_text(r#"{"type":"session.end"}"#).await;
}

#[tokio::test]
async fn after_the_call_the_model_writes_feedback_on_each_answer_into_the_report() {
    let (_llm, url) = start_llm().await;
    let calls = std::env::temp_dir().join(format!("callgate-feedback-{}", std::process::id()));
    let extra = callgate::config::ServeSettings {
        calls_dir: Some(calls.clone()),
        ..Default::default()
    };
    let mut call = Call::start_with(url, extra).await;
    call.until(|e| matches!(e, ServerMessage::SessionStarted { .. }))
        .await;
    let Some(ServerMessage::SessionStarted { session_id, .. }) = call.events.last().cloned() else {
        unreachable!("until stopped on session.started");
    };
    assert_eq!(call.until_done(0).await, DoneStatus::Completed);
    // Spoken, as the report's answers are.
    let mut audio = crate::util::speech(
        "I led the migration of our billing service to three smaller services.",
        16000,
        1,
    );
    audio.extend(vec![0i16; 48000]);
    for (seq, chunk) in audio.chunks(320).enumerate() {
        call.ws
            .send_binary(protocol::encode_input_frame(seq as u32, chunk))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(call.until_done(1).await, DoneStatus::Completed);
    call.ws.send_json(json!({"type":"session.end"})).await;
    call.until(|e| matches!(e, ServerMessage::SessionEnded { .. }))
        .await;
    // Written after session.ended; the report shows it once it is in.
    let report_path = calls.join(&session_id).join("report.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let report = loop {
        let report: Option<serde_json::Value> = std::fs::read(&report_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(r) = report.filter(|r| r["feedback"]["status"] == "model") {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no model feedback within 120 s: {:?}",
            std::fs::read_to_string(&report_path)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let answers = report["feedback"]["answers"].as_array().expect("answers");
    assert_eq!(answers.len(), 1, "{report}");
    assert_eq!(answers[0]["turnId"], 1);
    let text = answers[0]["text"].as_str().unwrap_or_default();
    assert!(!text.trim().is_empty(), "{report}");
    assert_eq!(
        report["answers"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    let html = std::fs::read_to_string(calls.join(&session_id).join("report.html")).expect("html");
    assert!(html.contains("Coach's feedback"), "{html}");
}
