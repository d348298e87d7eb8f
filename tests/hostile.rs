//! Hostile input against the real `callgate serve` process: every bad input in
//! PROTOCOL.md gets its documented error, the call goes on, and the process survives.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::TestCall;

pub(crate) struct ServerProcess {
    pub(crate) child: Child,
    pub(crate) addr: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real binary on an ephemeral port and reads the port from its log.
fn spawn_server() -> ServerProcess {
    spawn_server_with("/tmp/callgate-hostile-calls", &[])
}

/// As [`spawn_server`], with this calls folder and extra `serve` flags.
pub(crate) fn spawn_server_with(calls_dir: &str, extra: &[&str]) -> ServerProcess {
    let root = env!("CARGO_MANIFEST_DIR");
    let model = format!("{root}/models/ggml-tiny.en.bin");
    assert!(
        std::path::Path::new(&model).is_file(),
        "{model} is missing: run scripts/fetch-models (scripts/test does this)"
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_callgate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--model",
            &model,
            &format!("--calls-dir={calls_dir}"),
        ])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn callgate serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("ws://") {
                let rest = &line[i + 5..];
                let addr: String = rest.chars().take_while(|c| *c != '/').collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server announced its address");
    ServerProcess { child, addr }
}

/// Events of the greeting's stream and acks: the tests look for replies.
const GREETING_STREAM: &[&str] = &[
    "response.started",
    "response.text.delta",
    "response.audio.chunk",
    "response.done",
    "audio.ack",
];

/// The next reply (or `{"type":"closed","code":N}`), within 20 s.
async fn recv_json(ws: &mut TestCall) -> Value {
    ws.next_json(GREETING_STREAM).await
}

async fn expect_error(ws: &mut TestCall, code: &str, mentions: &str) -> Value {
    let v = recv_json(ws).await;
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["recoverable"], true, "{v}");
    assert!(
        v["userMessage"].as_str().is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(mentions),
        "{message:?} should mention {mentions:?}"
    );
    v
}

