//! A streaming client for any OpenAI-compatible chat endpoint (`POST {base}/chat/completions`
//! with `"stream": true`): llama.cpp server, vLLM, Ollama, OpenAI.
//!
//! Only plain `http://` is built in (reqwest has no TLS feature enabled here); a remote
//! `https://` API needs reqwest's `rustls` feature.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::stream;
use serde::{Deserialize, Serialize};

use super::sse::SseParser;
use super::{
    ChatMessage, ChatModel, ChatRequest, LlmError, LlmEvent, Role, TokenStream, TokenUsage,
};

/// How much of an error response body ends up in [`LlmError::Http`].
const ERROR_BODY_LIMIT: usize = 512;

/// An OpenAI-compatible streaming chat model.
///
/// The system message is the persona's `system_prompt` filled with the call's context,
/// followed by the history as is.
///
/// End of stream: `data: [DONE]` ends the turn; a body that ends cleanly without it (some
/// servers omit it) also ends the turn without error, since the transport already
/// guarantees the body was complete. A body that breaks off is [`LlmError::Body`].
///
/// Cancellation: dropping the [`TokenStream`] drops the response, which closes the
/// connection, so the server stops generating.
#[derive(Debug, Clone)]
pub struct OpenAiChat {
    /// API root, e.g. `http://127.0.0.1:8080/v1`; `/chat/completions` is appended.
    pub base_url: String,
    /// The `model` field of the request; local servers often ignore it.
    pub model: String,
    /// Sent as `Authorization: Bearer ...` when set; local servers need none.
    pub api_key: Option<String>,
    /// Shared connection pool.
    pub client: reqwest::Client,
    /// Caps the answer length (`max_tokens`); spoken answers should be short anyway.
    pub max_tokens: Option<u32>,
    /// Sampling temperature; `None` leaves the server's default.
    pub temperature: Option<f32>,
    /// How much conversation is sent with each request.
    pub history: HistoryLimits,
}

/// The newest part of the conversation sent to the model: a long call must not outgrow the
/// model's context. The persona's system prompt is always sent on top of this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Most user/assistant messages.
    pub max_messages: usize,
    /// Most characters over those messages (the newest message is sent whole regardless).
    pub max_chars: usize,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        Self {
            max_messages: HISTORY_MAX_MESSAGES,
            max_chars: HISTORY_MAX_CHARS,
        }
    }
}

impl OpenAiChat {
    /// A client for `base_url` (scheme `http`) and `model`, with a 5 s connect timeout and
    /// no overall timeout (a turn may stream for a while; the caller cancels by dropping).
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Result<Self, LlmError> {
        Self::with_connect_timeout(base_url, model, Duration::from_secs(5))
    }

    /// As [`OpenAiChat::new`], with this TCP connect timeout.
    pub fn with_connect_timeout(
        base_url: impl Into<String>,
        model: impl Into<String>,
        connect_timeout: Duration,
    ) -> Result<Self, LlmError> {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base_url)
            .map_err(|e| LlmError::Config(format!("base URL {base_url:?}: {e}")))?;
        if url.scheme() != "http" {
            return Err(LlmError::Config(format!(
                "base URL {base_url:?}: only http:// is supported by this build"
            )));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .build()
            .map_err(LlmError::Connect)?;
        Ok(Self {
            base_url,
            model: model.into(),
            api_key: None,
            client,
            max_tokens: Some(DEFAULT_MAX_TOKENS),
            temperature: None,
            history: HistoryLimits::default(),
        })
    }

    /// Sends this bearer token.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The messages sent for `request`: the persona's system prompt always first, then the
    /// most recent history within `limits`.
    pub fn messages(request: &ChatRequest, limits: HistoryLimits) -> Vec<ChatMessage> {
        let persona = &request.persona;
        let system = persona.fill(&persona.system_prompt, &request.context);
        let mut messages = Vec::with_capacity(request.history.len() + 1);
        if !system.trim().is_empty() {
            messages.push(ChatMessage {
                role: Role::System,
                content: system,
            });
        }
        messages.extend(
            bounded_history(&request.history, limits.max_messages, limits.max_chars)
                .iter()
                .cloned(),
        );
        messages
    }

