//! Who gets in and what a dropped connection costs: JWT authentication where PROTOCOL.md
//! puts it, the origin allowlist, every configurable limit, `session.resume` without losing
//! or doubling audio, a vanished client cleaned up after the grace period, and a real
//! server process finishing its calls on SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use callgate::client::replay::{self, ReplayOptions, TurnStatus};
use callgate::config::ServeSettings;
use callgate::protocol;

use crate::util::{CHATTER, TestCall, recorded_in, recorded_input, spawn_gateway};

const SECRET: &str = "test-secret-0123456789";

fn token(sub: &str) -> String {
    callgate::server::auth::mint(SECRET, sub, Duration::from_secs(600)).expect("mint")
}

fn with_secret() -> ServeSettings {
    ServeSettings {
        jwt_secret: Some(SECRET.into()),
        ..Default::default()
    }
}

/// Connects with optional `Authorization` and `Origin` headers and a query string; the
/// HTTP status when the upgrade is refused.
async fn connect_with(
    addr: std::net::SocketAddr,
    query: &str,
    bearer: Option<&str>,
    origin: Option<&str>,
) -> Result<TestCall, u16> {
    let authorization = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = Vec::new();
    if let Some(a) = &authorization {
        headers.push(("authorization", a.as_str()));
    }
    if let Some(o) = origin {
        headers.push(("origin", o));
    }
    TestCall::open_with(&format!("ws://{addr}/v1/call{query}"), &headers).await
}

/// Connects as `user` and starts a call, which must be accepted.
async fn started_as(addr: std::net::SocketAddr, user: &str) -> TestCall {
    let mut ws = as_user(addr, user).await;
    assert_eq!(
        start_session(&mut ws, json!({})).await["type"],
        "session.started"
    );
    ws
}

/// Connects as `user` (a token in the Authorization header).
async fn as_user(addr: std::net::SocketAddr, user: &str) -> TestCall {
    connect_with(addr, "", Some(&token(user)), None)
        .await
        .expect("upgrade")
}

async fn send(ws: &mut TestCall, v: Value) {
    ws.send_json(v).await;
}

/// The next JSON event whose type is not in `skip`, or `{"type":"closed","code":N}`.
async fn next_event(ws: &mut TestCall, skip: &[&str]) -> Value {
    ws.next_json(skip).await
}

