//! What the HTTP side serves besides calls: the embedded browser page and its scripts, the
//! typed contract (`/v1/schema`, `/v1/callgate.d.ts`), and a call's files
//! (`/v1/calls/<sessionId>` lists them, `/v1/calls/<sessionId>/<file>` downloads one) and
//! its report (`/v1/calls/<sessionId>/report`, `.../report.html`).

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// One HTTP answer: status line, content type and body.
pub struct Reply {
    /// e.g. `200 OK`.
    pub status: &'static str,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body, or a file to stream as the body.
    pub body: Body,
}

/// A reply body.
pub enum Body {
    /// Bytes in memory.
    Bytes(std::borrow::Cow<'static, [u8]>),
    /// A file on disk, streamed (recordings can be tens of MB).
    File(PathBuf),
}

impl Reply {
    fn ok(content_type: &'static str, body: impl Into<std::borrow::Cow<'static, [u8]>>) -> Self {
        Self {
            status: "200 OK",
            content_type,
            body: Body::Bytes(body.into()),
        }
    }

    /// A plain-text 404.
    pub fn not_found() -> Self {
        Self {
            status: "404 Not Found",
            content_type: "text/plain",
            body: Body::Bytes(b"not found\n".as_slice().into()),
        }
    }
}

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const PROTOCOL_JS: &str = include_str!("../web/protocol.js");
const CONNECTION_JS: &str = include_str!("../web/connection.js");
const AUDIO_JS: &str = include_str!("../web/audio.js");
const TRANSCRIPT_JS: &str = include_str!("../web/transcript.js");
const AFTER_JS: &str = include_str!("../web/after.js");
const WORKLETS_JS: &str = include_str!("../web/worklets.js");

static SCHEMA: LazyLock<String> = LazyLock::new(|| crate::schema::json_schema().to_string());
static TYPESCRIPT: LazyLock<String> = LazyLock::new(crate::schema::typescript);

/// The page, its scripts and the contract, by path; `None` when `path` is none of them.
pub fn asset(path: &str) -> Option<Reply> {
    let js = "text/javascript; charset=utf-8";
    Some(match path {
        "/" | "/index.html" => Reply::ok("text/html; charset=utf-8", INDEX_HTML.as_bytes()),
        "/app.js" => Reply::ok(js, APP_JS.as_bytes()),
        "/protocol.js" => Reply::ok(js, PROTOCOL_JS.as_bytes()),
        "/connection.js" => Reply::ok(js, CONNECTION_JS.as_bytes()),
        "/audio.js" => Reply::ok(js, AUDIO_JS.as_bytes()),
        "/transcript.js" => Reply::ok(js, TRANSCRIPT_JS.as_bytes()),
        "/after.js" => Reply::ok(js, AFTER_JS.as_bytes()),
        "/worklets.js" => Reply::ok(js, WORKLETS_JS.as_bytes()),
        "/v1/schema" => Reply::ok("application/schema+json", SCHEMA.as_bytes()),
        "/v1/callgate.d.ts" => Reply::ok("text/plain; charset=utf-8", TYPESCRIPT.as_bytes()),
        _ => return None,
    })
}

/// Files of a call folder the page may link to, with their content types.
const CALL_FILES: &[(&str, &str)] = &[
    ("input.wav", "audio/wav"),
    ("output.wav", "audio/wav"),
    ("events.jsonl", "application/x-ndjson"),
];

/// Session ids are 32 lowercase hex digits (`call::random_id`); anything else is refused
/// before it can reach the file system.
fn valid_session_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Who the call a `/v1/calls/<id>[/<file>]` path names belongs to: the `user` of the
/// `call.meta` line that starts its event log; `None` for no such call or no user.
pub fn call_owner(calls_dir: &Path, path: &str) -> Option<String> {
    use std::io::{BufRead, Read};
    let id = path.strip_prefix("/v1/calls/")?.split('/').next()?;
    if !valid_session_id(id) {
        return None;
    }
    let file = std::fs::File::open(calls_dir.join(id).join("events.jsonl")).ok()?;
    let mut first = String::new();
    // The meta line is short; a bound keeps a damaged log from being read whole.
    std::io::BufReader::new(file.take(64 * 1024))
        .read_line(&mut first)
        .ok()?;
    let meta: serde_json::Value = serde_json::from_str(&first).ok()?;
    (meta["type"] == "call.meta")
        .then(|| meta["user"].as_str().map(str::to_owned))
        .flatten()
}

/// `/v1/calls/<id>` (which files exist, JSON) and `/v1/calls/<id>/<file>` (the file);
/// `None` when `path` is not under `/v1/calls/`.
///
/// Without tokens the session id is the capability: 128 random bits, known only to the
/// client that made the call (and whoever it shares it with). With tokens the server also
/// checks the caller is the call's user ([`call_owner`]) before this is asked.
pub fn call_files(calls_dir: Option<&Path>, path: &str) -> Option<Reply> {
    let rest = path.strip_prefix("/v1/calls/")?;
    let (id, file) = match rest.split_once('/') {
        Some((id, file)) => (id, Some(file)),
        None => (rest, None),
    };
    let Some(dir) = calls_dir
        .filter(|_| valid_session_id(id))
        .map(|d| d.join(id))
    else {
        return Some(Reply::not_found());
    };
    if !dir.is_dir() {
        return Some(Reply::not_found());
    }
    Some(match file {
        None => {
            let files: Vec<_> = CALL_FILES
                .iter()
                .filter_map(|(name, _)| {
                    let len = std::fs::metadata(dir.join(name)).ok()?.len();
                    Some(serde_json::json!({"name": name, "bytes": len, "url": format!("/v1/calls/{id}/{name}")}))
                })
                .collect();
            let body = serde_json::json!({"sessionId": id, "files": files}).to_string();
            Reply::ok("application/json", body.into_bytes())
        }
        Some("report") => report(&dir, false),
        Some("report.html") => report(&dir, true),
        Some(name) => match CALL_FILES.iter().find(|(n, _)| *n == name) {
            Some((name, content_type)) if dir.join(name).is_file() => Reply {
                status: "200 OK",
                content_type,
                body: Body::File(dir.join(name)),
            },
            _ => Reply::not_found(),
        },
    })
}

/// The call's report: the one written when it ended, or, while it is still going, one
/// built from its log so far.
fn report(dir: &Path, html: bool) -> Reply {
    let (file, content_type) = if html {
        ("report.html", "text/html; charset=utf-8")
    } else {
        ("report.json", "application/json")
    };
    if dir.join(file).is_file() {
        return Reply {
            status: "200 OK",
            content_type,
            body: Body::File(dir.join(file)),
        };
    }
    match crate::report::read(dir) {
        Ok(r) if html => Reply::ok(content_type, crate::report::html::render(&r).into_bytes()),
        Ok(r) => Reply::ok(content_type, serde_json::to_vec(&r).unwrap_or_default()),
        Err(_) => Reply::not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_paths_never_leave_the_calls_folder() {
        let dir = std::env::temp_dir().join(format!("callgate-web-{}", std::process::id()));
        let id = "0123456789abcdef0123456789abcdef";
        std::fs::create_dir_all(dir.join(id)).unwrap();
        std::fs::write(dir.join(id).join("output.wav"), b"RIFF").unwrap();
        std::fs::write(dir.join("secret.txt"), b"no").unwrap();
        let status = |p: &str| call_files(Some(&dir), p).map(|r| r.status);
        assert_eq!(
            status(&format!("/v1/calls/{id}/output.wav")),
            Some("200 OK")
        );
        assert_eq!(status(&format!("/v1/calls/{id}")), Some("200 OK"));
        for bad in [
            format!("/v1/calls/{id}/../secret.txt"),
            format!("/v1/calls/{id}/input.wav"),
            format!("/v1/calls/{id}/report"),
            "/v1/calls/../secret.txt".to_string(),
            "/v1/calls/..%2fsecret.txt".to_string(),
            "/v1/calls/0123456789abcdef0123456789abcdeg".to_string(),
        ] {
            assert_eq!(status(&bad), Some("404 Not Found"), "{bad}");
        }
        assert!(call_files(None, &format!("/v1/calls/{id}")).is_some_and(|r| r.status != "200 OK"));
        assert!(call_files(Some(&dir), "/v1/personas").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