    fn build(&self, request: &ChatRequest) -> reqwest::RequestBuilder {
        let body = Body {
            model: &self.model,
            messages: Self::messages(request, self.history),
            stream: true,
            stream_options: StreamOptions {
                include_usage: true,
            },
            max_tokens: self.max_tokens,
            temperature: self.temperature,
        };
        let mut builder = self
            .client
            .post(format!("{}/chat/completions", self.base_url))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(&body);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        builder
    }
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<ChatMessage>,
    stream: bool,
    /// Asks for a final chunk with `usage`; servers that do not know it ignore it.
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    error: Option<serde_json::Value>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
}

enum Phase {
    Start(reqwest::RequestBuilder),
    Body(reqwest::Response),
    Done,
}

struct State {
    phase: Phase,
    parser: SseParser,
    /// Deltas (or the final error) decoded from a chunk but not yet yielded.
    ready: VecDeque<Result<LlmEvent, LlmError>>,
}

impl State {
    /// Decodes one event's data into `ready`; returns false when the stream is over.
    fn on_event(&mut self, data: &str) -> bool {
        if data.trim() == "[DONE]" {
            return false;
        }
        match serde_json::from_str::<Chunk>(data) {
            Ok(Chunk {
                error: Some(error), ..
            }) => {
                let message = error
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map_or_else(|| error.to_string(), str::to_owned);
                self.ready.push_back(Err(LlmError::Api(message)));
                false
            }
            Ok(chunk) => {
                if let Some(usage) = &chunk.usage {
                    self.ready.push_back(Ok(LlmEvent::Usage(TokenUsage {
                        prompt_tokens: usage.prompt_tokens,
                        completion_tokens: usage.completion_tokens,
                    })));
                }
                let content = chunk
                    .choices
                    .into_iter()
                    .next()
                    .and_then(|c| c.delta)
                    .and_then(|d| d.content);
                if let Some(content) = content.filter(|c| !c.is_empty()) {
                    self.ready.push_back(Ok(LlmEvent::Text(content)));
                }
                true
            }
            Err(e) => {
                self.ready.push_back(Err(LlmError::Protocol(format!(
                    "bad chunk JSON ({e}): {}",
                    truncate(data, 120)
                ))));
                false
            }
        }
    }

    /// Handles the events of one body chunk (or of the end of the body).
    fn on_events(&mut self, events: Result<Vec<String>, LlmError>) {
        match events {
            Ok(events) => {
                for data in events {
                    if !self.on_event(&data) {
                        self.phase = Phase::Done;
                        return;
                    }
                }
            }
            Err(e) => {
                self.ready.push_back(Err(e));
                self.phase = Phase::Done;
            }
        }
    }

    async fn next(&mut self) -> Option<Result<LlmEvent, LlmError>> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return None,
                Phase::Start(builder) => match builder.send().await {
                    Err(e) => return Some(Err(LlmError::Connect(e))),
                    Ok(response) if !response.status().is_success() => {
                        return Some(Err(http_error(response).await));
                    }
                    Ok(response) => self.phase = Phase::Body(response),
                },
                Phase::Body(mut response) => match response.chunk().await {
                    Err(e) => return Some(Err(LlmError::Body(e))),
                    Ok(Some(bytes)) => {
                        self.phase = Phase::Body(response);
                        let events = self.parser.push(&bytes);
                        self.on_events(events);
                    }
                    Ok(None) => {
                        let events = self.parser.finish().map(|e| e.into_iter().collect());
                        self.on_events(events);
                        self.phase = Phase::Done;
                    }
                },
            }
        }
    }
}

async fn http_error(mut response: reqwest::Response) -> LlmError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(std::time::Duration::from_secs_f64);
    let mut body = Vec::new();
    // Read only a little: the body is for the log, and an error page can be large.
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(bytes)) => body.extend_from_slice(&bytes),
            _ => break,
        }
    }
    let body = String::from_utf8_lossy(&body);
    LlmError::Http {
        status,
        retry_after,
        body: truncate(body.trim(), ERROR_BODY_LIMIT),
    }
}

