//! A real call through a real LLM: llama.cpp's OpenAI-compatible server (scripts/llm-server,
//! SmolLM2-135M) behind the gateway's `openai` backend, with a barge-in during generation.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use callgate::protocol::{self, DoneStatus, ServerMessage};

struct LlmServer(Child);

impl Drop for LlmServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
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
    let child = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/llm-server"))
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start scripts/llm-server");
    let server = LlmServer(child);
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
    panic!("the LLM server did not start within 60 s");
}

#[tokio::test]
async fn spoken_call_through_llama_cpp_with_barge_in_during_generation() {
    let (_llm, url) = start_llm().await;
    let addr = crate::util::spawn_gateway(callgate::config::ServeSettings {
        llm_model: Some("smollm2".into()),
        ..crate::util::openai_backend(url)
    })
    .await;

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/call"))
        .await
        .expect("connect");
    ws.send(Message::text(
        json!({"type":"session.start","input":{"sampleRate":16000},"output":{"sampleRate":16000}})
            .to_string(),
    ))
    .await
    .expect("send");

    // Reads frames until `stop` says so; returns (events, audio frames as (turn, index)).
    let mut events: Vec<ServerMessage> = Vec::new();
    let mut frames: Vec<(u32, usize)> = Vec::new();
    async fn step(
        ws: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        events: &mut Vec<ServerMessage>,
        frames: &mut Vec<(u32, usize)>,
    ) {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("the server went quiet for 60 s")
            .expect("open")
            .expect("frame");
        match msg {
            Message::Text(t) => {
                events.push(protocol::parse_server_message(t.as_str()).expect("json"))
            }
            Message::Binary(b) => {
                let c = protocol::decode_output_frame(&b).expect("frame");
                frames.push((c.turn, events.len()));
            }
            _ => {}
        }
    }
    // The model's greeting: wait for its first audio (tokens -> sentence -> espeak-ng).
    while !frames.iter().any(|(t, _)| *t == 0) {
        step(&mut ws, &mut events, &mut frames).await;
        if let Some(ServerMessage::ResponseDone { turn_id: 0, .. }) = events.last() {
            panic!("the greeting ended before it could be interrupted: {events:?}");
        }
    }
    let deltas = events
        .iter()
        .filter(|e| matches!(e, ServerMessage::ResponseTextDelta { turn_id: 0, .. }))
        .count();
    assert!(deltas > 0, "streamed tokens from the model");

    // Barge in while the model is still generating/speaking.
    let fixture = std::env::temp_dir().join("callgate-llm-bargein.wav");
    let ok = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&fixture)
        .arg("Sorry, can I stop you there? I have five years of experience with Rust.")
        .status()
        .expect("espeak-ng");
    assert!(ok.success());
    let clip = callgate::audio::wav::read_mono_at(&fixture, 16000).expect("wav");
    let mut audio = callgate::audio::f32_to_i16(&clip.samples);
    audio.extend(vec![0i16; 24000]);
    for (seq, chunk) in audio.chunks(320).enumerate() {
        ws.send(Message::binary(protocol::encode_input_frame(
            seq as u32, chunk,
        )))
        .await
        .expect("send");
    }
    // Until the new turn's answer is audible.
    while !frames.iter().any(|(t, _)| *t == 1) {
        step(&mut ws, &mut events, &mut frames).await;
    }
    let done0 = events
        .iter()
        .position(|e| matches!(e, ServerMessage::ResponseDone { turn_id: 0, .. }))
        .expect("greeting's response.done");
    assert!(matches!(
        events[done0],
        ServerMessage::ResponseDone {
            status: DoneStatus::Cancelled,
            ..
        }
    ));
    assert!(
        !frames.iter().any(|(t, at)| *t == 0 && *at > done0),
        "audio of the cancelled turn followed its response.done"
    );
    let transcript = events
        .iter()
        .find_map(|e| match e {
            ServerMessage::Transcript {
                turn_id: 1,
                text,
                is_final: true,
                ..
            } => Some(text.to_lowercase()),
            _ => None,
        })
        .expect("final transcript");
    assert!(transcript.contains("experience"), "{transcript}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ServerMessage::ResponseTextDelta { turn_id: 1, .. }))
    );
    ws.send(Message::text(r#"{"type":"session.end"}"#))
        .await
        .expect("send");
}
