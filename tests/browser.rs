//! The browser page in a real browser: Debian's chromium, driven by playwright-core
//! (`tests/browser/drive.mjs`), against an in-process gateway on the real engines. The
//! microphone is chromium's fake capture device playing an espeak-ng fixture, so the page
//! runs exactly as for a candidate: getUserMedia, the capture worklet, binary frames, the
//! player worklet. Screenshots go to `target/tmp/browser/<test>/`.
//!
//! scripts/test installs chromium (apt) and playwright-core (`npm ci` in tests/browser);
//! without them these tests fail with a message saying so, never skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::util::{
    call_record, espeak_wav, fixture_dir, http_get, recorded_in, repo_root, spawn_gateway,
};

const CHROMIUM: &str = "/usr/bin/chromium";

/// One browser at a time: two chromiums and whisper on a 2-core machine would mostly
/// measure the machine.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A WAV at 48 kHz mono (a common device rate; the server resamples): `parts` are
/// spoken sentences and silences in order.
enum Part<'a> {
    Say(&'a str),
    Silence(f64),
}

fn fixture(name: &str, parts: &[Part]) -> PathBuf {
    let dir = fixture_dir();
    let mut args: Vec<PathBuf> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        match part {
            Part::Say(text) => args.push(espeak_wav(text, "en-us", 48000, 1)),
            Part::Silence(s) => {
                let path = dir.join(format!("{name}-silence{i}.wav"));
                run(Command::new("sox")
                    .args(["-n", "-r", "48000", "-c", "1", "-b", "16"])
                    .arg(&path)
                    .args(["trim", "0", &s.to_string()]));
                args.push(path);
            }
        }
    }
    let out = dir.join(format!("browser-{name}.wav"));
    run(Command::new("sox").args(&args).args(["-b", "16"]).arg(&out));
    out
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("sox (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where a test's screenshots go.
fn output_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("browser")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("output dir");
    dir
}

/// Runs drive.mjs for one call and returns what the page showed.
async fn drive(addr: std::net::SocketAddr, wav: &Path, out: &Path, scenario: &str) -> Value {
    drive_page(&format!("http://{addr}/"), wav, out, scenario).await
}

