//! Measures the server's memory per open, idle call: opens N calls against a running
//! server, lets each greeting finish, and reads the server's RSS before and after.
//!
//! `cargo run --release --example idle_calls -- ws://127.0.0.1:8080/v1/call SERVER_PID [N]`

use callgate::client::{CallClient, Incoming};
use callgate::protocol::{ClientMessage, ServerMessage, parse_client_message};

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("URL");
    let pid = args.next().expect("server pid");
    let n: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(100);
    let Ok(ClientMessage::SessionStart(start)) = parse_client_message(
        r#"{"type":"session.start","input":{"sampleRate":16000},"output":{"sampleRate":16000}}"#,
    ) else {
        panic!("session.start literal")
    };
    // Warm the server up (first call allocates decoder state and synthesis buffers).
    let mut warm = CallClient::connect(&url, &start).await.expect("connect");
    warm.tx
        .send(&ClientMessage::ResponseCancel { turn_id: None })
        .await
        .expect("cancel");
    while let Ok(r) = warm.rx.recv().await {
        if matches!(r.msg, Incoming::Event(ServerMessage::ResponseDone { .. })) {
            break;
        }
    }
    let before = rss_kib(&pid);
    let mut calls = Vec::new();
    for _ in 0..n {
        let mut c = CallClient::connect(&url, &start).await.expect("connect");
        // Skip the greeting (it plays at real time) and wait for its end: the call is idle.
        c.tx.send(&ClientMessage::ResponseCancel { turn_id: None })
            .await
            .expect("cancel");
        while let Ok(r) = c.rx.recv().await {
            if matches!(r.msg, Incoming::Event(ServerMessage::ResponseDone { .. })) {
                break;
            }
        }
        calls.push(c);
        eprint!("\r{}", calls.len());
    }
    let after = rss_kib(&pid);
    println!(
        "{n} idle calls: server RSS {before} KiB -> {after} KiB, {:.1} KiB per call",
        (after.saturating_sub(before)) as f64 / n as f64
    );
}
