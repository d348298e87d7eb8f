//! Cluster mode on a real Redis (Debian's redis-server, started here on a free loopback
//! port) with real `callgate serve` processes: the node directory, and the per-user call
//! limit counted across nodes and released when a node dies.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{CHATTER, TestCall, free_port, http_get, repo_root};

const SECRET: &str = "cluster-secret-0123456789";

/// A child process killed (SIGKILL) when dropped; its output goes to `log`.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(command: &mut Command, name: &str) -> Self {
        let log = std::env::temp_dir().join(format!("callgate-{name}-{}.log", std::process::id()));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e} (scripts/setup installs it)"));
        Self { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until something listens on `port`, or panics with `process`'s log.
async fn listening(port: u16, process: &Process, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not listen within 60 s:\n{}", process.log_text());
}

/// A Redis server of its own, nothing saved to disk.
async fn start_redis() -> (Process, String) {
    let port = free_port();
    let redis = Process::spawn(
        Command::new("redis-server").args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]),
        &format!("redis-{port}"),
    );
    listening(port, &redis, "redis-server").await;
    (redis, format!("redis://127.0.0.1:{port}"))
}

/// A `callgate serve` node `id` on `redis`, one call per user, recording its calls.
struct Node {
    process: Process,
    addr: String,
    calls_dir: PathBuf,
}

async fn start_node(id: &str, redis: &str) -> Node {
    let port = free_port();
    let calls_dir = std::env::temp_dir().join(format!("callgate-cluster-{id}-{port}"));
    let process = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_callgate"))
            .current_dir(repo_root())
            .env("RUST_LOG", "callgate=debug")
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--redis", redis, "--node-id", id, "--jwt-secret", SECRET])
            .args([
                "--max-calls-per-user",
                "1",
                "--voice",
                "espeak:en-us",
                "--record",
            ])
            .arg("--calls-dir")
            .arg(&calls_dir),
        &format!("node-{id}-{port}"),
    );
    listening(port, &process, &format!("node {id}")).await;
    Node {
        process,
        addr: format!("127.0.0.1:{port}"),
        calls_dir,
    }
}

/// The directory as `addr` shows it.
async fn cluster_view(addr: &str) -> Value {
    let reply = http_get(addr, "/v1/cluster").await;
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {reply}"))
}