/// [`drive`] on the page at `url` (e.g. with `?access_token=`).
async fn drive_page(url: &str, wav: &Path, out: &Path, scenario: &str) -> Value {
    let browser_dir = repo_root().join("tests/browser");
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: run scripts/setup (it installs Debian's chromium)"
    );
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci` in tests/browser (scripts/test does)"
    );
    let run = tokio::process::Command::new("node")
        .current_dir(&browser_dir)
        .arg("drive.mjs")
        .arg(url)
        .arg(wav)
        .arg(out)
        .arg(scenario)
        .kill_on_drop(true)
        .output();
    // Generous: whisper and chromium share two cores with the rest of the suite.
    let output = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the browser run took over 240 s")
        .expect("node (scripts/setup installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let page: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "drive.mjs printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(
        output.status.success() && page.get("error").is_none(),
        "the page run failed: {page:#}"
    );
    page
}

/// The transcript entry of `who` (`user` or `ai`) for `turn`.
fn entry<'a>(page: &'a Value, turn: u64, who: &str) -> &'a Value {
    page["turns"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["turn"] == turn && t["who"] == who))
        .unwrap_or_else(|| panic!("no {who} entry for turn {turn}: {page:#}"))
}

fn response_done(record: &[Value], turn: u64) -> &Value {
    record
        .iter()
        .find(|e| e["type"] == "response.done" && e["turnId"] == turn)
        .unwrap_or_else(|| panic!("no response.done for turn {turn} in the call record"))
}

async fn gateway(calls_dir: &Path) -> std::net::SocketAddr {
    let _ = std::fs::remove_dir_all(calls_dir);
    spawn_gateway(recorded_in(calls_dir, Default::default())).await
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        path.display()
    );
}

const ANSWER: &str = "I have five years of experience building backend services in Rust.";

/// A breath, [`ANSWER`] (it interrupts the greeting), then quiet while the reply plays.
fn answer_fixture() -> PathBuf {
    spoken_after("answer", 1.0, ANSWER)
}

/// `text` said after `quiet_s` of silence, then 40 s of quiet while the call goes on.
fn spoken_after(name: &str, quiet_s: f64, text: &str) -> PathBuf {
    fixture(
        name,
        &[Part::Silence(quiet_s), Part::Say(text), Part::Silence(40.0)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_answer_is_transcribed_answered_and_played_in_the_page() {
    let _one = ONE_BROWSER.lock().await;
    let calls_dir = std::env::temp_dir().join("callgate-browser-answer-calls");
    let addr = gateway(&calls_dir).await;
    let wav = answer_fixture();
    let out = output_dir("answer");
    let page = drive(addr, &wav, &out, "answer").await;

    let user = entry(&page, 1, "user");
    assert_eq!(user["textClass"], "text final", "{page:#}");
    let heard = user["text"].as_str().unwrap_or_default();
    let wer = callgate::asr::score::wer(ANSWER, heard);
    assert!(wer <= 0.5, "final transcript {heard:?}: WER {wer:.2}");

    let ai = entry(&page, 1, "ai");
    assert_eq!(ai["status"], "completed", "{page:#}");
    let received = ai["receivedMs"].as_u64().expect("audio received");
    assert!(received > 500, "{page:#}");
    assert_eq!(ai["playedMs"], received, "played to the end: {page:#}");

    let session_id = page["sessionId"].as_str().expect("session id");
    let record = call_record(&calls_dir, session_id).await;
    assert!(
        record.iter().any(|e| e["type"] == "transcript"
            && e["turnId"] == 1
            && e["isFinal"] == true
            && e["text"] == heard),
        "the call record has the page's final transcript"
    );
    let done = response_done(&record, 1);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["text"], ai["text"], "the page shows the whole answer");
    assert_eq!(done["heardText"], done["text"]);

    let metrics = http_get(&addr.to_string(), "/metrics").await;
    assert_eq!(
        crate::util::metric::<u64>(&metrics, "callgate_calls_total"),
        1
    );
    assert!(crate::util::metric::<u64>(&metrics, "callgate_turns_completed_total") >= 1);
    assert_eq!(
        crate::util::metric::<u64>(&metrics, "callgate_turns_failed_total"),
        0
    );

    // After the call: the recordings the server kept are offered for download.
    let links: Vec<&str> = page["downloads"]
        .as_array()
        .expect("downloads")
        .iter()
        .filter_map(|d| d["href"].as_str())
        .collect();
    for file in ["input.wav", "output.wav"] {
        let url = format!("/v1/calls/{session_id}/{file}");
        assert!(links.contains(&url.as_str()), "{file} link: {links:?}");
        let reply = http_get(&addr.to_string(), &url).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{url}");
    }
    assert_png(&out.join("call.png"));
    assert_png(&out.join("after.png"));
    // The end screen opens the call's report: a timeline and two charts, no script.
    let report = &page["report"];
    assert!(report["answers"].as_u64() >= Some(1), "{report:#}");
    assert_eq!(report["svgs"], 3, "{report:#}");
    assert!(
        report["timelineBars"].as_u64() >= Some(2),
        "both lanes: {report:#}"
    );
    assert_eq!(report["scripts"], 0, "{report:#}");
    assert_png(&out.join("report.png"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaking_over_the_interviewer_cancels_it_and_clears_the_page_playback() {
    let _one = ONE_BROWSER.lock().await;
    let calls_dir = std::env::temp_dir().join("callgate-browser-barge-calls");
    let addr = gateway(&calls_dir).await;
    // The driver types turn 1 as soon as the call is live, so the reply (about 6 s of
    // speech) starts within a second; the fixture speaks 3 s in, over it.
    let wav = spoken_after(
        "barge-in",
        3.0,
        "Sorry, let me add that I also mentor two junior engineers.",
    );
    let out = output_dir("barge-in");
    let page = drive(addr, &wav, &out, "barge-in").await;

    assert_eq!(entry(&page, 1, "user")["text"], ANSWER, "the typed turn");
    let first = entry(&page, 1, "ai");
    assert_eq!(first["status"], "cancelled", "{page:#}");
    // The page emptied its player the moment the cancel arrived, and nothing of turn 1
    // played after that: what it played plus what it dropped is at most what arrived.
    let cleared = first["clearedMs"].as_u64().expect("playback cleared");
    let played = first["playedMs"].as_u64().unwrap_or(0);
    let received = first["receivedMs"].as_u64().unwrap_or(0);
    assert!(played + cleared <= received + 1, "{page:#}");

    let session_id = page["sessionId"].as_str().expect("session id");
    let record = call_record(&calls_dir, session_id).await;
    let done = response_done(&record, 1);
    assert_eq!(done["status"], "cancelled");
    let heard = done["heardText"].as_str().unwrap_or_default();
    let text = done["text"].as_str().unwrap_or_default();
    assert!(text.starts_with(heard), "heardText is a prefix: {done}");
    assert!(
        heard.len() < text.len(),
        "the interrupted reply was not heard in full: {done}"
    );

    assert!(
        received > 0,
        "the interviewer was speaking when interrupted: {page:#}"
    );
    // The interruption became the next turn, and it was answered.
    assert_eq!(
        entry(&page, 2, "user")["textClass"],
        "text final",
        "{page:#}"
    );
    assert_eq!(response_done(&record, 2)["status"], "completed");
    let metrics = http_get(&addr.to_string(), "/metrics").await;
    assert!(crate::util::metric::<u64>(&metrics, "callgate_turns_cancelled_total") >= 1);
    assert_png(&out.join("call.png"));
}

#[tokio::test]
async fn the_page_and_the_contract_are_served() {
    let calls_dir = std::env::temp_dir().join("callgate-browser-static-calls");
    let addr = gateway(&calls_dir).await.to_string();
    let page = http_get(&addr, "/").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Start call") && page.contains("/app.js"));
    for (path, needle) in [
        ("/app.js", "session.start"),
        ("/worklets.js", "registerProcessor('player'"),
        ("/v1/schema", "\"$defs\""),
    ] {
        let reply = http_get(&addr, path).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{path}: {reply}");
        assert!(reply.contains(needle), "{path}");
    }
    // The page is ES modules: a browser runs one only when served as JavaScript.
    for module in [
        "/app.js",
        "/protocol.js",
        "/connection.js",
        "/audio.js",
        "/transcript.js",
        "/after.js",
    ] {
        let reply = http_get(&addr, module).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{module}: {reply:.80}");
        let head = reply.split("\r\n\r\n").next().unwrap_or_default();
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/javascript"),
            "{module}: {head}"
        );
    }
    let ts = http_get(&addr, "/v1/callgate.d.ts").await;
    let checked_in =
        std::fs::read_to_string(repo_root().join(callgate::schema::TYPESCRIPT_PATH)).expect("d.ts");
    assert!(
        ts.ends_with(&checked_in),
        "served .d.ts differs from docs/callgate.d.ts"
    );
    let personas: Value = serde_json::from_str(
        http_get(&addr, "/v1/personas")
            .await
            .split("\r\n\r\n")
            .nth(1)
            .expect("body"),
    )
    .expect("JSON");
    assert_eq!(personas["default"], "interviewer");
    let missing = http_get(
        &addr,
        "/v1/calls/0123456789abcdef0123456789abcdef/output.wav",
    )
    .await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_resumes_a_dropped_call_and_keeps_what_was_said_meanwhile() {
    let _one = ONE_BROWSER.lock().await;
    let calls_dir = std::env::temp_dir().join("callgate-browser-resume-calls");
    let _ = std::fs::remove_dir_all(&calls_dir);
    // With tokens on, as a deployment would run: the page gets its token in its address
    // and must use it for the call, the resume and the recordings.
    let secret = "a-test-secret-of-32-bytes-or-more!";
    let addr = spawn_gateway(recorded_in(
        &calls_dir,
        callgate::config::ServeSettings {
            jwt_secret: Some(secret.into()),
            ..Default::default()
        },
    ))
    .await;
    let token =
        callgate::server::auth::mint(secret, "ada", Duration::from_secs(600)).expect("mint");
    // The call's socket dies 2.5 s after it opened, in the middle of the answer, and the
    // first reconnect is refused, so the outage lasts at least the page's first two
    // backoffs (0.5 s + 1 s); the page loads and reconnects through the same relay.
    let relay = crate::util::flaky_relay_refusing(addr, Duration::from_millis(2500), 1).await;
    let wav = answer_fixture();
    let out = output_dir("resume");
    let page = drive_page(
        &format!("http://{relay}/?access_token={token}"),
        &wav,
        &out,
        "resume",
    )
    .await;

    assert_eq!(page["resumes"], 1, "the page resumed once: {page:#}");
    let user = entry(&page, 1, "user");
    assert_eq!(user["textClass"], "text final", "{page:#}");
    let heard = user["text"].as_str().unwrap_or_default();
    let wer = callgate::asr::score::wer(ANSWER, heard);
    assert!(wer <= 0.5, "final transcript {heard:?}: WER {wer:.2}");
    assert_eq!(entry(&page, 1, "ai")["status"], "completed", "{page:#}");

    let session_id = page["sessionId"].as_str().expect("session id");
    let record = call_record(&calls_dir, session_id).await;
    assert!(
        !record
            .iter()
            .any(|e| e["type"] == "error" && e["code"] == "AUDIO_GAP"),
        "no input gap across the drop"
    );
    assert_eq!(response_done(&record, 1)["status"], "completed");
    // What the candidate said while the page was reconnecting was kept and sent after the
    // resume: the server's input is as long as the call, not shorter by the outage. The
    // margin is half the shortest outage: the call also counts the page's start-up before
    // its microphone's first chunk, which is longer on a loaded machine (300 ms seen).
    let ended = record
        .iter()
        .find(|e| e["type"] == "session.ended")
        .expect("session.ended in the record");
    let call_ms = ended["durationMs"].as_u64().expect("durationMs");
    let input =
        hound::WavReader::open(calls_dir.join(session_id).join("input.wav")).expect("input.wav");
    let input_ms = input.duration() as u64 * 1000 / input.spec().sample_rate as u64;
    eprintln!("call {call_ms} ms, input {input_ms} ms, transcript {heard:?}");
    assert!(
        input_ms + 750 >= call_ms,
        "input {input_ms} ms for a {call_ms} ms call: audio of the outage was lost"
    );
    // The report and the recordings are offered with the token, which the server requires.
    let links: Vec<&str> = page["downloads"]
        .as_array()
        .expect("downloads")
        .iter()
        .filter_map(|d| d["href"].as_str())
        .filter(|h| h.starts_with("/v1/calls/"))
        .collect();
    assert_eq!(links.len(), 4, "report, input, output, events: {links:?}");
    assert!(links[0].contains("/report.html?access_token="), "{links:?}");
    for link in links {
        let reply = http_get(&addr.to_string(), link).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{link}: {reply:.80}");
        let bare = link.split('?').next().unwrap_or_default();
        let reply = http_get(&addr.to_string(), bare).await;
        assert!(
            reply.starts_with("HTTP/1.1 401"),
            "{bare} without a token: {reply:.80}"
        );
    }
    assert_png(&out.join("call.png"));
}

/// Quiet from the fake microphone: the calls below are driven by typing and by the relay.
fn silent_fixture() -> PathBuf {
    fixture("silent", &[Part::Silence(60.0)])
}

/// The transcript entries of `who` for `turn`, in page order (one per call of the visit).
fn entries<'a>(page: &'a Value, turn: u64, who: &str) -> Vec<&'a Value> {
    page["turns"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter(|t| t["turn"] == turn && t["who"] == who)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_call_in_the_same_visit_has_its_controls() {
    let _one = ONE_BROWSER.lock().await;
    let calls_dir = std::env::temp_dir().join("callgate-browser-second-calls");
    let addr = gateway(&calls_dir).await;
    let out = output_dir("second-call");
    let page = drive(addr, &silent_fixture(), &out, "second-call").await;

    assert_ne!(page["firstSessionId"], page["sessionId"], "{page:#}");
    for control in ["mute", "end", "typed"] {
        assert_eq!(
            page["secondCallControls"][control], true,
            "#{control} is shown in the second call: {page:#}"
        );
    }
    assert_eq!(entry(&page, 1, "user")["text"], ANSWER, "{page:#}");
    assert_eq!(entry(&page, 1, "ai")["status"], "completed", "{page:#}");
    let session_id = page["sessionId"].as_str().expect("session id");
    assert_eq!(
        response_done(&call_record(&calls_dir, session_id).await, 1)["status"],
        "completed"
    );
    assert_png(&out.join("after.png"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_while_reconnecting_ends_the_call() {
    let _one = ONE_BROWSER.lock().await;
    let calls_dir = std::env::temp_dir().join("callgate-browser-end-reconnecting-calls");
    let addr = gateway(&calls_dir).await;
    // The call drops 2.5 s in and the next two reconnects fail, so the page is waiting 2 s
    // for its third when End is pressed; the fourth would get through.
    let relay = crate::util::flaky_relay_refusing(addr, Duration::from_millis(2500), 2).await;
    let out = output_dir("end-reconnecting");
    let page = drive(relay, &silent_fixture(), &out, "end-reconnecting").await;

    assert_eq!(
        page["socketsBeforeEnd"], 3,
        "one call, two refused: {page:#}"
    );
    assert_eq!(
        page["socketsOpenedAfterEnd"], 0,
        "no connection after End: {page:#}"
    );
    assert_eq!(page["pingsAfterEnd"], 0, "no ping after End: {page:#}");
    assert_eq!(page["conn"]["state"], "ended", "{page:#}");
    assert_eq!(page["conn"]["text"], "Call ended", "{page:#}");
    assert_eq!(page["afterShown"], true, "{page:#}");
    assert_png(&out.join("after.png"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_refused_resume_the_new_call_starts_clean() {
    let _one = ONE_BROWSER.lock().await;
    let calls_dir = std::env::temp_dir().join("callgate-browser-refused-calls");
    let _ = std::fs::remove_dir_all(&calls_dir);
    // The grace is over before the page's first reconnect (0.5 s), so its resume is refused.
    let addr = spawn_gateway(recorded_in(
        &calls_dir,
        callgate::config::ServeSettings {
            resume_grace_s: Some(0.2),
            ..Default::default()
        },
    ))
    .await;
    // The candidate speaks over the greeting (it is cancelled), then the call drops.
    let relay = crate::util::flaky_relay(addr, Duration::from_millis(3000)).await;
    let wav = spoken_after("refused", 1.0, "Hello, I am ready to begin.");
    let out = output_dir("refused-resume");
    let page = drive(relay, &wav, &out, "refused-resume").await;

    let first = page["firstSessionId"].as_str().expect("first session id");
    let second = page["sessionId"].as_str().expect("second session id");
    assert_ne!(first, second, "a new call started: {page:#}");
    assert!(
        page["notices"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n
                .as_str()
                .is_some_and(|n| n.contains("could not be resumed")))),
        "{page:#}"
    );
    let first_greeting = response_done(&call_record(&calls_dir, first).await, 0).clone();
    assert_eq!(
        first_greeting["status"], "cancelled",
        "the first call's greeting was interrupted"
    );
    let second_greeting = response_done(&call_record(&calls_dir, second).await, 0).clone();
    let greetings = entries(&page, 0, "ai");
    assert_eq!(greetings.len(), 2, "one greeting per call: {page:#}");
    assert_eq!(
        greetings[0]["text"], first_greeting["text"],
        "the first call's greeting is as it ended: {page:#}"
    );
    let new = greetings[1];
    assert_eq!(new["status"], "completed", "{page:#}");
    assert_eq!(new["text"], second_greeting["text"], "{page:#}");
    let received = new["receivedMs"].as_u64().unwrap_or(0);
    assert!(received > 500, "the new greeting's audio arrived: {page:#}");
    assert_eq!(new["playedMs"], received, "and was played: {page:#}");
    assert_eq!(
        page["lateFramesDropped"], 0,
        "no frame of it dropped: {page:#}"
    );
    assert_png(&out.join("call.png"));
}

/// What speech over the interviewer in [`overlap_fixture`] says to take the floor.
const INTERRUPTION: &str = "Sorry, can I stop you there?";

/// Both over the greeting (about 12 s of speech, from within a second of the call's
/// start): a backchannel 3 s in, then, 7 s after it, an interruption: late enough that a
/// slow decode (3.2 s of pause at a load of 5) has resumed the greeting, early enough
/// that the greeting, paused meanwhile, is still speaking. Whisper hears espeak-ng's
/// "okay" as a backchannel; its "mm hmm" comes out as a run of letters.
fn overlap_fixture() -> PathBuf {
    fixture(
        "overlap",
        &[
            Part::Silence(3.0),
            Part::Say("Okay."),
            Part::Silence(7.0),
            Part::Say(INTERRUPTION),
            Part::Silence(40.0),
        ],
    )
}

/// The player's reports (all but `pos`) for `turn`, in order.
fn player_log(page: &Value, turn: u64) -> Vec<&Value> {
    page["playerLog"]
        .as_array()
        .map(|log| log.iter().filter(|r| r["turn"] == turn).collect())
        .unwrap_or_default()
}

/// Samples of the page's output (24 kHz, as it asks) in ms, rounded as the page does.
fn output_ms(report: &Value, field: &str) -> u64 {
    let samples = report[field].as_u64().unwrap_or(0);
    (samples * 1000 + 12_000) / 24_000
}

/// The `playedMs` of each `playback.position` the page sent for `turn` after it received
/// the `from`-th (0-based) `response.paused` of that turn and before the next `until`.
fn positions_while_paused(page: &Value, turn: u64, from: usize, until: &str) -> Vec<u64> {
    let wire = page["wire"].as_array().expect("wire");
    let of_turn = |f: &&Value, dir: &str, kind: &str| {
        f["dir"] == dir && f["type"] == kind && f["turnId"] == turn
    };
    let start = wire
        .iter()
        .enumerate()
        .filter(|(_, f)| of_turn(f, "in", "response.paused"))
        .nth(from)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no response.paused #{from} for turn {turn}: {page:#}"));
    wire[start + 1..]
        .iter()
        .take_while(|f| !of_turn(f, "in", until))
        .filter(|f| of_turn(f, "out", "playback.position"))
        .filter_map(|f| f["playedMs"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_over_the_interviewer_pauses_the_page_a_backchannel_resumes_it_and_an_interruption_clears_it()
 {
    let _one = ONE_BROWSER.lock().await;
    let calls_dir = std::env::temp_dir().join("callgate-browser-overlap-calls");
    let addr = gateway(&calls_dir).await;
    let out = output_dir("overlap");
    let page = drive(addr, &overlap_fixture(), &out, "overlap").await;
    assert_eq!(
        page["turnDetections"],
        serde_json::json!([{ "mode": "smart" }]),
        "normal patience leaves the silences to the server's defaults"
    );
    assert_eq!(page["pausedStatus"], "Paused, listening…", "{page:#}");

    // The greeting's player: held with its buffer, played on from the same sample after
    // "okay", held again by the interruption, then emptied.
    let log = player_log(&page, 0);
    let kinds: Vec<&str> = log.iter().filter_map(|r| r["type"].as_str()).collect();
    assert_eq!(
        kinds,
        ["paused", "resumed", "paused", "cleared"],
        "{page:#}"
    );
    let (paused, resumed, paused_again, cleared) = (log[0], log[1], log[2], log[3]);
    let queued = |r: &Value| r["queued"].as_u64().unwrap_or(0);
    assert!(queued(paused) > 0, "the pause kept the buffer: {page:#}");
    assert_eq!(
        resumed["played"], paused["played"],
        "nothing played while paused"
    );
    assert!(
        queued(resumed) >= queued(paused),
        "all of it kept: {page:#}"
    );
    assert!(
        paused_again["played"].as_u64() > resumed["played"].as_u64(),
        "it played on after the backchannel: {page:#}"
    );
    assert_eq!(cleared["played"], paused_again["played"], "{page:#}");
    let dropped = cleared["dropped"].as_u64().unwrap_or(0);
    assert!(
        queued(paused_again) > 0 && dropped >= queued(paused_again),
        "the interruption dropped what was held: {page:#}"
    );
    // playback.position never ran ahead of the player while it was paused, and said where
    // it stopped.
    for (from, until, at) in [
        (0, "response.resumed", paused),
        (1, "response.done", paused_again),
    ] {
        let sent = positions_while_paused(&page, 0, from, until);
        let stopped = output_ms(at, "played");
        assert!(
            sent.iter().all(|ms| *ms <= stopped),
            "{sent:?} past {stopped}"
        );
        assert!(
            sent.contains(&stopped),
            "{sent:?} lacks {stopped}: {page:#}"
        );
    }

    let greeting = entry(&page, 0, "ai");
    assert_eq!(greeting["status"], "cancelled", "{page:#}");
    let played = greeting["playedMs"].as_u64().unwrap_or(0);
    let cleared_ms = greeting["clearedMs"].as_u64().expect("playback cleared");
    let received = greeting["receivedMs"].as_u64().unwrap_or(0);
    assert!(played + cleared_ms <= received + 1, "{page:#}");
    // "Okay" was no turn of its own; the interruption was, and it was answered.
    let users: Vec<&Value> = page["turns"]
        .as_array()
        .map(|ts| ts.iter().filter(|t| t["who"] == "user").collect())
        .unwrap_or_default();
    assert_eq!(users.len(), 1, "one user turn: {page:#}");
    let heard = entry(&page, 1, "user")["text"].as_str().unwrap_or_default();
    let wer = callgate::asr::score::wer(INTERRUPTION, heard);
    assert!(wer <= 0.5, "interruption {heard:?}: WER {wer:.2}");

    let session_id = page["sessionId"].as_str().expect("session id");
    let record = call_record(&calls_dir, session_id).await;
    let done = response_done(&record, 0);
    assert_eq!(done["status"], "cancelled");
    let said = done["text"].as_str().unwrap_or_default();
    let heard_text = done["heardText"].as_str().unwrap_or_default();
    assert!(
        said.starts_with(heard_text) && heard_text.len() < said.len(),
        "{done}"
    );
    let resumed_event = record
        .iter()
        .find(|e| e["type"] == "response.resumed" && e["turnId"] == 0)
        .expect("response.resumed in the call record");
    let nod = resumed_event["text"].as_str().unwrap_or_default();
    assert!(
        callgate::eot::backchannel::is_backchannel(nod),
        "{resumed_event}"
    );
    assert_eq!(response_done(&record, 1)["status"], "completed");
    assert_png(&out.join("paused.png"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_candidate_chooses_how_patient_the_interviewer_is_and_the_page_remembers() {
    let _one = ONE_BROWSER.lock().await;
    let calls_dir = std::env::temp_dir().join("callgate-browser-patience-calls");
    let addr = gateway(&calls_dir).await;
    let out = output_dir("patience");
    let page = drive(addr, &silent_fixture(), &out, "patience").await;

    assert_eq!(
        page["patienceShown"], "patient",
        "kept over a reload: {page:#}"
    );
    let sent = page["turnDetections"].as_array().expect("turnDetections");
    assert_eq!(sent.len(), 1, "{page:#}");
    let asked: callgate::protocol::TurnDetection =
        serde_json::from_value(sent[0].clone()).expect("a turnDetection");
    asked.validate().expect("within the server's limits");
    assert_eq!(asked.mode, callgate::protocol::TurnMode::Smart);
    let (min, max) = asked.smart_silences_ms();
    assert!(
        min > callgate::protocol::DEFAULT_MIN_SILENCE_MS
            && max > callgate::protocol::DEFAULT_MAX_SILENCE_MS,
        "patient waits longer than the defaults: {asked:?}"
    );
    assert!(
        page["sessionId"].is_string(),
        "the server took it: {page:#}"
    );
}
