//! Engine faults through the gateway: every way an LLM or TTS engine can fail fails the turn
//! (`response.done` failed, a recoverable error a candidate can read) and never the call.
//!
//! The LLM faults come from a fault-injection HTTP server (`util::fake_llm`), and the TTS
//! faults from a synthesizer wrapper that refuses marked sentences: test doubles on purpose,
//! since they are the only way to produce these faults on demand. Everything else (whisper,
//! espeak-ng for unmarked sentences, the sockets) is real.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use callgate::protocol::{self, DoneStatus, ErrorCode, ServerMessage};
use callgate::tts::{Speech, Synthesizer, TtsError, Urgency};

use crate::util::{
    FakeReply, Got, TestCall, done_of, fake_llm, is_done, openai_backend, session_id_of,
    spawn_gateway_with, sse_cut_off, sse_raw, sse_reply,
};

/// The `error` events among `seen`.
fn errors(seen: &[Got]) -> Vec<protocol::ErrorEvent> {
    seen.iter()
        .filter_map(|g| match g {
            Got::Event(ServerMessage::Error(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// An in-process gateway with `settings` (and `adjust`ed engines), and a call started on it.
async fn call_on(
    settings: callgate::config::ServeSettings,
    adjust: impl FnOnce(&mut callgate::call::Engines),
) -> TestCall {
    let addr = spawn_gateway_with(settings, adjust).await;
    let mut ws = TestCall::open(addr).await;
    ws.start(16000, 1, 16000).await;
    ws
}

/// Asserts the call is still alive: a ping gets its pong.
async fn assert_alive(ws: &mut TestCall) {
    ws.send_json(json!({"type":"ping","t":7})).await;
    ws.until(|e| matches!(e, ServerMessage::Pong { .. })).await;
}

/// Each LLM fault fails the greeting with one recoverable `LLM_ERROR` whose developer message
/// names the cause, and the next (typed) turn is still taken.
#[tokio::test]
async fn every_llm_fault_fails_the_turn_and_the_call_goes_on() {
    struct Case {
        name: &'static str,
        reply: fn() -> FakeReply,
        /// In the developer message.
        cause: &'static str,
        /// The text kept from before the fault.
        kept: &'static str,
    }
    let cases = [
        Case {
            name: "401",
            reply: || {
                FakeReply::Send("HTTP/1.1 401 Unauthorized\r\ncontent-length: 3\r\nconnection: close\r\n\r\nno!".into())
            },
            cause: "API key",
            kept: "",
        },
        Case {
            name: "403",
            reply: || {
                FakeReply::Send(
                    "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .into(),
                )
            },
            cause: "API key",
            kept: "",
        },
        Case {
            name: "500",
            reply: || {
                FakeReply::Send("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 6\r\nconnection: close\r\n\r\nboom!!".into())
            },
            cause: "HTTP 500",
            kept: "",
        },
        Case {
            name: "malformed SSE",
            reply: || {
                FakeReply::Send(sse_raw(
                    "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {not json\n\n",
                ))
            },
            cause: "bad chunk JSON",
            kept: "Hel",
        },
        Case {
            name: "error event",
            reply: || {
                FakeReply::Send(sse_raw(
                    "data: {\"error\":{\"message\":\"context window exceeded\"}}\n\n",
                ))
            },
            cause: "context window exceeded",
            kept: "",
        },
        Case {
            name: "empty completion",
            reply: || {
                FakeReply::Send(sse_raw(
                    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: [DONE]\n\n",
                ))
            },
            cause: "empty answer",
            kept: "",
        },
        Case {
            name: "dropped mid-stream",
            reply: || FakeReply::Send(sse_cut_off("Thanks for joining. Let me")),
            cause: "stream failed",
            kept: "Thanks for joining. Let me",
        },
        Case {
            name: "stall before the first token",
            reply: || FakeReply::Stall,
            cause: "first token",
            kept: "",
        },
    ];
    for case in cases {
        let reply = case.reply;
        let url = fake_llm(move |_, _| reply()).await;
        let mut ws = call_on(
            callgate::config::ServeSettings {
                llm_first_token_timeout_s: Some(1.0),
                ..openai_backend(url)
            },
            |_| {},
        )
        .await;
        let greeting = ws.until(is_done(0)).await;
        let (status, text, _, _) = done_of(&greeting);
        assert_eq!(status, DoneStatus::Failed, "{}: {greeting:?}", case.name);
        assert_eq!(text, case.kept, "{}", case.name);
        let errs = errors(&greeting);
        assert_eq!(errs.len(), 1, "{}: {errs:?}", case.name);
        assert_eq!(errs[0].code, ErrorCode::LlmError, "{}", case.name);
        assert!(errs[0].recoverable, "{}", case.name);
        assert!(!errs[0].user_message.is_empty(), "{}", case.name);
        assert!(
            errs[0].message.contains(case.cause),
            "{}: {:?}",
            case.name,
            errs[0].message
        );
        assert_eq!(errs[0].turn_id, Some(0), "{}", case.name);
        // The next turn is taken (and fails the same way: same server).
        ws.send_json(json!({"type":"input.text","text":"Hello?"}))
            .await;
        let next = ws.until(is_done(1)).await;
        assert_eq!(done_of(&next).0, DoneStatus::Failed, "{}", case.name);
        assert_alive(&mut ws).await;
    }
}

/// A name that does not resolve fails the turn with a message saying the server cannot be
/// reached. `.invalid` is reserved (RFC 2606), so this needs no network.
#[tokio::test]
async fn unresolvable_llm_host_fails_the_turn() {
    let mut ws = call_on(
        openai_backend("http://callgate-no-such-host.invalid/v1".into()),
        |_| {},
    )
    .await;
    let greeting = ws.until(is_done(0)).await;
    assert_eq!(done_of(&greeting).0, DoneStatus::Failed);
    let errs = errors(&greeting);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].code, ErrorCode::LlmError);
    assert!(
        errs[0].message.contains("cannot reach"),
        "{}",
        errs[0].message
    );
    assert_alive(&mut ws).await;
}

/// A dropped stream keeps what the candidate heard: the sentence spoken before the drop is in
/// the history the model gets on the next turn.
#[tokio::test]
async fn text_spoken_before_a_dropped_stream_stays_in_history() {
    let requests = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = requests.clone();
    let url = fake_llm(move |n, request| {
        seen.lock().expect("lock").push(request.to_owned());
        if n == 0 {
            FakeReply::Send(sse_cut_off("Thanks for joining us today. Let me"))
        } else {
            FakeReply::Send(sse_reply("Go on.", true))
        }
    })
    .await;
    let mut ws = call_on(openai_backend(url), |_| {}).await;
    let greeting = ws.until(is_done(0)).await;
    let (status, _, heard, _) = done_of(&greeting);
    assert_eq!(status, DoneStatus::Failed);
    assert_eq!(heard, "Thanks for joining us today.");
    ws.send_json(json!({"type":"input.text","text":"Sure."}))
        .await;
    let next = ws.until(is_done(1)).await;
    assert_eq!(done_of(&next).0, DoneStatus::Completed);
    let second = requests.lock().expect("lock")[1].clone();
    assert!(
        second.contains("\"assistant\",\"content\":\"Thanks for joining us today.\""),
        "{second}"
    );
    assert!(!second.contains("Let me"), "{second}");
}

/// Refuses any sentence containing "BROKEN"; speaks the rest with the real engine.
struct RefusesMarkedSentences(Arc<dyn Synthesizer>);

impl Synthesizer for RefusesMarkedSentences {
    fn synthesize(
        &self,
        text: String,
        cancel: CancellationToken,
        urgency: Urgency,
    ) -> BoxFuture<'static, Result<Speech, TtsError>> {
        if text.contains("BROKEN") {
            Box::pin(async { Err(TtsError::Synthesis(-1)) })
        } else {
            self.0.synthesize(text, cancel, urgency)
        }
    }

    fn name(&self) -> &'static str {
        "refuses-marked"
    }

    fn voice(&self) -> String {
        self.0.voice()
    }
}

/// One unspeakable sentence is skipped and reported once; the rest of the answer is spoken
/// and the turn completes. An answer of which nothing can be spoken fails with `TTS_ERROR`,
/// still reported once, and the call goes on.
#[tokio::test]
async fn tts_failures_skip_the_sentence_or_fail_the_turn() {
    let url = fake_llm(|_, request| {
        FakeReply::Send(sse_reply(
            if request.contains("all of it") {
                "A BROKEN start. And a BROKEN end."
            } else {
                "First comes this. Then a BROKEN one. Another BROKEN one. Last comes that."
            },
            true,
        ))
    })
    .await;
    let mut ws = call_on(openai_backend(url), |engines| {
        engines.tts = Arc::new(RefusesMarkedSentences(engines.tts.clone()));
    })
    .await;
    let greeting = ws.until(is_done(0)).await;
    let (status, text, _, _) = done_of(&greeting);
    assert_eq!(status, DoneStatus::Completed, "{greeting:?}");
    assert!(text.ends_with("Last comes that."), "{text}");
    let errs = errors(&greeting);
    assert_eq!(errs.len(), 1, "reported once: {errs:?}");
    assert_eq!(errs[0].code, ErrorCode::TtsError);
    assert!(errs[0].recoverable && !errs[0].user_message.is_empty());
    let audio_ms: usize = greeting
        .iter()
        .filter_map(|g| match g {
            Got::Audio(c) => Some(c.samples.len() / 16),
            _ => None,
        })
        .sum();
    assert!(
        audio_ms > 1000,
        "the two good sentences were spoken: {audio_ms} ms"
    );

    ws.send_json(json!({"type":"input.text","text":"Say all of it."}))
        .await;
    let next = ws.until(is_done(1)).await;
    assert_eq!(done_of(&next).0, DoneStatus::Failed, "{next:?}");
    let errs = errors(&next);
    assert_eq!(errs.len(), 1, "reported once: {errs:?}");
    assert_eq!(errs[0].code, ErrorCode::TtsError);
    assert_alive(&mut ws).await;
}

/// Token usage, when the server reports it, is in `response.done` (and so in events.jsonl).
#[tokio::test]
async fn reported_token_usage_is_in_response_done() {
    let url = fake_llm(|_, _| {
        FakeReply::Send(sse_raw(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hello.\"}}]}\n\n\
             data: {\"choices\":[],\"usage\":{\"prompt_tokens\":51,\"completion_tokens\":2}}\n\n\
             data: [DONE]\n\n",
        ))
    })
    .await;
    let mut ws = call_on(openai_backend(url), |_| {}).await;
    let greeting = ws.until(is_done(0)).await;
    let usage = greeting.iter().find_map(|g| match g {
        Got::Event(ServerMessage::ResponseDone { usage, .. }) => Some(*usage),
        _ => None,
    });
    assert_eq!(
        usage.flatten(),
        Some(protocol::TokenUsage {
            prompt_tokens: 51,
            completion_tokens: 2
        })
    );
}

/// An LLM server that refuses connections
/// gives `LLM_ERROR` and `response.done` failed, and the call takes the next turn.
#[tokio::test]
async fn failing_llm_fails_the_turn_and_the_call_goes_on() {
    // Port 9 on loopback: nothing listens there, so every request is refused at once.
    let addr = crate::util::spawn_gateway(openai_backend("http://127.0.0.1:9/v1".into())).await;
    let mut ws = TestCall::open(addr).await;
    let started = ws.start(16000, 1, 16000).await;
    let greeting = ws.until(is_done(0)).await;
    assert_eq!(done_of(&greeting).0, DoneStatus::Failed);
    let err = greeting.iter().find_map(|g| match g {
        Got::Event(ServerMessage::Error(e)) => Some(e.clone()),
        _ => None,
    });
    let err = err.expect("an error event");
    assert_eq!(err.code, protocol::ErrorCode::LlmError);
    assert!(err.recoverable && !err.user_message.is_empty());
    ws.send_json(json!({"type":"input.text","text":"Hello?"}))
        .await;
    let seen = ws.until(is_done(1)).await;
    assert_eq!(done_of(&seen).0, DoneStatus::Failed);
    // The call is alive: ping answers.
    ws.send_json(json!({"type":"ping","t":7})).await;
    ws.until(|e| matches!(e, ServerMessage::Pong { .. })).await;
    // Everything the server said is in the call's events.jsonl.
    let session_id = session_id_of(&started);
    ws.send_json(json!({"type":"session.end"})).await;
    ws.until(|e| matches!(e, ServerMessage::SessionEnded { .. }))
        .await;
    let log = std::env::temp_dir()
        .join("callgate-test-calls")
        .join(session_id)
        .join("events.jsonl");
    let mut text = String::new();
    for _ in 0..50 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("session.ended") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for kind in [
        "session.started",
        "response.done",
        "\"LLM_ERROR\"",
        "pong",
        "session.ended",
    ] {
        assert!(text.contains(kind), "{kind} missing from {}", log.display());
    }
}

/// A model that stalls mid-stream fails the turn after the between-token limit, with the
/// text already streamed kept, and the call goes on. The fake server here is a test double
/// on purpose: it is the only way to stall a model on demand.
#[tokio::test]
async fn stalled_llm_stream_fails_the_turn_after_the_token_timeout() {
    // One token, then nothing: a stalled model.
    let url = fake_llm(|_, _| FakeReply::SendThenStall(sse_reply("Hello there.", false))).await;
    let addr = crate::util::spawn_gateway(callgate::config::ServeSettings {
        llm_token_timeout_s: Some(1.0),
        ..openai_backend(url)
    })
    .await;
    let mut ws = TestCall::open(addr).await;
    ws.start(16000, 1, 16000).await;
    let started_at = std::time::Instant::now();
    let greeting = ws.until(is_done(0)).await;
    let (status, text, _, _) = done_of(&greeting);
    assert_eq!(status, DoneStatus::Failed);
    assert_eq!(text, "Hello there.", "the streamed text is kept");
    assert!(
        started_at.elapsed() < Duration::from_secs(10),
        "failed after the 1 s limit"
    );
    let err = greeting.iter().find_map(|g| match g {
        Got::Event(ServerMessage::Error(e)) => Some(e.clone()),
        _ => None,
    });
    let err = err.expect("an error event");
    assert_eq!(err.code, protocol::ErrorCode::LlmError);
    assert!(err.message.contains("token"), "{}", err.message);
    ws.send_json(json!({"type":"ping","t":1})).await;
    ws.until(|e| matches!(e, ServerMessage::Pong { .. })).await;
}

/// An overloaded model (503, Retry-After honoured) is retried with `response.started` status
/// `retrying`, then the turn completes. A fault-injection server again: overload on demand.
#[tokio::test]
async fn busy_llm_is_retried_then_answers() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let url = fake_llm(move |n, _| {
        counter.fetch_add(1, Ordering::SeqCst);
        FakeReply::Send(if n < 2 {
            "HTTP/1.1 503 Service Unavailable\r\nretry-after: 0\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy".into()
        } else {
            sse_reply("Welcome to the call.", true)
        })
    })
    .await;
    let addr = crate::util::spawn_gateway(openai_backend(url)).await;
    let mut ws = TestCall::open(addr).await;
    ws.start(16000, 1, 16000).await;
    let greeting = ws.until(is_done(0)).await;
    let retrying = greeting
        .iter()
        .filter(|g| {
            matches!(
                g,
                Got::Event(ServerMessage::ResponseStarted {
                    status: protocol::ResponseStatus::Retrying,
                    ..
                })
            )
        })
        .count();
    assert_eq!(retrying, 2, "{greeting:?}");
    // The server's Retry-After (0 s here) sets the wait.
    assert!(greeting.iter().any(|g| matches!(
        g,
        Got::Event(ServerMessage::ResponseStarted {
            eta_ms: Some(0),
            ..
        })
    )));
    let (status, text, _, _) = done_of(&greeting);
    assert_eq!(status, DoneStatus::Completed);
    assert_eq!(text, "Welcome to the call.");
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

/// One call's stalled model does not slow another call: calls share the backend but not
/// its stalls. The fake server stalls every request whose prompt names the role "STALL".
#[tokio::test]
async fn a_stalled_model_in_one_call_does_not_slow_another() {
    let url = fake_llm(|_, request| {
        if request.contains("STALL") {
            FakeReply::Stall
        } else {
            FakeReply::Send(sse_reply("Hello.", true))
        }
    })
    .await;
    let addr = crate::util::spawn_gateway(openai_backend(url)).await;
    let mut stalled = TestCall::open(addr).await;
    stalled
        .send_json(
            json!({"type":"session.start","input":{"sampleRate":16000},"context":{"role":"STALL"}}),
        )
        .await;
    stalled
        .until(|e| matches!(e, ServerMessage::ResponseStarted { .. }))
        .await;
    // The other call, while the first one's model hangs.
    let mut ok = TestCall::open(addr).await;
    let t = std::time::Instant::now();
    ok.start(16000, 1, 16000).await;
    let greeting = ok.until(is_done(0)).await;
    assert_eq!(done_of(&greeting).0, DoneStatus::Completed);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
}