/// `addr`'s directory, polled until `done` says so or 15 s (heartbeats are 2 s apart).
async fn view_until(addr: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let view = cluster_view(addr).await;
        if done(&view) || Instant::now() > deadline {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The ids of a directory's nodes.
fn node_ids(view: &Value) -> Vec<&str> {
    view["nodes"]
        .as_array()
        .map(|nodes| nodes.iter().filter_map(|n| n["id"].as_str()).collect())
        .unwrap_or_default()
}

/// A WebSocket to `addr` authenticated as `user`.
async fn connect_as(addr: &str, user: &str) -> TestCall {
    let token = callgate::server::auth::mint(SECRET, user, Duration::from_secs(600)).expect("mint");
    let bearer = format!("Bearer {token}");
    TestCall::open_with(
        &format!("ws://{addr}/v1/call"),
        &[("authorization", bearer.as_str())],
    )
    .await
    .expect("upgrade")
}

/// Connects to `addr` as `user` and sends `session.start`: the first event back, and the
/// call (kept open while it is held).
async fn start_as(addr: &str, user: &str) -> (Value, TestCall) {
    let mut ws = connect_as(addr, user).await;
    ws.send_json(json!({"type":"session.start","input":{"sampleRate":16000},
        "turnDetection":{"mode":"server_vad","silenceMs":500}}))
        .await;
    let first = ws.next_json(CHATTER).await;
    (first, ws)
}

#[tokio::test]
async fn nodes_share_a_directory_and_a_users_limit_until_one_dies() {
    let (_redis, url) = start_redis().await;
    let mut a = start_node("node-a", &url).await;
    let b = start_node("node-b", &url).await;
    let (a_addr, b_addr) = (a.addr.clone(), b.addr.clone());

    let both = |v: &Value| node_ids(v) == ["node-a", "node-b"];
    let view = view_until(&b_addr, both).await;
    assert_eq!(node_ids(&view), ["node-a", "node-b"], "{view}");
    assert_eq!(view["nodes"][0]["address"], a_addr.as_str(), "{view}");
    let view = view_until(&a_addr, both).await;
    assert_eq!(view["thisNode"], "node-a", "{view}");
    assert_eq!(view["nodes"][1]["address"], b_addr.as_str(), "{view}");

    // One call per user, counted on both nodes together.
    let (started, _ada_on_a) = start_as(&a_addr, "ada").await;
    assert_eq!(started["type"], "session.started", "{started}");
    let (refused, _) = start_as(&b_addr, "ada").await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "RATE_LIMITED", "{refused}");
    let (other, _bob) = start_as(&b_addr, "bob").await;
    assert_eq!(other["type"], "session.started", "another user: {other}");

    // Node A dies with ada's call: her slot holds until A's heartbeat lapses, then frees.
    a.process.kill();
    let killed = Instant::now();
    let (still, _) = start_as(&b_addr, "ada").await;
    assert_eq!(
        still["code"], "RATE_LIMITED",
        "right after the kill: {still}"
    );
    let (freed, _ada_on_b) = loop {
        let (first, ws) = start_as(&b_addr, "ada").await;
        if first["type"] == "session.started" || killed.elapsed() > Duration::from_secs(20) {
            break (first, ws);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        freed["type"], "session.started",
        "after the node died: {freed}"
    );
    let waited = killed.elapsed();
    assert!(
        waited <= callgate::cluster::NODE_TTL + Duration::from_secs(3),
        "freed {waited:?} after the kill"
    );
    // A's entry lapses with its slots; B's count catches up at its next heartbeat.
    let view = view_until(&b_addr, |v| node_ids(v) == ["node-b"] && v["calls"] == 2).await;
    assert_eq!(node_ids(&view), ["node-b"], "{view}");
    assert_eq!(view["calls"], 2, "bob's and ada's calls on B: {view}");
}

#[tokio::test]
async fn a_single_node_has_no_cluster_view() {
    let addr = crate::util::spawn_gateway(Default::default()).await;
    let reply = http_get(&addr.to_string(), "/v1/cluster").await;
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    assert!(reply.contains("cluster mode is off"), "{reply}");
}

#[tokio::test]
async fn a_resume_that_reaches_another_node_goes_on_with_the_call_and_loses_no_audio() {
    let (_redis, url) = start_redis().await;
    let a = start_node("relay-a", &url).await;
    let b = start_node("relay-b", &url).await;
    let both = |v: &Value| node_ids(v) == ["relay-a", "relay-b"];
    assert!(both(&view_until(&b.addr, both).await));
    let mut source = crate::util::speech(
        "I have five years of experience with Rust and distributed systems.",
        16000,
        1,
    );
    source.extend(vec![0i16; 16000 * 3 / 2]);
    let chunks: Vec<&[i16]> = source.chunks(320).collect();

    let (started, mut ws) = start_as(&a.addr, "ada").await;
    assert_eq!(started["type"], "session.started", "{started}");
    let session_id = started["sessionId"].as_str().expect("id").to_owned();
    let resume_token = started["resumeToken"].as_str().expect("token").to_owned();
    ws.send_json(json!({"type":"response.cancel"})).await;
    // The call is in the directory once A's next heartbeat has run.
    let listed = view_until(&a.addr, |v| v["calls"] == 1).await;
    assert_eq!(listed["calls"], 1, "{listed}");
    // Mid-utterance the socket to A dies; the balancer sends the reconnect to B.
    let sent = chunks.len() * 2 / 5;
    for (seq, chunk) in chunks[..sent].iter().enumerate() {
        ws.send_binary(callgate::protocol::encode_input_frame(seq as u32, chunk))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A wrong token is not relayed: B knows no such call.
    let mut bad = connect_as(&b.addr, "ada").await;
    bad.send_json(json!({"type":"session.resume","sessionId":session_id,"resumeToken":"nope"}))
        .await;
    assert_eq!(bad.next_json(CHATTER).await["code"], "SESSION_NOT_FOUND");
    // Nor another user's connection with the right token.
    let mut other = connect_as(&b.addr, "bob").await;
    other
        .send_json(
            json!({"type":"session.resume","sessionId":session_id,"resumeToken":resume_token}),
        )
        .await;
    assert_eq!(other.next_json(CHATTER).await["code"], "SESSION_NOT_FOUND");

    let mut ws = connect_as(&b.addr, "ada").await;
    ws.send_json(
        json!({"type":"session.resume","sessionId":session_id,"resumeToken":resume_token}),
    )
    .await;
    let resumed = ws.next_json(CHATTER).await;
    assert_eq!(resumed["type"], "session.resumed", "{resumed}");
    let next_seq = resumed["nextSeq"].as_u64().expect("nextSeq") as usize;
    assert!(next_seq > 0 && next_seq <= sent, "nextSeq {next_seq}");
    for (i, chunk) in chunks.iter().enumerate().skip(next_seq) {
        ws.send_binary(callgate::protocol::encode_input_frame(i as u32, chunk))
            .await;
    }
    let done = loop {
        let v = ws
            .next_json(&["audio.ack", "response.text.delta", "response.started"])
            .await;
        assert_ne!(
            v["type"],
            "closed",
            "{v}\nA:\n{}\nB:\n{}",
            a.process.log_text(),
            b.process.log_text()
        );
        if v["type"] == "response.done" && v["turnId"] == 1 {
            break v;
        }
    };
    assert_eq!(done["status"], "completed", "{done}");
    ws.send_json(json!({"type":"session.end"})).await;
    loop {
        let v = ws.next_json(CHATTER).await;
        if v["type"] == "session.ended" || v["type"] == "closed" {
            assert_eq!(v["type"], "session.ended", "{v}");
            break;
        }
    }
    assert!(
        b.process
            .log_text()
            .contains("resume relayed to the call's node"),
        "{}",
        b.process.log_text()
    );
    // The call stayed on A: its recording is the whole utterance, once.
    let recorded = crate::util::recorded_input(&a.calls_dir, &session_id, source.len()).await;
    assert!(
        recorded == source,
        "recorded {} of {} samples",
        recorded.len(),
        source.len()
    );
}