/// Most tokens one answer may take: three short spoken sentences need about 80, and a
/// model that runs on is stopped at the persona's sentence limit before this anyway.
pub const DEFAULT_MAX_TOKENS: u32 = 160;

/// Most history messages sent to the model: a long call must not outgrow its context.
pub const HISTORY_MAX_MESSAGES: usize = 24;
/// Most history characters sent to the model (the newest turns win).
pub const HISTORY_MAX_CHARS: usize = 6000;

/// The newest suffix of `history` within both limits; when it had to cut, it starts on a user
/// turn so the model never sees an orphaned answer. The latest message is always kept.
pub fn bounded_history(
    history: &[ChatMessage],
    max_messages: usize,
    max_chars: usize,
) -> &[ChatMessage] {
    let mut start = history.len();
    let mut chars = 0usize;
    while start > 0 {
        let next = history[start - 1].content.chars().count();
        let full = history.len() - start >= max_messages || chars + next > max_chars;
        if full && start < history.len() {
            break;
        }
        chars += next;
        start -= 1;
    }
    // Only a cut history needs realigning: a whole one may start with the greeting.
    while start > 0 && start < history.len().saturating_sub(1) && history[start].role != Role::User
    {
        start += 1;
    }
    &history[start..]
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

impl ChatModel for OpenAiChat {
    fn stream(&self, request: ChatRequest) -> TokenStream {
        let state = State {
            phase: Phase::Start(self.build(&request)),
            parser: SseParser::new(),
            ready: VecDeque::new(),
        };
        Box::pin(stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        }))
    }

    fn name(&self) -> &'static str {
        "openai"
    }

    fn writes_feedback(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    #[test]
    fn history_is_bounded_newest_first_and_starts_on_a_user_turn() {
        let h: Vec<ChatMessage> = (0..10)
            .map(|i| {
                if i % 2 == 0 {
                    ChatMessage::user(format!("q{i}"))
                } else {
                    ChatMessage::assistant(format!("a{i}"))
                }
            })
            .collect();
        assert_eq!(bounded_history(&h, 100, 10_000).len(), 10);
        let b = bounded_history(&h, 5, 10_000);
        assert_eq!(b.len(), 4, "5 would start on an assistant turn");
        assert_eq!(b[0].content, "q6");
        let b = bounded_history(&h, 100, 6);
        assert_eq!(
            b.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
            ["q8", "a9"]
        );
        let long = vec![ChatMessage::user("x".repeat(50_000))];
        assert_eq!(
            bounded_history(&long, 24, 6000).len(),
            1,
            "the latest turn is always sent"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use futures_util::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::oneshot;

    use super::*;
    use crate::llm::PersonaSet;

    /// What the test server does after reading the request.
    enum Reply {
        /// 200 with a chunked event-stream body, written piece by piece.
        Stream(Vec<Vec<u8>>),
        /// A complete response with this status and body.
        Status(u16, &'static str),
        /// 200, the pieces, then hold the connection open and report when the client closes it.
        StreamThenWait(Vec<Vec<u8>>, oneshot::Sender<()>),
    }

    /// A one-shot HTTP/1.1 server on 127.0.0.1:0; returns its base URL and the raw request.
    async fn serve(reply: Reply) -> (String, oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (req_tx, req_rx) = oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            socket.set_nodelay(true).expect("nodelay");
            let request = read_request(&mut socket).await;
            let _ = req_tx.send(request);
            match reply {
                Reply::Status(status, body) => {
                    let head = format!(
                        "HTTP/1.1 {status} Oops\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body.as_bytes()).await;
                }
                Reply::Stream(pieces) => {
                    write_stream_head(&mut socket).await;
                    for piece in pieces {
                        write_chunk(&mut socket, &piece).await;
                    }
                    let _ = socket.write_all(b"0\r\n\r\n").await;
                }
                Reply::StreamThenWait(pieces, closed) => {
                    write_stream_head(&mut socket).await;
                    for piece in pieces {
                        write_chunk(&mut socket, &piece).await;
                    }
                    let mut buf = [0u8; 64];
                    // The client sends nothing more, so a read returns only when it closes.
                    if let Ok(Ok(0) | Err(_)) =
                        tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await
                    {
                        let _ = closed.send(());
                    }
                }
            }
        });
        (format!("http://{addr}/v1"), req_rx)
    }

    async fn read_request(socket: &mut TcpStream) -> String {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.expect("read request");
            assert!(n > 0, "client closed before sending a request");
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if data.len() >= head_end + 4 + length {
                    return text.into_owned();
                }
            }
        }
    }

    async fn write_stream_head(socket: &mut TcpStream) {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        socket.write_all(head.as_bytes()).await.expect("write head");
    }

    /// Writes one HTTP chunk and pauses, so the client sees the pieces separately.
    async fn write_chunk(socket: &mut TcpStream, piece: &[u8]) {
        let _ = socket
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .await;
        let _ = socket.write_all(piece).await;
        let _ = socket.write_all(b"\r\n").await;
        let _ = socket.flush().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    /// The text of a stream item that must be a text delta.
    fn text(item: Result<LlmEvent, LlmError>) -> String {
        match item {
            Ok(LlmEvent::Text(t)) => t,
            other => panic!("expected a text delta, got {other:?}"),
        }
    }

    fn event(content: &str) -> String {
        let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"content": content}}]});
        format!("data: {chunk}\r\n\r\n")
    }

    fn request() -> ChatRequest {
        let persona = PersonaSet::builtin().get("interviewer").expect("persona");
        let mut context = BTreeMap::new();
        context.insert("company".into(), "Initech".into());
        ChatRequest {
            persona,
            context,
            history: vec![
                ChatMessage::assistant("Tell me about yourself."),
                ChatMessage::user("I write Rust."),
            ],
        }
    }

    /// Cuts `body` into pieces at every `step` bytes, ignoring UTF-8 boundaries on purpose.
    fn cut(body: &[u8], step: usize) -> Vec<Vec<u8>> {
        body.chunks(step).map(<[u8]>::to_vec).collect()
    }

    #[tokio::test]
    async fn streams_deltas_split_at_awkward_boundaries() {
        let mut body = String::from(": keep-alive\n\n");
        body.push_str("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n");
        for word in ["Nice", " to", " meet", " you,", " caf\u{e9}", " \u{1f600}."] {
            body.push_str(&event(word));
        }
        body.push_str("data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
        body.push_str("data: [DONE]\n\n");
        for step in [1, 3, 7, 64] {
            let (url, req) = serve(Reply::Stream(cut(body.as_bytes(), step))).await;
            let model = OpenAiChat::new(url, "test-model")
                .expect("client")
                .with_api_key("sk-test");
            let tokens: Vec<String> = model.stream(request()).map(text).collect().await;
            assert_eq!(
                tokens.concat(),
                "Nice to meet you, caf\u{e9} \u{1f600}.",
                "step {step}"
            );
            assert_eq!(tokens.len(), 6);

            let req = req.await.expect("request seen");
            assert!(
                req.starts_with("POST /v1/chat/completions HTTP/1.1"),
                "{req}"
            );
            assert!(req.to_lowercase().contains("authorization: bearer sk-test"));
            let json = &req[req.find("\r\n\r\n").expect("body") + 4..];
            let json: serde_json::Value = serde_json::from_str(json).expect("json body");
            assert_eq!(json["model"], "test-model");
            assert_eq!(json["stream"], true);
            assert_eq!(json["stream_options"]["include_usage"], true);
            let messages = json["messages"].as_array().expect("messages");
            assert_eq!(messages.len(), 3);
            assert_eq!(messages[0]["role"], "system");
            let system = messages[0]["content"].as_str().expect("system text");
            assert!(
                system.contains("Initech") && !system.contains('{'),
                "{system}"
            );
            assert_eq!(messages[2]["role"], "user");
            assert_eq!(messages[2]["content"], "I write Rust.");
        }
    }

    #[tokio::test]
    async fn clean_end_without_done_is_accepted() {
        let body = format!("{}{}", event("Hi"), event(" there"));
        let (url, _req) = serve(Reply::Stream(vec![body.into_bytes()])).await;
        let model = OpenAiChat::new(url, "m").expect("client");
        let tokens: Vec<_> = model.stream(request()).collect().await;
        let tokens: Vec<String> = tokens.into_iter().map(text).collect();
        assert_eq!(tokens, ["Hi", " there"]);
    }

    #[tokio::test]
    async fn usage_chunk_is_reported() {
        let body = format!(
            "{}data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":42,\"completion_tokens\":7,\"total_tokens\":49}}}}\n\ndata: [DONE]\n\n",
            event("Hi.")
        );
        let (url, _req) = serve(Reply::Stream(vec![body.into_bytes()])).await;
        let model = OpenAiChat::new(url, "m").expect("client");
        let items: Vec<_> = model.stream(request()).collect().await;
        let items: Vec<LlmEvent> = items.into_iter().map(|i| i.expect("ok")).collect();
        assert_eq!(
            items,
            [
                LlmEvent::Text("Hi.".into()),
                LlmEvent::Usage(TokenUsage {
                    prompt_tokens: 42,
                    completion_tokens: 7
                })
            ]
        );
    }

    #[tokio::test]
    async fn http_error_carries_status_and_body() {
        let (url, _req) = serve(Reply::Status(500, "{\"error\":\"model not loaded\"}")).await;
        let model = OpenAiChat::new(url, "m").expect("client");
        let items: Vec<_> = model.stream(request()).collect().await;
        assert_eq!(items.len(), 1);
        match &items[0] {
            Err(LlmError::Http { status, body, .. }) => {
                assert_eq!(*status, 500);
                assert!(body.contains("model not loaded"), "{body}");
            }
            other => panic!("expected Http error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn garbage_json_is_a_protocol_error_after_earlier_tokens() {
        let body = format!("{}data: {{not json\n\n{}", event("Hello"), event(" never"));
        let (url, _req) = serve(Reply::Stream(vec![body.into_bytes()])).await;
        let model = OpenAiChat::new(url, "m").expect("client");
        let items: Vec<_> = model.stream(request()).collect().await;
        assert_eq!(items.len(), 2, "{items:?}");
        assert!(
            matches!(&items[0], Ok(LlmEvent::Text(t)) if t == "Hello"),
            "{items:?}"
        );
        assert!(matches!(items[1], Err(LlmError::Protocol(_))), "{items:?}");
    }

    #[tokio::test]
    async fn error_event_is_an_api_error() {
        let body = "data: {\"error\":{\"message\":\"context too long\"}}\n\n";
        let (url, _req) = serve(Reply::Stream(vec![body.as_bytes().to_vec()])).await;
        let model = OpenAiChat::new(url, "m").expect("client");
        let items: Vec<_> = model.stream(request()).collect().await;
        assert!(
            matches!(&items[..], [Err(LlmError::Api(m))] if m == "context too long"),
            "{items:?}"
        );
    }

    #[tokio::test]
    async fn unreachable_server_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let model = OpenAiChat::new(format!("http://{addr}/v1"), "m").expect("client");
        let items: Vec<_> = model.stream(request()).collect().await;
        assert!(
            matches!(&items[..], [Err(LlmError::Connect(_))]),
            "{items:?}"
        );
    }

    #[tokio::test]
    async fn dropping_the_stream_closes_the_connection() {
        let (closed_tx, closed_rx) = oneshot::channel();
        let (url, _req) = serve(Reply::StreamThenWait(
            vec![event("First").into_bytes()],
            closed_tx,
        ))
        .await;
        let model = OpenAiChat::new(url, "m").expect("client");
        let mut stream = model.stream(request());
        let first = text(stream.next().await.expect("an item"));
        assert_eq!(first, "First");
        drop(stream);
        tokio::time::timeout(Duration::from_secs(3), closed_rx)
            .await
            .expect("server saw the close in time")
            .expect("server saw the close");
    }

    #[test]
    fn rejects_unsupported_urls() {
        assert!(matches!(
            OpenAiChat::new("https://api.example.com/v1", "m"),
            Err(LlmError::Config(_))
        ));
        assert!(matches!(
            OpenAiChat::new("not a url", "m"),
            Err(LlmError::Config(_))
        ));
    }
}
