//! The OpenAI-Realtime-compatible endpoint end to end: a real server (whisper, scripted
//! interviewer, espeak-ng) on an ephemeral port, driven over real sockets by a small
//! Realtime client here and by the official Python SDK (tests/realtime_sdk.py, in the
//! venv scripts/realtime-sdk makes).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::util::{call_record, espeak_wav, spawn_gateway, speech};

/// Where the shared server writes its calls.
fn calls_dir() -> PathBuf {
    std::env::temp_dir().join("callgate-test-realtime-calls")
}

/// One server for this module's tests, on its own runtime thread.
fn server_addr() -> std::net::SocketAddr {
    static ADDR: OnceLock<std::net::SocketAddr> = OnceLock::new();
    crate::util::shared_gateway(&ADDR, || callgate::config::ServeSettings {
        calls_dir: Some(calls_dir()),
        ..Default::default()
    })
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A Realtime client: JSON events out, JSON events in, each stamped when it arrived (a
/// reader task takes them off the socket as they come, whatever the test is doing).
struct Rt {
    sink: futures_util::stream::SplitSink<Socket, Message>,
    events: tokio::sync::mpsc::UnboundedReceiver<(Instant, Value)>,
    /// The subprotocol the server chose, if any.
    subprotocol: Option<String>,
}

/// Reads `stream` into `events` until it ends; the end is `{"type":"closed","code":N}`.
async fn read_events(
    mut stream: futures_util::stream::SplitStream<Socket>,
    events: tokio::sync::mpsc::UnboundedSender<(Instant, Value)>,
) {
    loop {
        let event = match stream.next().await {
            Some(Ok(Message::Text(t))) => serde_json::from_str(t.as_str()).expect("a JSON event"),
            Some(Ok(Message::Close(frame))) => {
                json!({"type":"closed","code": frame.map(|f| u16::from(f.code))})
            }
            Some(Ok(Message::Binary(_))) => json!({"type":"binary frame (not Realtime)"}),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => json!({"type":"closed","code":null}),
        };
        let closed = event["type"] == "closed";
        if events.send((Instant::now(), event)).is_err() || closed {
            return;
        }
    }
}

impl Rt {
    /// Connects to `/v1/realtime` with these headers; the HTTP status when refused.
    async fn open_with(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> Result<Self, u16> {
        let url = format!("ws://{addr}/v1/realtime?model=gpt-realtime");
        let mut req = url.into_client_request().expect("request");
        for (k, v) in headers {
            let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
                .expect("header name");
            req.headers_mut()
                .insert(name, v.parse().expect("header value"));
        }
        let (ws, reply) = match tokio_tungstenite::connect_async(req).await {
            Ok(connected) => connected,
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => return Err(r.status().as_u16()),
            Err(e) => panic!("connect failed: {e}"),
        };
        let (sink, stream) = ws.split();
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(read_events(stream, tx));
        Ok(Self {
            sink,
            events,
            subprotocol: reply
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }

    /// Connects with an SDK's Bearer key and reads `session.created`.
    async fn open() -> (Self, Value) {
        let mut rt = Self::open_with(server_addr(), &[("authorization", "Bearer local")])
            .await
            .unwrap_or_else(|s| panic!("refused with HTTP {s}"));
        let created = rt.next().await;
        assert_eq!(created["type"], "session.created", "{created}");
        (rt, created)
    }

    async fn send(&mut self, event: Value) {
        self.send_frame(Message::text(event.to_string())).await;
    }

    async fn send_frame(&mut self, frame: Message) {
        self.sink.send(frame).await.expect("send");
    }

    /// The next server event and when it arrived.
    async fn next_stamped(&mut self) -> (Instant, Value) {
        tokio::time::timeout(Duration::from_secs(30), self.events.recv())
            .await
            .expect("the server went quiet for 30 s")
            .unwrap_or_else(|| (Instant::now(), json!({"type":"closed","code":null})))
    }

    /// The next server event, or `{"type":"closed","code":N}`.
    async fn next(&mut self) -> Value {
        self.next_stamped().await.1
    }

    /// Every event up to and including the first of `kind`.
    async fn until(&mut self, kind: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let e = self.next().await;
            let hit = e["type"] == kind;
            assert!(
                e["type"] != "closed" || hit,
                "closed before {kind}: {seen:?}"
            );
            seen.push(e);
            if hit {
                return seen;
            }
        }
    }

    /// Appends `samples` (24 kHz PCM) in 100 ms events.
    async fn append(&mut self, samples: &[i16]) {
        for chunk in samples.chunks(2400) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
            let audio = base64::engine::general_purpose::STANDARD.encode(bytes);
            self.send(json!({"type":"input_audio_buffer.append","audio":audio}))
                .await;
        }
    }

    /// Appends spoken `text` and `silence_ms` of silence after it.
    async fn say(&mut self, text: &str, silence_ms: usize) {
        let mut samples = speech(text, 24_000, 1);
        samples.extend(std::iter::repeat_n(0i16, silence_ms * 24));
        self.append(&samples).await;
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect()
}

fn first<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", types(events)))
}

/// The callgate session id behind a Realtime `sess_<id>`.
fn session_id(created: &Value) -> String {
    let id = created["session"]["id"].as_str().unwrap_or_default();
    id.strip_prefix("sess_").unwrap_or(id).to_owned()
}

#[tokio::test]
async fn session_is_created_updated_and_survives_bad_events() {
    let (mut rt, created) = Rt::open().await;
    let session = &created["session"];
    assert_eq!(session["audio"]["input"]["format"]["rate"], 24000);
    assert_eq!(
        session["audio"]["input"]["turn_detection"]["type"],
        "server_vad"
    );
    rt.send(
        json!({"type":"session.update","event_id":"u1","session":{"type":"realtime",
        "instructions":"You are brief.",
        "audio":{"input":{"turn_detection":{"type":"semantic_vad","eagerness":"high"}}}}}),
    )
    .await;
    let updated = rt.next().await;
    assert_eq!(updated["type"], "session.updated", "{updated}");
    assert_eq!(updated["session"]["instructions"], "You are brief.");
    assert_eq!(
        updated["session"]["audio"]["input"]["turn_detection"]["eagerness"],
        "high"
    );
    let hostile = [
        json!({"type":"session.update","event_id":"b1",
            "session":{"audio":{"input":{"format":{"type":"audio/pcm","rate":16000}}}}}),
        json!({"type":"no.such.event","event_id":"b2"}),
        json!({"type":"input_audio_buffer.append","event_id":"b3","audio":"%%%"}),
        json!({"type":"response.cancel","event_id":"b4"}),
        json!({"type":"conversation.item.create","event_id":"b5","item":{"type":"function_call"}}),
        json!({"type":"conversation.item.retrieve","event_id":"b6","item_id":"nope"}),
        json!({"type":"input_audio_buffer.commit","event_id":"b7"}),
        // Three bytes of 16-bit PCM.
        json!({"type":"input_audio_buffer.append","event_id":"b8","audio":"AAEC"}),
        json!({"type":5,"event_id":"b9"}),
        json!({"type":"session.update","event_id":"b10","session":{"instructions":5}}),
        json!({"type":"session.update","event_id":"b11","session":"realtime"}),
        json!({"type":"conversation.item.truncate","event_id":"b12","item_id":"item_asst_1"}),
        json!({"type":"response.create","event_id":"b13","response":{"instructions":[1]}}),
    ];
    for event in hostile {
        let id = event["event_id"].clone();
        rt.send(event).await;
        let e = rt.next().await;
        assert_eq!(e["type"], "error", "{e}");
        assert_eq!(e["error"]["event_id"], id, "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    rt.send_frame(Message::text("{not json")).await;
    assert_eq!(rt.next().await["error"]["code"], "invalid_json");
    rt.send_frame(Message::binary(vec![1u8, 2, 3])).await;
    assert_eq!(rt.next().await["type"], "error");
    assert_eq!(
        updated_instructions(&mut rt).await,
        "You are brief.",
        "a refused update changed the session"
    );
    // The session goes on.
    rt.send(json!({"type":"session.update","session":{"output_modalities":["text"]}}))
        .await;
    let updated = rt.next().await;
    assert_eq!(
        updated["session"]["output_modalities"][0], "text",
        "{updated}"
    );
}

/// The session's instructions, as an empty `session.update` echoes them.
async fn updated_instructions(rt: &mut Rt) -> String {
    rt.send(json!({"type":"session.update","session":{}})).await;
    let updated = rt.until("session.updated").await;
    let session = &updated.last().expect("an event")["session"];
    session["instructions"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_event_over_1_mib_closes_with_1009_and_the_server_goes_on() {
    let (mut rt, _) = Rt::open().await;
    let audio = "A".repeat(1 << 20);
    let event = json!({"type":"input_audio_buffer.append","audio":audio});
    // The server may close before the frame is all sent: a failed send is that close.
    let _ = rt.sink.send(Message::text(event.to_string())).await;
    let closed = loop {
        let e = rt.next().await;
        if e["type"] == "closed" {
            break e;
        }
    };
    assert_eq!(closed["code"], 1009, "{closed}");
    // Another session on the same server is unaffected.
    let (mut rt, _) = Rt::open().await;
    assert_eq!(updated_instructions(&mut rt).await, "");
}

#[tokio::test]
async fn a_spoken_turn_with_server_vad_is_transcribed_and_answered() {
    let (mut rt, created) = Rt::open().await;
    rt.send(json!({"type":"session.update","session":{
        "audio":{"input":{"transcription":{"model":"whisper-1"}}}}}))
        .await;
    rt.until("session.updated").await;
    rt.say("I have five years of experience with Rust.", 1500)
        .await;
    let seen = rt.until("response.done").await;
    let order = types(&seen);
    let at = |k: &str| {
        order
            .iter()
            .position(|t| *t == k)
            .unwrap_or_else(|| panic!("no {k} in {order:?}"))
    };
    assert!(at("input_audio_buffer.speech_started") < at("input_audio_buffer.speech_stopped"));
    assert!(at("input_audio_buffer.speech_stopped") < at("input_audio_buffer.committed"));
    assert!(at("input_audio_buffer.committed") < at("response.created"));
    assert!(at("response.created") < at("response.output_audio.delta"));
    let heard = first(
        &seen,
        "conversation.item.input_audio_transcription.completed",
    );
    let user_item = first(&seen, "input_audio_buffer.committed")["item_id"].clone();
    assert_eq!(heard["item_id"], user_item);
    let transcript = heard["transcript"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(transcript.contains("experience"), "{transcript}");
    let done = &first(&seen, "response.done")["response"];
    assert_eq!(done["status"], "completed", "{done}");
    let said = first(&seen, "response.output_audio_transcript.done")["transcript"].clone();
    assert_eq!(done["output"][0]["content"][0]["transcript"], said);
    let audio_bytes: usize = seen
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .map(|e| {
            let b64 = e["delta"].as_str().unwrap_or_default();
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("base64")
                .len()
        })
        .sum();
    assert!(
        audio_bytes > 24_000 * 2,
        "under a second of audio: {audio_bytes} bytes"
    );
    assert_eq!(audio_bytes % 2, 0);
    drop(rt);
    // The call's record is callgate.v1's, as for any call.
    let record = call_record(&calls_dir(), &session_id(&created)).await;
    let kinds: Vec<_> = record
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    for kind in [
        "call.meta",
        "session.started",
        "transcript",
        "response.done",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in the record: {kinds:?}");
    }
}

#[tokio::test]
async fn a_manual_commit_is_answered_on_response_create() {
    let (mut rt, _) = Rt::open().await;
    rt.send(json!({"type":"session.update","session":{
        "audio":{"input":{"turn_detection":null,"transcription":{"model":"whisper-1"}}}}}))
        .await;
    rt.until("session.updated").await;
    rt.say("I led a team of four engineers.", 300).await;
    rt.send(json!({"type":"input_audio_buffer.commit"})).await;
    let committed = rt.until("conversation.item.added").await;
    let item_id = first(&committed, "input_audio_buffer.committed")["item_id"].clone();
    // Held until asked for: nothing more comes.
    let quiet = tokio::time::timeout(Duration::from_millis(700), rt.next()).await;
    assert!(quiet.is_err(), "the held turn said {:?}", quiet.ok());
    rt.send(json!({"type":"response.create"})).await;
    let seen = rt.until("response.done").await;
    let heard = first(
        &seen,
        "conversation.item.input_audio_transcription.completed",
    );
    assert_eq!(heard["item_id"], item_id);
    assert!(
        heard["transcript"]
            .as_str()
            .is_some_and(|t| t.to_lowercase().contains("team"))
    );
    assert_eq!(
        first(&seen, "response.done")["response"]["status"],
        "completed"
    );
    // An empty buffer cannot be committed; the session goes on.
    rt.send(json!({"type":"input_audio_buffer.commit","event_id":"c2"}))
        .await;
    let e = rt.next().await;
    assert_eq!(e["error"]["code"], "input_audio_buffer_commit_empty", "{e}");
    rt.send(json!({"type":"input_audio_buffer.clear"})).await;
    assert_eq!(rt.next().await["type"], "input_audio_buffer.cleared");
}

#[tokio::test]
async fn a_text_only_response_answers_a_typed_item() {
    let (mut rt, _) = Rt::open().await;
    rt.send(
        json!({"type":"session.update","session":{"output_modalities":["text"],
        "audio":{"input":{"turn_detection":null}}}}),
    )
    .await;
    rt.until("session.updated").await;
    rt.send(
        json!({"type":"conversation.item.create","item":{"type":"message","role":"user",
        "content":[{"type":"input_text","text":"I mostly write backend services in Rust."}]}}),
    )
    .await;
    let added = rt.until("conversation.item.done").await;
    assert_eq!(
        types(&added),
        ["conversation.item.added", "conversation.item.done"]
    );
    rt.send(json!({"type":"response.create"})).await;
    let seen = rt.until("response.done").await;
    assert!(
        !types(&seen).contains(&"response.output_audio.delta"),
        "{:?}",
        types(&seen)
    );
    let text: String = seen
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    assert!(!text.trim().is_empty());
    assert_eq!(
        first(&seen, "response.output_text.done")["text"],
        text.as_str()
    );
    let done = &first(&seen, "response.done")["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output_modalities"][0], "text");
}

#[tokio::test]
async fn an_idle_timeout_commits_the_silence_and_answers_it() {
    const IDLE_MS: u64 = 1500;
    let (mut rt, _) = Rt::open().await;
    rt.send(
        json!({"type":"session.update","session":{"output_modalities":["text"],
        "audio":{"input":{"transcription":{"model":"whisper-1"},
            "turn_detection":{"type":"server_vad","idle_timeout_ms":IDLE_MS}}}}}),
    )
    .await;
    let updated = rt.until("session.updated").await;
    assert_eq!(
        updated.last().expect("event")["session"]["audio"]["input"]["turn_detection"]["idle_timeout_ms"],
        IDLE_MS
    );
    rt.send(
        json!({"type":"conversation.item.create","item":{"type":"message","role":"user",
        "content":[{"type":"input_text","text":"I mostly write backend services in Rust."}]}}),
    )
    .await;
    rt.send(json!({"type":"response.create"})).await;
    rt.until("response.done").await;
    // Silence in 100 ms appends at about real time: the timeout counts on the input audio
    // from the end of the answer.
    let silence = vec![0i16; 2400];
    let mut seen = Vec::new();
    for _ in 0..60 {
        rt.append(&silence).await;
        if let Ok(e) = tokio::time::timeout(Duration::from_millis(100), rt.next()).await {
            seen.push(e);
        }
        if types(&seen).contains(&"input_audio_buffer.timeout_triggered") {
            break;
        }
    }
    let triggered = first(&seen, "input_audio_buffer.timeout_triggered").clone();
    let span = triggered["audio_end_ms"].as_u64().unwrap_or(0)
        - triggered["audio_start_ms"].as_u64().unwrap_or(u64::MAX);
    assert!((IDLE_MS..IDLE_MS + 300).contains(&span), "{triggered}");
    // The silent span is committed as an empty audio item, then answered.
    seen.extend(rt.until("response.done").await);
    let committed = first(&seen, "input_audio_buffer.committed");
    assert_eq!(committed["item_id"], triggered["item_id"], "{committed}");
    let item = first(&seen, "conversation.item.done");
    assert_eq!(item["item"]["id"], triggered["item_id"]);
    assert_eq!(item["item"]["content"][0]["type"], "input_audio");
    let done = &first(&seen, "response.done")["response"];
    assert_eq!(done["status"], "completed", "{done}");
    assert!(
        !types(&seen).contains(&"conversation.item.input_audio_transcription.completed"),
        "nothing was said: {:?}",
        types(&seen)
    );
}

#[tokio::test]
async fn with_create_response_false_a_vad_turn_waits_for_response_create() {
    let (mut rt, _) = Rt::open().await;
    rt.send(json!({"type":"session.update","session":{"audio":{"input":{
        "transcription":{"model":"whisper-1"},
        "turn_detection":{"type":"server_vad","create_response":false}}}}}))
        .await;
    let updated = rt.until("session.updated").await;
    let td = &updated.last().expect("event")["session"]["audio"]["input"]["turn_detection"];
    assert_eq!(td["create_response"], false, "{td}");
    rt.say("I led a team of four engineers.", 1500).await;
    let committed = rt.until("conversation.item.added").await;
    let item_id = first(&committed, "input_audio_buffer.committed")["item_id"].clone();
    // The server ended the turn, and holds it until asked.
    let quiet = tokio::time::timeout(Duration::from_millis(1500), rt.next()).await;
    assert!(quiet.is_err(), "the held turn said {:?}", quiet.ok());
    // Speaking on does not lose the held turn: it joins the conversation unanswered.
    rt.say("We shipped it in six weeks.", 1500).await;
    let mut seen = rt.until("conversation.item.added").await;
    let second_id = seen
        .iter()
        .filter(|e| e["type"] == "input_audio_buffer.committed")
        .last()
        .map(|e| e["item_id"].clone())
        .unwrap_or_else(|| panic!("the second turn was not committed: {:?}", types(&seen)));
    assert!(
        !types(&seen).contains(&"response.created"),
        "{:?}",
        types(&seen)
    );
    rt.send(json!({"type":"response.create"})).await;
    seen.extend(rt.until("response.done").await);
    let transcript_of = |id: &Value| {
        seen.iter()
            .find(|e| {
                e["type"] == "conversation.item.input_audio_transcription.completed"
                    && e["item_id"] == *id
            })
            .and_then(|e| e["transcript"].as_str())
            .map(str::to_lowercase)
            .unwrap_or_default()
    };
    assert!(
        transcript_of(&item_id).contains("team"),
        "{:?}",
        types(&seen)
    );
    assert!(
        transcript_of(&second_id).contains("weeks"),
        "{:?}",
        types(&seen)
    );
    let done: Vec<_> = seen
        .iter()
        .filter(|e| e["type"] == "response.done")
        .collect();
    assert_eq!(done.len(), 1, "one answer for both turns");
    assert_eq!(done[0]["response"]["status"], "completed");
}

#[tokio::test]
async fn with_interrupt_response_false_speech_over_a_response_is_answered_after_it() {
    let (mut rt, _) = Rt::open().await;
    rt.send(json!({"type":"session.update","session":{"audio":{"input":{
        "transcription":{"model":"whisper-1"},
        "turn_detection":{"type":"server_vad","interrupt_response":false}}}}}))
        .await;
    rt.until("session.updated").await;
    rt.send(
        json!({"type":"conversation.item.create","item":{"type":"message","role":"user",
        "content":[{"type":"input_text","text":"Please tell me about the role in detail."}]}}),
    )
    .await;
    rt.until("conversation.item.done").await;
    rt.send(json!({"type":"response.create"})).await;
    let opened = rt.until("response.output_audio.delta").await;
    let response_id = first(&opened, "response.created")["response"]["id"].clone();
    let mut speech_and_silence =
        speech("Sorry, can I ask about the salary range first?", 24_000, 1);
    speech_and_silence.extend(std::iter::repeat_n(0i16, 24 * 1200));
    rt.append(&speech_and_silence).await;
    let mut seen = Vec::new();
    let done = loop {
        let e = rt.next().await;
        assert!(e["type"] != "closed", "closed");
        seen.push(e.clone());
        if e["type"] == "response.done" && e["response"]["id"] == response_id {
            break e;
        }
    };
    // Heard whole, though the candidate spoke over it.
    assert_eq!(done["response"]["status"], "completed", "{done}");
    // The next response begins only after this one's response.done.
    assert!(
        !seen.iter().any(|e| e["type"] == "response.created"),
        "{:?}",
        types(&seen)
    );
    assert!(
        seen.iter()
            .any(|e| e["type"] == "input_audio_buffer.speech_started"),
        "{:?}",
        types(&seen)
    );
    // The speech is the next turn, answered once the response is done.
    let next = rt.until("response.done").await;
    let heard = first(
        &next,
        "conversation.item.input_audio_transcription.completed",
    );
    assert!(
        heard["transcript"]
            .as_str()
            .is_some_and(|t| t.to_lowercase().contains("salary")),
        "{heard}"
    );
    let second = &next.last().expect("event")["response"];
    assert_ne!(second["id"], response_id);
    assert_eq!(second["status"], "completed", "{second}");
}

#[tokio::test]
async fn speech_over_a_response_cancels_it_as_turn_detected() {
    let (mut rt, _) = Rt::open().await;
    rt.send(
        json!({"type":"conversation.item.create","item":{"type":"message","role":"user",
        "content":[{"type":"input_text","text":"Please tell me about the role in detail."}]}}),
    )
    .await;
    rt.until("conversation.item.done").await;
    rt.send(json!({"type":"response.create"})).await;
    let opened = rt.until("response.output_audio.delta").await;
    let response_id = first(&opened, "response.created")["response"]["id"].clone();
    let item_id = first(&opened, "response.output_item.added")["item"]["id"].clone();
    let mut speech_and_silence =
        speech("Sorry, can I ask about the salary range first?", 24_000, 1);
    speech_and_silence.extend(std::iter::repeat_n(0i16, 24 * 1200));
    let onset = Instant::now();
    rt.append(&speech_and_silence).await;
    let mut last_delta = Duration::ZERO;
    let done = loop {
        let (at, e) = rt.next_stamped().await;
        if e["type"] == "response.output_audio.delta" && e["response_id"] == response_id {
            last_delta = at.saturating_duration_since(onset);
        }
        if e["type"] == "response.done" && e["response"]["id"] == response_id {
            break e;
        }
        assert!(e["type"] != "closed", "closed");
    };
    assert_eq!(done["response"]["status"], "cancelled", "{done}");
    assert_eq!(
        done["response"]["status_details"]["reason"],
        "turn_detected"
    );
    eprintln!("barge-in: last audio delta of the cancelled response {last_delta:?} after onset");
    assert!(
        last_delta < Duration::from_millis(250),
        "audio {last_delta:?} after onset"
    );
    // The client tells what it played: the history keeps that much.
    rt.send(
        json!({"type":"conversation.item.truncate","item_id":item_id,
        "content_index":0,"audio_end_ms":300}),
    )
    .await;
    let truncated = rt.until("conversation.item.truncated").await;
    assert_eq!(truncated.last().expect("event")["audio_end_ms"], 300);
    // Beyond the audio sent, and an item that does not exist: OpenAI's errors, and the
    // session goes on.
    let mut seen = Vec::new();
    for (item_id, code, message) in [
        (
            item_id.as_str().unwrap_or_default(),
            "invalid_value",
            "Audio content of",
        ),
        ("item_asst_999", "item_not_found", "no item"),
    ] {
        rt.send(
            json!({"type":"conversation.item.truncate","item_id":item_id,
            "content_index":0,"audio_end_ms":600_000}),
        )
        .await;
        seen.extend(rt.until("error").await);
        let error = &seen.last().expect("event")["error"];
        assert_eq!(error["code"], code, "{error}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message)),
            "{error}"
        );
    }
    // The speech that interrupted is the next turn, answered in turn.
    let next = if seen.iter().any(|e| e["type"] == "response.done") {
        seen
    } else {
        rt.until("response.done").await
    };
    assert_eq!(
        first(&next, "response.done")["response"]["status"],
        "completed"
    );
}

#[tokio::test]
async fn realtime_keys_are_callgate_tokens_when_the_server_checks_them() {
    const SECRET: &str = "realtime-secret-0123456789";
    let addr = spawn_gateway(callgate::config::ServeSettings {
        jwt_secret: Some(SECRET.into()),
        ..Default::default()
    })
    .await;
    let token =
        callgate::server::auth::mint(SECRET, "ada", Duration::from_secs(600)).expect("mint");
    // An SDK's Bearer key.
    let bearer = format!("Bearer {token}");
    let mut rt = Rt::open_with(addr, &[("authorization", &bearer)])
        .await
        .expect("accepted");
    assert_eq!(rt.next().await["type"], "session.created");
    // A browser's subprotocols.
    let offered = format!("realtime, openai-insecure-api-key.{token}");
    let mut rt = Rt::open_with(addr, &[("sec-websocket-protocol", &offered)])
        .await
        .expect("accepted");
    assert_eq!(rt.subprotocol.as_deref(), Some("realtime"));
    assert_eq!(rt.next().await["type"], "session.created");
    // A key that is not a callgate token.
    let refused = Rt::open_with(addr, &[("authorization", "Bearer sk-not-a-token")]).await;
    assert_eq!(refused.err(), Some(401));
    // No key at all: the session is refused in the protocol.
    let mut rt = Rt::open_with(addr, &[]).await.expect("upgraded");
    let e = rt.next().await;
    assert_eq!(
        (e["type"].as_str(), e["error"]["code"].as_str()),
        (Some("error"), Some("invalid_api_key")),
        "{e}"
    );
    assert_eq!(rt.next().await["code"], 1008);
}

/// The venv scripts/realtime-sdk makes, with the pinned `openai[realtime]`.
fn sdk_python() -> PathBuf {
    let cache = std::env::var_os("CALLGATE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/callgate")
        });
    let python = cache.join("realtime-venv/bin/python");
    assert!(
        python.exists(),
        "no Realtime SDK venv at {}: run scripts/realtime-sdk --prepare (scripts/test does)",
        python.display()
    );
    python
}

#[tokio::test]
async fn the_official_python_sdk_drives_a_call() {
    let python = sdk_python();
    let addr = server_addr();
    let answer = espeak_wav(
        "I have been writing Rust for five years.",
        "en-us",
        24_000,
        1,
    );
    let interruption = espeak_wav(
        "Sorry, can I ask about the salary range first?",
        "en-us",
        24_000,
        1,
    );
    let script = crate::util::repo_root().join("tests/realtime_sdk.py");
    let run = tokio::process::Command::new(python)
        .arg(script)
        .arg(format!("ws://{addr}/v1"))
        .arg(&answer)
        .arg(&interruption)
        .kill_on_drop(true)
        .output();
    // A hang guard, not a speed check (the script fails itself after 30 s of quiet).
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the SDK script finished within 300 s")
        .expect("the SDK script ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the SDK script failed");
    for check in [
        "server_vad",
        "manual_commit",
        "barge_in",
        "truncate",
        "text_only",
        "bad_event",
    ] {
        assert!(stdout.contains(&format!("ok {check}")), "no 'ok {check}'");
    }
}

/// `tests/realtime-node`, with the official Node SDK installed from its lockfile.
fn node_sdk_dir() -> PathBuf {
    let dir = crate::util::repo_root().join("tests/realtime-node");
    assert!(
        dir.join("node_modules/openai").exists(),
        "no Node SDK in {}: run npm ci --prefix tests/realtime-node (scripts/test does)",
        dir.display()
    );
    dir
}

#[tokio::test]
async fn the_official_node_sdk_drives_a_call() {
    let dir = node_sdk_dir();
    let addr = server_addr();
    let answer = espeak_wav("I have led a team of four engineers.", "en-us", 24_000, 1);
    let run = tokio::process::Command::new("node")
        .arg(dir.join("sdk.mjs"))
        .arg(addr.to_string())
        .arg(&answer)
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    // A hang guard, not a speed check (the script fails itself after 30 s of quiet).
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the Node SDK script finished within 300 s")
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the Node SDK script failed");
    for check in ["node_bad_event", "node_text_only", "node_spoken_turn"] {
        assert!(stdout.contains(&format!("ok {check}")), "no 'ok {check}'");
    }
}
