//! Measures barge-in against a running server: speech onset (when the chunk holding it was
//! sent, streamed at real-time pace) to the last AI audio frame of the interrupted turn, and
//! how often non-speech sounds (noise, clicks) falsely cancel the AI.
//!
//! `cargo run --release --example barge_in -- ws://127.0.0.1:8080/v1/call [ROUNDS]`

use std::time::{Duration, Instant};

use callgate::audio::i16_to_mono_f32;
use callgate::audio::level::rms_dbfs;
use callgate::client::{CallClient, Incoming};
use callgate::protocol::{DoneStatus, InputFormat, ServerMessage, SessionStart};

#[path = "../tests/util.rs"]
mod util;

const RATE: u32 = 16_000;
const CHUNK: usize = 320; // 20 ms

/// Deterministic pseudo-random noise (xorshift), `dbfs` RMS-ish.
fn noise(secs: f32, dbfs: f32) -> Vec<i16> {
    let amp = 32767.0 * 10f32.powf(dbfs / 20.0) * 1.7;
    let mut x: u32 = 0x9e37_79b9;
    (0..(RATE as f32 * secs) as usize)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            ((x as f32 / u32::MAX as f32 - 0.5) * 2.0 * amp) as i16
        })
        .collect()
}

/// Five 5 ms clicks at -6 dBFS, 300 ms apart, in silence.
fn clicks() -> Vec<i16> {
    let mut v = vec![0i16; RATE as usize * 2];
    for k in 0..5 {
        let at = k * RATE as usize * 3 / 10 + 800;
        for s in v.iter_mut().skip(at).take(80) {
            *s = 16000;
        }
    }
    v
}

/// The first 10 ms frame louder than -40 dBFS, in samples.
fn onset(samples: &[i16]) -> usize {
    samples
        .chunks(160)
        .position(|f| rms_dbfs(&i16_to_mono_f32(f, 1)) > -40.0)
        .map_or(0, |i| i * 160)
}

/// Streams `audio` at real time while the greeting plays; returns (cancelled?, reaction ms).
async fn round(url: &str, audio: &[i16]) -> (bool, Option<u64>) {
    let start = match callgate::protocol::parse_client_message(
        r#"{"type":"session.start","input":{"sampleRate":16000}}"#,
    ) {
        Ok(callgate::protocol::ClientMessage::SessionStart(s)) => SessionStart {
            input: InputFormat {
                sample_rate: RATE,
                channels: 1,
                encoding: "pcm_s16le".into(),
            },
            ..s
        },
        other => panic!("session.start literal: {other:?}"),
    };
    let mut call = CallClient::connect(url, &start).await.expect("connect");
    // Wait for the greeting's audio to start.
    loop {
        let r = call.rx.recv().await.expect("recv");
        if matches!(r.msg, Incoming::Audio(ref c) if c.turn == 0) {
            break;
        }
    }
    let onset_chunk = onset(audio) / CHUNK;
    let mut onset_sent = None;
    let mut last_frame: Option<Instant> = None;
    let mut cancelled = None;
    let t0 = Instant::now();
    let mut chunks = audio.chunks(CHUNK).enumerate();
    let deadline = Duration::from_millis(audio.len() as u64 * 1000 / RATE as u64 + 1500);
    while t0.elapsed() < deadline && cancelled.is_none() {
        let next_due = t0 + Duration::from_millis(20 * (call.tx.next_seq() as u64 + 1));
        tokio::select! {
            _ = tokio::time::sleep_until(next_due.into()) => {
                let chunk: Vec<i16> = match chunks.next() {
                    Some((i, c)) => {
                        if i == onset_chunk { onset_sent = Some(Instant::now()); }
                        c.to_vec()
                    }
                    None => vec![0; CHUNK],
                };
                call.tx.send_audio(&chunk).await.expect("send");
            }
            r = call.rx.recv() => {
                let r = r.expect("recv");
                match r.msg {
                    Incoming::Audio(c) if c.turn == 0 => last_frame = Some(r.at),
                    Incoming::Event(ServerMessage::ResponseDone { turn_id: 0, status, .. }) => {
                        cancelled = Some(status == DoneStatus::Cancelled);
                    }
                    _ => {}
                }
            }
        }
    }
    call.tx.close().await;
    let reaction = match (onset_sent, last_frame) {
        (Some(o), Some(l)) if cancelled == Some(true) => {
            Some(l.saturating_duration_since(o).as_millis() as u64)
        }
        _ => None,
    };
    (cancelled == Some(true), reaction)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/v1/call".into());
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);
    let speech = util::speech("Sorry, can I stop you there for a second?", RATE, 1);
    let mut reactions = Vec::new();
    for _ in 0..rounds {
        if let (true, Some(ms)) = round(&url, &speech).await {
            reactions.push(ms);
        }
    }
    reactions.sort_unstable();
    let pct = |p: f64| {
        reactions
            .get(((reactions.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "barge-in: {}/{} rounds cancelled; speech onset -> last AI frame: p50 {} ms, p90 {} ms, max {} ms",
        reactions.len(),
        rounds,
        pct(0.5),
        pct(0.9),
        reactions.last().copied().unwrap_or(0)
    );
    for (name, audio) in [
        ("white noise -40 dBFS, 3 s", noise(3.0, -40.0)),
        ("white noise -25 dBFS, 3 s", noise(3.0, -25.0)),
        ("clicks", clicks()),
    ] {
        let mut false_cancels = 0;
        for _ in 0..3 {
            if round(&url, &audio).await.0 {
                false_cancels += 1;
            }
        }
        println!("false barge-in on {name}: {false_cancels}/3");
    }
}