fn frame(kind: u8, flags: u8, seq: u32, turn: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![kind, flags, 0, 0];
    f.extend_from_slice(&seq.to_le_bytes());
    f.extend_from_slice(&turn.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

#[tokio::test]
async fn every_bad_input_gets_its_error_and_the_server_survives() {
    let mut server = spawn_server();
    let url = format!("ws://{}/v1/call", server.addr);
    let mut ws = TestCall::open_with(&url, &[])
        .await
        .expect("connect")
        .with_patience(Duration::from_secs(20));

    // Before session.start.
    ws.send_binary(frame(1, 0, 0, 0, &[0; 320])).await;
    expect_error(&mut ws, "BAD_MESSAGE", "session.start first").await;
    ws.send_text("{not json").await;
    expect_error(&mut ws, "BAD_MESSAGE", "JSON").await;
    ws.send_text(r#"{"type":"nope"}"#).await;
    expect_error(&mut ws, "BAD_MESSAGE", "nope").await;
    ws.send_text(r#"{"type":"session.start","input":{"sampleRate":96000}}"#)
        .await;
    expect_error(&mut ws, "BAD_MESSAGE", "input.sampleRate").await;
    ws.send_text(r#"{"type":"session.start","input":{"sampleRate":16000,"channels":3}}"#)
        .await;
    expect_error(&mut ws, "BAD_MESSAGE", "channels").await;
    ws.send_text(r#"{"type":"ping","t":42}"#).await;
    let pong = recv_json(&mut ws).await;
    assert_eq!(
        (pong["type"].as_str(), pong["t"].as_i64()),
        (Some("pong"), Some(42)),
        "{pong}"
    );

    // A valid start; the call goes on through everything below.
    ws.send_text(r#"{"type":"session.start","input":{"sampleRate":16000},"unknownField":1}"#)
        .await;
    let started = recv_json(&mut ws).await;
    assert_eq!(started["type"], "session.started", "{started}");
    assert_eq!(started["protocol"], "callgate.v1");

    ws.send_text(r#"{"type":"input.text","text":5}"#).await;
    expect_error(&mut ws, "BAD_MESSAGE", "input.text").await;
    ws.send_text(r#"{"type":"session.start","input":{"sampleRate":16000}}"#)
        .await;
    expect_error(&mut ws, "BAD_MESSAGE", "already").await;
    ws.send_binary(vec![1, 0, 0]).await;
    expect_error(&mut ws, "BAD_AUDIO", "").await;
    ws.send_binary(frame(2, 0, 0, 0, &[0; 320])).await;
    expect_error(&mut ws, "BAD_AUDIO", "kind").await;
    ws.send_binary(frame(1, 0, 0, 0, &[0; 321])).await;
    expect_error(&mut ws, "BAD_AUDIO", "").await;
    ws.send_text(r#"{"type":"audio.chunk","seq":0,"audio":"***"}"#)
        .await;
    expect_error(&mut ws, "BAD_AUDIO", "").await;

    // Sequencing: 0, 1, a duplicate 1, then 40: 2..=7 can no longer arrive in the window.
    for seq in [0u32, 1, 1, 40] {
        ws.send_binary(frame(1, 0, seq, 0, &[0; 640])).await;
    }
    let gap = expect_error(&mut ws, "AUDIO_GAP", "").await;
    assert_eq!(gap["from"], 2, "{gap}");
    assert!(
        gap["to"].as_u64().is_some_and(|to| (2..40).contains(&to)),
        "{gap}"
    );

    // A frame over 64 KiB closes the socket with 1009.
    ws.send_binary(frame(1, 0, 41, 0, &vec![0; 70_000])).await;
    let closed = loop {
        let v = recv_json(&mut ws).await;
        if v["type"] == "closed" {
            break v;
        }
    };
    assert_eq!(closed["code"], 1009, "{closed}");

    // The server is alive, healthy, and takes a new call.
    let mut ws2 = TestCall::open_with(&url, &[])
        .await
        .expect("reconnect")
        .with_patience(Duration::from_secs(20));
    ws2.send_text(r#"{"type":"session.start","input":{"sampleRate":16000}}"#)
        .await;
    assert_eq!(recv_json(&mut ws2).await["type"], "session.started");
    let health = crate::util::http_get(&server.addr, "/healthz").await;
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    let metrics = crate::util::http_get(&server.addr, "/metrics").await;
    assert!(
        metrics.contains("callgate_turns_completed_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callgate_turn_latency_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "the server process died"
    );
}

/// The HTTP side refuses what it does not serve, each with its status, then closes: a
/// garbage request line, a head over 16 KiB, other methods, `/v1/call` without the
/// WebSocket headers. Slow heads are cut off too (server::tests, on the paused clock).
#[tokio::test]
async fn malformed_and_unexpected_requests_are_refused() {
    let server = spawn_server();
    let upgrade =
        "GET /v1/call HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n";
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let mut oversized = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
    oversized.resize(17 * 1024, b'a');
    oversized.extend_from_slice(b"\r\n\r\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("garbage", b"HELLO\r\n\r\n".to_vec(), "HTTP/1.1 400"),
        ("binary", b"\x16\x03\x01\x00\xa5\x01\r\n\r\n".to_vec(), "HTTP/1.1 400"),
        ("a head over 16 KiB", oversized, "HTTP/1.1 431"),
        (
            "POST",
            b"POST /v1/call HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec(),
            "HTTP/1.1 404",
        ),
        (
            "DELETE",
            b"DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "HTTP/1.1 404",
        ),
        (
            "/v1/call without Upgrade",
            b"GET /v1/call HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "HTTP/1.1 404",
        ),
        (
            "an upgrade without Sec-WebSocket-Key",
            format!("{upgrade}Sec-WebSocket-Version: 13\r\n\r\n").into_bytes(),
            "HTTP/1.1 400",
        ),
        (
            "an upgrade of another WebSocket version",
            format!("{upgrade}{key}Sec-WebSocket-Version: 8\r\n\r\n").into_bytes(),
            "HTTP/1.1 400",
        ),
        (
            "an upgrade without Connection: Upgrade",
            format!(
                "GET /v1/call HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n{key}Sec-WebSocket-Version: 13\r\n\r\n"
            )
            .into_bytes(),
            "HTTP/1.1 400",
        ),
    ];
    for (what, request, status) in cases {
        let reply = tokio::time::timeout(
            Duration::from_secs(20),
            crate::util::http_raw(&server.addr, &request),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: the connection stayed open"));
        assert!(reply.starts_with(status), "{what}: {reply}");
    }
    let health = crate::util::http_get(&server.addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}
