//! Who gets a call slot and how long a socket may wait for one: `--max-calls` under
//! concurrent starts, the `session.start` deadline, the caps on upgraded sockets that have
//! not started a call, and a slowloris of 500 such sockets beside a real call.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};

use callgate::config::ServeSettings;

use crate::util::{TestCall, spawn_gateway};

/// Events of the streaming kind a start's answer is read past.
const CHATTER: &[&str] = &[
    "audio.ack",
    "transcript",
    "response.started",
    "response.text.delta",
    "response.done",
];

fn start_message() -> Value {
    json!({"type":"session.start","input":{"sampleRate":16000},
        "turnDetection":{"mode":"server_vad","silenceMs":500}})
}

/// Opens `n` sockets at once.
async fn open_many(addr: std::net::SocketAddr, n: usize) -> Vec<TestCall> {
    join_all((0..n).map(|_| TestCall::open(addr))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_at_the_limit_admit_exactly_max_calls() {
    const MAX: usize = 4;
    let addr = spawn_gateway(ServeSettings {
        max_calls: Some(MAX),
        max_unstarted_per_ip: Some(100),
        // A dropped call ends at once, so each round starts with every permit back.
        resume_grace_s: Some(0.0),
        ..Default::default()
    })
    .await;
    for round in 0..3 {
        let mut calls = open_many(addr, 48).await;
        let answers = join_all(calls.iter_mut().map(|ws| async move {
            ws.send_json(start_message()).await;
            ws.next_json(CHATTER).await
        }))
        .await;
        let started = answers
            .iter()
            .filter(|a| a["type"] == "session.started")
            .count();
        let overloaded = answers.iter().filter(|a| a["code"] == "OVERLOADED").count();
        assert_eq!(started, MAX, "round {round}: {answers:?}");
        assert_eq!(overloaded, 48 - MAX, "round {round}: {answers:?}");
        drop(calls);
        // The permits come back when the calls end.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A gateway whose connections get `start_ms` to start, with these caps on waiting ones.
async fn gateway_with_deadline(start_ms: u64, per_ip: usize, total: usize) -> std::net::SocketAddr {
    spawn_gateway(ServeSettings {
        start_timeout_ms: Some(start_ms),
        max_unstarted_per_ip: Some(per_ip),
        max_unstarted: Some(total),
        ..Default::default()
    })
    .await
}

/// Reads what a socket that never started gets: the error, then close 1008.
async fn expect_closed_for_not_starting(ws: &mut TestCall) {
    let e = ws.next_json(&[]).await;
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["code"], "BAD_MESSAGE", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("session.start"),
        "{e}"
    );
    assert_eq!(ws.next_json(&[]).await["code"], 1008);
}

#[tokio::test]
async fn a_socket_that_never_starts_is_closed_at_the_deadline() {
    let addr = gateway_with_deadline(300, 64, 1024).await;
    let opened = Instant::now();
    let mut idle = TestCall::open(addr).await;
    expect_closed_for_not_starting(&mut idle).await;
    let waited = opened.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    // A socket that starts in time is a call like any other, past the deadline too.
    let mut call = TestCall::open(addr).await;
    call.start(16000, 1, 24000).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    call.send_json(json!({"type":"ping","t":1})).await;
    assert_eq!(call.next_json(CHATTER).await["type"], "pong");
}

#[tokio::test]
async fn sockets_waiting_to_start_are_capped_per_address_and_in_all() {
    let addr = gateway_with_deadline(60_000, 3, 1024).await;
    let mut waiting = open_many(addr, 3).await;
    let refused = TestCall::open_with(&format!("ws://{addr}/v1/call"), &[]).await;
    assert_eq!(refused.err(), Some(429));
    // A start frees its place among the waiting.
    waiting[0].start(16000, 1, 24000).await;
    let mut fourth = TestCall::open(addr).await;
    fourth.send_json(json!({"type":"ping","t":1})).await;
    // The cap in all holds across addresses (one here: loopback).
    let addr = gateway_with_deadline(60_000, 100, 2).await;
    let _waiting = open_many(addr, 2).await;
    let refused = TestCall::open_with(&format!("ws://{addr}/v1/call"), &[]).await;
    assert_eq!(refused.err(), Some(503));
    let health = crate::util::http_get(&addr.to_string(), "/healthz").await;
    assert!(health.contains("200 OK"), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_of_500_sockets_is_closed_at_the_deadline_beside_a_real_call() {
    const SOCKETS: usize = 500;
    let deadline = Duration::from_secs(3);
    let addr = gateway_with_deadline(deadline.as_millis() as u64, 1000, 1000).await;
    let opened = Instant::now();
    let mut idle = open_many(addr, SOCKETS).await;
    let mut call = TestCall::open(addr).await;
    call.start(16000, 1, 24000).await;
    let closed = join_all(idle.iter_mut().map(|ws| async move {
        expect_closed_for_not_starting(ws).await;
        opened.elapsed()
    }));
    // The real call answers throughout, before the deadline and after it.
    let pinging = async {
        for t in 0..10 {
            call.send_json(json!({"type":"ping","t":t})).await;
            assert_eq!(call.next_json(CHATTER).await["type"], "pong");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let (closed_at, ()) = tokio::join!(closed, pinging);
    let last = closed_at.iter().max().copied().unwrap_or_default();
    assert!(
        last < deadline + Duration::from_secs(5),
        "last closed after {last:?}"
    );
    let metrics = crate::util::http_get(&addr.to_string(), "/metrics").await;
    assert_eq!(
        crate::util::metric::<u64>(&metrics, "callgate_calls_active"),
        1,
        "only the real call is left"
    );
    eprintln!("slowloris: {SOCKETS} sockets closed by {last:?} (deadline {deadline:?})");
}

/// Each malformed request gets its one HTTP error and nothing more (no 101, no second
/// reply); a request pipelined behind a refused one gets nothing, since a refusal closes. A slow head is cut off in
/// server::tests on the paused clock, the rest of the malformed heads in `hostile`.
#[tokio::test]
async fn malformed_upgrades_get_their_http_error_and_nothing_else() {
    let addr = spawn_gateway(ServeSettings::default()).await.to_string();
    let upgrade = "GET /v1/call HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
    let mut oversized =
        format!("{upgrade}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Pad: ").into_bytes();
    oversized.resize(17 * 1024, b'a');
    oversized.extend_from_slice(b"\r\n\r\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("an upgrade head over 16 KiB", oversized, "HTTP/1.1 431"),
        (
            "a Sec-WebSocket-Key that is not 16 bytes in base64",
            format!("{upgrade}Sec-WebSocket-Key: not a key!\r\n\r\n").into_bytes(),
            "HTTP/1.1 400",
        ),
        (
            "a Sec-WebSocket-Key of 8 bytes",
            format!("{upgrade}Sec-WebSocket-Key: AAAAAAAAAAA=\r\n\r\n").into_bytes(),
            "HTTP/1.1 400",
        ),
        (
            "/v1/call without Upgrade",
            b"GET /v1/call HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            "HTTP/1.1 404",
        ),
    ];
    for (what, request, status) in cases {
        let reply = tokio::time::timeout(
            Duration::from_secs(20),
            crate::util::http_raw(&addr, &request),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: the connection stayed open"));
        assert!(reply.starts_with(status), "{what}: {reply}");
        assert_eq!(reply.matches("HTTP/1.1 ").count(), 1, "{what}: {reply}");
    }
    let pipelined =
        b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let reply = crate::util::http_raw(&addr, pipelined).await;
    let statuses: Vec<&str> = reply
        .lines()
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .collect();
    assert_eq!(statuses, ["HTTP/1.1 404 Not Found"], "{reply}");
}