async fn start_session(ws: &mut TestCall, extra: Value) -> Value {
    let mut msg = json!({"type":"session.start","input":{"sampleRate":16000},
        "turnDetection":{"mode":"server_vad","silenceMs":500}});
    if let (Some(m), Some(e)) = (msg.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    send(ws, msg).await;
    next_event(ws, CHATTER).await
}

async fn http(addr: std::net::SocketAddr, path: &str) -> String {
    crate::util::http_get(&addr.to_string(), path).await
}

#[tokio::test]
async fn tokens_are_checked_where_the_protocol_puts_them() {
    let addr = spawn_gateway(with_secret()).await;
    // Bad tokens on the upgrade request: 401 before the upgrade.
    assert_eq!(
        connect_with(addr, "", Some("nonsense"), None).await.err(),
        Some(401)
    );
    assert_eq!(
        connect_with(addr, "?access_token=nonsense", None, None)
            .await
            .err(),
        Some(401)
    );
    let foreign =
        callgate::server::auth::mint("another-secret-456789", "ada", Duration::from_secs(60))
            .expect("mint");
    assert_eq!(
        connect_with(addr, "", Some(&foreign), None).await.err(),
        Some(401)
    );

    // No token anywhere: UNAUTHORIZED and close 1008 at session.start.
    let mut ws = connect_with(addr, "", None, None).await.expect("upgrade");
    let e = start_session(&mut ws, json!({})).await;
    assert_eq!(e["code"], "UNAUTHORIZED", "{e}");
    assert_eq!(e["recoverable"], false);
    assert!(e["userMessage"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(next_event(&mut ws, &[]).await["code"], 1008);
    // A bad token in session.start: the same.
    let mut ws = connect_with(addr, "", None, None).await.expect("upgrade");
    let e = start_session(&mut ws, json!({"token":"x.y.z"})).await;
    assert_eq!(e["code"], "UNAUTHORIZED", "{e}");

    // Each of the three places works with a good token.
    for (query, bearer, in_start) in [
        (format!("?access_token={}", token("ada")), None, json!({})),
        (String::new(), Some(token("ada")), json!({})),
        (String::new(), None, json!({"token": token("ada")})),
    ] {
        let mut ws = connect_with(addr, &query, bearer.as_deref(), None)
            .await
            .expect("upgrade");
        let started = start_session(&mut ws, in_start).await;
        assert_eq!(started["type"], "session.started", "{started}");
        send(&mut ws, json!({"type":"session.end"})).await;
    }
}

#[tokio::test]
async fn origins_off_the_allowlist_get_403() {
    let addr = spawn_gateway(ServeSettings {
        allowed_origins: Some(vec!["http://good.example".into()]),
        ..Default::default()
    })
    .await;
    assert_eq!(
        connect_with(addr, "", None, Some("http://evil.example"))
            .await
            .err(),
        Some(403)
    );
    assert!(
        connect_with(addr, "", None, Some("http://good.example"))
            .await
            .is_ok()
    );
    assert!(
        connect_with(addr, "", None, None).await.is_ok(),
        "no Origin: not a browser page"
    );
}

#[test]
fn serve_refuses_a_public_address_without_a_secret() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callgate"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("CALLGATE_JWT_SECRET")
        .output()
        .expect("run callgate");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--jwt-secret") && err.contains("--insecure"),
        "{err}"
    );
}

#[test]
fn token_command_mints_what_the_server_accepts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callgate"))
        .args(["token", "--sub", "ada", "--ttl", "2h"])
        .env("CALLGATE_JWT_SECRET", SECRET)
        .output()
        .expect("run callgate token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let claims = callgate::server::auth::Authenticator::new(Some(SECRET))
        .verify(printed.trim())
        .expect("a valid token");
    assert_eq!(claims.sub, "ada");
    assert_eq!(printed.lines().count(), 1, "the token alone on stdout");
}

#[tokio::test]
async fn call_limits_refuse_only_the_offender() {
    let addr = spawn_gateway(ServeSettings {
        max_calls: Some(2),
        max_calls_per_user: Some(1),
        ..with_secret()
    })
    .await;
    let mut ada = started_as(addr, "ada").await;
    // A second call for the same user.
    let mut ada2 = as_user(addr, "ada").await;
    let e = start_session(&mut ada2, json!({})).await;
    assert_eq!(e["code"], "RATE_LIMITED", "{e}");
    assert_eq!(next_event(&mut ada2, &[]).await["code"], 1013);
    // Another user is not affected.
    let mut bob = started_as(addr, "bob").await;
    // The server is full now: the next caller gets OVERLOADED and 1013, /healthz answers.
    let mut cy = as_user(addr, "cy").await;
    let e = start_session(&mut cy, json!({})).await;
    assert_eq!(e["code"], "OVERLOADED", "{e}");
    assert!(e["retryAfterMs"].as_u64().is_some());
    assert_eq!(next_event(&mut cy, &[]).await["code"], 1013);
    assert!(http(addr, "/healthz").await.contains("200 OK"));
    // The calls in progress go on.
    send(&mut ada, json!({"type":"ping","t":1})).await;
    assert_eq!(next_event(&mut ada, CHATTER).await["type"], "pong");
    send(&mut bob, json!({"type":"ping","t":1})).await;
    assert_eq!(next_event(&mut bob, CHATTER).await["type"], "pong");
}

#[tokio::test]
async fn message_and_audio_floods_are_rate_limited_and_the_call_goes_on() {
    let addr = spawn_gateway(ServeSettings {
        max_text_rate: Some(5.0),
        max_audio_rate: Some(2.0),
        ..Default::default()
    })
    .await;
    let mut ws = connect_with(addr, "", None, None).await.expect("upgrade");
    assert_eq!(
        start_session(&mut ws, json!({})).await["type"],
        "session.started"
    );
    send(&mut ws, json!({"type":"response.cancel"})).await;
    for i in 0..30 {
        send(&mut ws, json!({"type":"ping","t":i})).await;
    }
    let mut pongs = 0;
    let limited = loop {
        let v = next_event(&mut ws, CHATTER).await;
        match v["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => break v,
            _ => panic!("unexpected {v}"),
        }
    };
    assert_eq!(limited["code"], "RATE_LIMITED", "{limited}");
    assert!(limited["recoverable"].as_bool().unwrap_or(false));
    assert!((5..30).contains(&pongs), "{pongs} pongs");
    // 30 s of audio at once: far beyond twice real time after the 10 s burst. (After a
    // second, so the text flood's error does not hold this one back.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let silence = vec![0i16; 320];
    for seq in 0..1500u32 {
        ws.send_binary(protocol::encode_input_frame(seq, &silence))
            .await;
    }
    let limited = loop {
        let v = next_event(&mut ws, CHATTER).await;
        if v["type"] == "error" && v["code"] != "AUDIO_GAP" {
            break v;
        }
    };
    assert_eq!(limited["code"], "RATE_LIMITED", "{limited}");
    assert!(
        limited["message"]
            .as_str()
            .unwrap_or_default()
            .contains("real time")
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(&mut ws, json!({"type":"ping","t":"after"})).await;
    loop {
        let v = next_event(&mut ws, CHATTER).await;
        if v["type"] == "pong" && v["t"] == "after" {
            break;
        }
    }
}

#[tokio::test]
async fn calls_end_at_their_maximum_duration_and_when_idle() {
    let addr = spawn_gateway(ServeSettings {
        max_call_minutes: Some(0.02),
        ..Default::default()
    })
    .await;
    let mut ws = connect_with(addr, "", None, None).await.expect("upgrade");
    start_session(&mut ws, json!({})).await;
    let ended = next_event(&mut ws, CHATTER).await;
    assert_eq!(ended["type"], "session.ended", "{ended}");
    assert_eq!(ended["reason"], "timeout");

    let addr = spawn_gateway(ServeSettings {
        idle_timeout_s: Some(1),
        ..Default::default()
    })
    .await;
    let mut ws = connect_with(addr, "", None, None).await.expect("upgrade");
    start_session(&mut ws, json!({})).await;
    let ended = next_event(&mut ws, CHATTER).await;
    assert_eq!(ended["reason"], "idle", "{ended}");
}

fn calls_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callgate-trust-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn speech_16k(text: &str) -> Vec<i16> {
    crate::util::speech(text, 16000, 1)
}

async fn resume(
    addr: std::net::SocketAddr,
    bearer: Option<&str>,
    session_id: &str,
    resume_token: &str,
) -> (TestCall, Value) {
    let mut ws = connect_with(addr, "", bearer, None).await.expect("upgrade");
    send(
        &mut ws,
        json!({"type":"session.resume","sessionId":session_id,"resumeToken":resume_token}),
    )
    .await;
    let v = next_event(&mut ws, CHATTER).await;
    (ws, v)
}

#[tokio::test]
async fn resume_after_a_dropped_connection_loses_and_doubles_nothing() {
    let dir = calls_dir("resume");
    let addr = spawn_gateway(recorded_in(&dir, ServeSettings::default())).await;
    let mut source =
        speech_16k("I have five years of experience with Rust and distributed systems.");
    source.extend(vec![0i16; 16000 * 3 / 2]);
    let chunks: Vec<&[i16]> = source.chunks(320).collect();

    let mut ws = connect_with(addr, "", None, None).await.expect("upgrade");
    let started = start_session(&mut ws, json!({})).await;
    let session_id = started["sessionId"].as_str().expect("id").to_owned();
    let resume_token = started["resumeToken"].as_str().expect("token").to_owned();
    send(&mut ws, json!({"type":"response.cancel"})).await;
    // Mid-utterance: the first 40% goes out, the next 10% is "in flight" when the link dies.
    let sent = chunks.len() * 2 / 5;
    let lost = chunks.len() / 2;
    for (seq, chunk) in chunks[..sent].iter().enumerate() {
        ws.send_binary(protocol::encode_input_frame(seq as u32, chunk))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A wrong token is refused with 1008 and does not disturb the call.
    let (mut bad, e) = resume(addr, None, &session_id, "not-the-token").await;
    assert_eq!(e["code"], "SESSION_NOT_FOUND", "{e}");
    assert_eq!(next_event(&mut bad, &[]).await["code"], 1008);

    let (mut ws, resumed) = resume(addr, None, &session_id, &resume_token).await;
    assert_eq!(resumed["type"], "session.resumed", "{resumed}");
    assert_eq!(resumed["sessionId"], session_id.as_str());
    let next_seq = resumed["nextSeq"].as_u64().expect("nextSeq") as usize;
    assert!(next_seq <= lost && next_seq > 0, "nextSeq {next_seq}");
    assert!(resumed["turns"].is_array());
    // Resend from nextSeq, overlapping what the server already has, to the end.
    let overlap = next_seq.saturating_sub(5);
    for (i, chunk) in chunks.iter().enumerate().skip(overlap) {
        ws.send_binary(protocol::encode_input_frame(i as u32, chunk))
            .await;
    }
    let done = loop {
        let v = next_event(
            &mut ws,
            &["audio.ack", "response.text.delta", "response.started"],
        )
        .await;
        assert_ne!(v["type"], "closed", "{v}");
        if v["type"] == "response.done" && v["turnId"] == 1 {
            break v;
        }
    };
    assert_eq!(done["status"], "completed", "{done}");
    send(&mut ws, json!({"type":"session.end"})).await;
    loop {
        if next_event(&mut ws, CHATTER).await["type"] == "session.ended" {
            break;
        }
    }
    let recorded = recorded_input(&dir, &session_id, source.len()).await;
    assert_eq!(
        recorded.len(),
        source.len(),
        "nothing lost, nothing doubled"
    );
    assert!(
        recorded == source,
        "the recording equals the source sample for sample"
    );
}

#[tokio::test]
async fn another_users_token_never_reaches_a_call() {
    let addr = spawn_gateway(with_secret()).await;
    let mut ws = as_user(addr, "ada").await;
    let started = start_session(&mut ws, json!({})).await;
    let id = started["sessionId"].as_str().expect("id").to_owned();
    let rt = started["resumeToken"].as_str().expect("token").to_owned();
    ws.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (mut bob, e) = resume(addr, Some(&token("bob")), &id, &rt).await;
    assert_eq!(e["code"], "SESSION_NOT_FOUND", "{e}");
    assert_eq!(next_event(&mut bob, &[]).await["code"], 1008);
    let (_ada, resumed) = resume(addr, Some(&token("ada")), &id, &rt).await;
    assert_eq!(resumed["type"], "session.resumed", "{resumed}");
}

/// A client that sent its token in `session.start` resumes with it in `session.resume`;
/// the same rules hold there: no token, another user's or a bad one is refused.
#[tokio::test]
async fn a_token_in_session_resume_resumes_a_call_started_with_one() {
    let addr = spawn_gateway(with_secret()).await;
    let mut ws = connect_with(addr, "", None, None).await.expect("upgrade");
    let started = start_session(&mut ws, json!({"token": token("ada")})).await;
    let id = started["sessionId"].as_str().expect("id").to_owned();
    let rt = started["resumeToken"].as_str().expect("token").to_owned();
    ws.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resume_with = |t: Option<String>| {
        let (id, rt) = (id.clone(), rt.clone());
        async move {
            let mut ws = connect_with(addr, "", None, None).await.expect("upgrade");
            let mut msg = json!({"type":"session.resume","sessionId":id,"resumeToken":rt});
            if let Some(t) = t {
                msg["token"] = json!(t);
            }
            send(&mut ws, msg).await;
            next_event(&mut ws, CHATTER).await
        }
    };
    assert_eq!(resume_with(None).await["code"], "SESSION_NOT_FOUND");
    assert_eq!(
        resume_with(Some(token("bob"))).await["code"],
        "SESSION_NOT_FOUND"
    );
    assert_eq!(
        resume_with(Some("x.y.z".into())).await["code"],
        "UNAUTHORIZED"
    );
    let resumed = resume_with(Some(token("ada"))).await;
    assert_eq!(resumed["type"], "session.resumed", "{resumed}");
}

#[tokio::test]
async fn a_vanished_client_is_cleaned_up_after_the_grace_period() {
    let dir = calls_dir("vanish");
    let addr = spawn_gateway(ServeSettings {
        resume_grace_s: Some(1.0),
        calls_dir: Some(dir.clone()),
        ..Default::default()
    })
    .await;
    let mut ws = connect_with(addr, "", None, None).await.expect("upgrade");
    let started = start_session(&mut ws, json!({})).await;
    let id = started["sessionId"].as_str().expect("id").to_owned();
    // Mid-turn: the greeting is still being spoken when the client vanishes.
    ws.until_audio(0).await;
    ws.cut();
    let mut active = f64::NAN;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        active = crate::util::metric::<f64>(&http(addr, "/metrics").await, "callgate_calls_active");
        if active == 0.0 {
            break;
        }
    }
    assert_eq!(active, 0.0, "calls active after the grace period");
    let log = std::fs::read_to_string(dir.join(&id).join("events.jsonl")).expect("events");
    assert!(
        log.contains(r#""status":"cancelled""#),
        "the greeting was cancelled: {log}"
    );
    assert!(log.contains(r#""reason":"timeout""#), "{log}");
}

#[tokio::test]
async fn sigterm_finishes_the_turn_in_flight_then_ends_calls_and_exits_0() {
    let dir = calls_dir("sigterm");
    let mut server =
        crate::hostile::spawn_server_with(dir.to_str().expect("utf-8"), &["--drain-s", "15"]);
    let addr: std::net::SocketAddr = server.addr.parse().expect("addr");
    let mut ws = connect_with(addr, "", None, None).await.expect("upgrade");
    let started = start_session(&mut ws, json!({})).await;
    let id = started["sessionId"].as_str().expect("id").to_owned();
    // Wait for the greeting's audio: a response is in flight.
    ws.until_audio(0).await;
    let pid = server.child.id().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(ok.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(http(addr, "/healthz").await.contains("503"), "draining");
    let mut done = None;
    let ended = loop {
        let v = next_event(
            &mut ws,
            &["audio.ack", "response.text.delta", "response.started"],
        )
        .await;
        if v["type"] == "response.done" {
            done = Some(v);
        } else if v["type"] == "session.ended" {
            break v;
        }
    };
    assert_eq!(done.expect("response.done")["status"], "completed");
    assert_eq!(ended["reason"], "shutdown");
    assert_eq!(next_event(&mut ws, &[]).await["code"], 1001);
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = server.child.try_wait().expect("wait") {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(status.expect("exited").success());
    let log = std::fs::read_to_string(dir.join(&id).join("events.jsonl")).expect("events");
    assert!(log.contains("session.ended"), "flushed: {log}");
}

#[tokio::test]
async fn replay_resumes_a_dropped_call_and_loses_no_audio() {
    let dir = calls_dir("replay-resume");
    let addr = spawn_gateway(recorded_in(&dir, ServeSettings::default())).await;
    // The link dies 1.5 s into a 4 s answer streamed at real-time pace.
    let relay = crate::util::flaky_relay(addr, Duration::from_millis(1500)).await;
    let wav = crate::util::espeak_wav(
        "I have five years of experience with Rust and distributed systems.",
        "en-us",
        16000,
        1,
    );
    let source = crate::util::read_i16(&wav);
    let mut opts = ReplayOptions::new(format!("ws://{relay}/v1/call"), vec![wav]);
    opts.quiet = true;
    let reports = replay::replay(&opts).await.expect("replay");
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let report = &reports[0];
    assert_eq!(report.resumes, 1, "{report:#?}");
    assert_eq!(report.status, TurnStatus::Completed, "{report:#?}");
    assert!(
        report.final_transcript.to_lowercase().contains("rust"),
        "{report:#?}"
    );

    // The server heard the file, then the client's silence tail: nothing lost, nothing
    // doubled across the drop.
    let recorded = recorded_input(&dir, &report.session_id, source.len()).await;
    assert!(
        recorded.len() >= source.len(),
        "recorded {} of {} samples",
        recorded.len(),
        source.len()
    );
    assert!(
        recorded[..source.len()] == source[..],
        "the recording starts with the file, sample for sample"
    );
    assert!(
        recorded[source.len()..].iter().all(|&s| s == 0),
        "and goes on with the silence tail only"
    );
}

#[tokio::test]
async fn replay_without_resume_reports_the_drop() {
    let addr = spawn_gateway(ServeSettings::default()).await;
    let relay = crate::util::flaky_relay(addr, Duration::from_millis(800)).await;
    let wav = crate::util::espeak_wav(
        "I have five years of experience with Rust and distributed systems.",
        "en-us",
        16000,
        1,
    );
    let mut opts = ReplayOptions::new(format!("ws://{relay}/v1/call"), vec![wav]);
    opts.quiet = true;
    opts.resume = false;
    let reports = replay::replay(&opts).await.expect("replay");
    assert!(
        reports
            .iter()
            .all(|r| r.status == TurnStatus::Error && r.resumes == 0),
        "{reports:#?}"
    );
}

#[tokio::test]
async fn with_tokens_a_calls_recordings_are_its_users_alone() {
    let dir = calls_dir("recordings");
    let addr = spawn_gateway(recorded_in(&dir, with_secret())).await;
    let mut ws = as_user(addr, "ada").await;
    let started = start_session(&mut ws, json!({})).await;
    let id = started["sessionId"].as_str().expect("id").to_owned();
    send(&mut ws, json!({"type":"session.end"})).await;
    while next_event(&mut ws, CHATTER).await["type"] != "session.ended" {}

    let get = |path: String, headers: String| async move {
        let reply = crate::util::http_get_with(&addr.to_string(), &path, &headers).await;
        reply.lines().next().unwrap_or_default().to_owned()
    };
    let bearer = |user: &str| format!("Authorization: Bearer {}\r\n", token(user));
    let listing = format!("/v1/calls/{id}");
    let events = format!("/v1/calls/{id}/events.jsonl");
    // The recorder writes the event log on its own thread, which may not have run yet in a
    // call this short (a few ms): wait until the log is there.
    for _ in 0..50 {
        if get(listing.clone(), bearer("ada")).await == "HTTP/1.1 200 OK" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        get(listing.clone(), String::new()).await,
        "HTTP/1.1 401 Unauthorized"
    );
    assert_eq!(
        get(
            listing.clone(),
            "Authorization: Bearer not-a-token\r\n".into()
        )
        .await,
        "HTTP/1.1 401 Unauthorized"
    );
    // Another user's call looks like no call at all.
    assert_eq!(
        get(listing.clone(), bearer("bob")).await,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        get(events.clone(), bearer("bob")).await,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(get(listing, bearer("ada")).await, "HTTP/1.1 200 OK");
    assert_eq!(
        get(
            format!("{events}?access_token={}", token("ada")),
            String::new()
        )
        .await,
        "HTTP/1.1 200 OK"
    );
}

#[tokio::test]
async fn with_tokens_the_call_history_lists_a_users_own_ended_calls_newest_first() {
    let dir = calls_dir("history");
    let addr = spawn_gateway(recorded_in(&dir, with_secret())).await;
    let mut ids = Vec::new();
    for user in ["ada", "bob", "ada"] {
        let mut ws = as_user(addr, user).await;
        let started = start_session(&mut ws, json!({})).await;
        ids.push(started["sessionId"].as_str().expect("id").to_owned());
        send(&mut ws, json!({"type":"session.end"})).await;
        while next_event(&mut ws, CHATTER).await["type"] != "session.ended" {}
        // Distinct start times (ms), so "newest first" has one answer.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let history = |headers: String| async move {
        let reply = crate::util::http_get_with(&addr.to_string(), "/v1/calls", &headers).await;
        let status = reply.lines().next().unwrap_or_default().to_owned();
        let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
        (status, body.unwrap_or_default())
    };
    let bearer = |user: &str| format!("Authorization: Bearer {}\r\n", token(user));
    let listed = |body: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        v["calls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["sessionId"].as_str().map(str::to_owned))
            .collect()
    };
    // Reports are written by the recorder's thread after session.ended.
    let mut ada = Vec::new();
    for _ in 0..50 {
        ada = listed(&history(bearer("ada")).await.1);
        if ada.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ada, [ids[2].clone(), ids[0].clone()], "ada's, newest first");
    assert_eq!(listed(&history(bearer("bob")).await.1), [ids[1].clone()]);
    assert_eq!(
        listed(&history(bearer("carol")).await.1),
        Vec::<String>::new()
    );
    assert_eq!(history(String::new()).await.0, "HTTP/1.1 401 Unauthorized");
    // Without tokens there is no user to list for.
    let open = spawn_gateway(recorded_in(&dir, ServeSettings::default())).await;
    let reply = crate::util::http_get_with(&open.to_string(), "/v1/calls", "").await;
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
}
