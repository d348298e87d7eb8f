//! One turn's request to the language model: the stream, the tokens buffered while the turn
//! is not yet committed, bounded retries of an overloaded model, and the first-token and
//! between-token stall limits.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::call::LlmTimeouts;
use crate::call::events::{CallEvent, Fault};
use crate::call::outbox::Outbox;
use crate::llm::{ChatModel, ChatRequest, LlmError, LlmEvent, TokenStream, TokenUsage};
use crate::protocol::ResponseStatus;

/// Attempts after the first when the model says it is busy.
const MAX_LLM_RETRIES: u32 = 2;
/// Longest wait a server's Retry-After may impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// What the model said next.
#[derive(Debug)]
pub(super) enum Next {
    /// A piece of the answer.
    Text(String),
    /// The answer is complete.
    Done,
    /// The turn's token fired.
    Cancelled,
    /// The model failed the turn.
    Failed(Fault),
}

/// A streaming LLM request, retried while it has said nothing.
pub(super) struct LlmAttempt<'a> {
    model: &'a dyn ChatModel,
    /// Kept to retry an overloaded model (429/503) before it has said anything.
    request: ChatRequest,
    stream: TokenStream,
    timeouts: LlmTimeouts,
    retries: u32,
    /// Items that arrived before the turn was committed, replayed first.
    buffered: std::collections::VecDeque<Result<LlmEvent, LlmError>>,
    stream_done: bool,
    /// When the model's first text arrived on the current stream.
    pub(super) first_token_at: Option<Instant>,
    /// When the first stream was requested (retries count toward the wait).
    pub(super) requested_at: Instant,
    /// Token counts, when the server reports them.
    pub(super) usage: Option<TokenUsage>,
    /// Whether any text was handed out (a retry would then repeat it).
    said_something: bool,
}

impl<'a> LlmAttempt<'a> {
    /// Starts the request now.
    pub(super) fn start(
        model: &'a dyn ChatModel,
        request: ChatRequest,
        timeouts: LlmTimeouts,
    ) -> Self {
        let stream = model.stream(request.clone());
        Self::over(model, request, stream, timeouts)
    }

    /// An answer known in advance (a silence prompt), said as if the model had streamed it;
    /// `request` is kept only for the attempt's bookkeeping.
    pub(super) fn saying(
        model: &'a dyn ChatModel,
        request: ChatRequest,
        text: String,
        timeouts: LlmTimeouts,
    ) -> Self {
        let said: TokenStream = Box::pin(futures_util::stream::iter([Ok(LlmEvent::Text(text))]));
        Self::over(model, request, said, timeouts)
    }

    fn over(
        model: &'a dyn ChatModel,
        request: ChatRequest,
        stream: TokenStream,
        timeouts: LlmTimeouts,
    ) -> Self {
        Self {
            model,
            request,
            stream,
            timeouts,
            retries: 0,
            buffered: Default::default(),
            stream_done: false,
            first_token_at: None,
            requested_at: Instant::now(),
            usage: None,
            said_something: false,
        }
    }

    /// While the turn is not committed: takes the next item into the buffer. Never resolves
    /// once the stream ended, so it can sit in a `select!` beside the commit.
    pub(super) async fn buffer_next(&mut self) {
        if self.stream_done {
            return std::future::pending().await;
        }
        match self.stream.next().await {
            Some(item) => {
                if let Ok(LlmEvent::Text(_)) = &item {
                    self.first_token_at.get_or_insert_with(Instant::now);
                }
                self.stream_done = item.is_err();
                self.buffered.push_back(item);
            }
            None => self.stream_done = true,
        }
    }

    /// The text buffered so far, and whether the model has finished.
    pub(super) fn buffered_text(&self) -> (String, bool) {
        let text = self
            .buffered
            .iter()
            .filter_map(|item| match item {
                Ok(LlmEvent::Text(t)) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        (text, self.stream_done)
    }

    /// The next piece of the answer: buffered items first, then the stream, within the
    /// stall limits; retries an overloaded model that has said nothing yet.
    pub(super) async fn next(
        &mut self,
        turn_id: u32,
        outbox: &Outbox,
        cancel: &CancellationToken,
    ) -> Next {
        loop {
            let item = match self.buffered.pop_front() {
                Some(item) => Some(item),
                None if self.stream_done => None,
                None => match self.pull(cancel).await {
                    Ok(item) => item,
                    Err(next) => return next,
                },
            };
            if cancel.is_cancelled() {
                return Next::Cancelled;
            }
            match item {
                None => return Next::Done,
                Some(Ok(LlmEvent::Usage(u))) => self.usage = Some(u),
                Some(Ok(LlmEvent::Text(delta))) => {
                    self.first_token_at.get_or_insert_with(Instant::now);
                    if !delta.is_empty() {
                        self.said_something = true;
                        return Next::Text(delta);
                    }
                }
                Some(Err(e)) => {
                    if let Some(next) = self.retry(e, turn_id, outbox, cancel).await {
                        return next;
                    }
                }
            }
        }
    }

    /// The next stream item within the limit that applies now.
    async fn pull(
        &mut self,
        cancel: &CancellationToken,
    ) -> Result<Option<Result<LlmEvent, LlmError>>, Next> {
        let (limit, what) = match self.first_token_at {
            None => (self.timeouts.first_token, "first token"),
            Some(_) => (self.timeouts.between_tokens, "next token"),
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(Next::Cancelled),
            item = tokio::time::timeout(limit, self.stream.next()) => item.map_err(|_| {
                Next::Failed(Fault::Llm(format!(
                    "the language model sent no {what} within {} s",
                    limit.as_secs_f32()
                )))
            }),
        }
    }

    /// After a stream error: `None` when a retry started, else how the turn ends.
    async fn retry(
        &mut self,
        e: LlmError,
        turn_id: u32,
        outbox: &Outbox,
        cancel: &CancellationToken,
    ) -> Option<Next> {
        if self.said_something || self.retries >= MAX_LLM_RETRIES || !is_retryable(&e) {
            return Some(Next::Failed(Fault::Llm(describe_llm_error(&e))));
        }
        self.retries += 1;
        // The server's Retry-After when given (capped), else 1 s, then 2 s.
        let backoff = match &e {
            LlmError::Http {
                retry_after: Some(d),
                ..
            } => (*d).min(MAX_RETRY_AFTER),
            _ => Duration::from_millis(500 << self.retries),
        };
        tracing::info!(turn_id, retries = self.retries, error = %e, "LLM busy; retrying");
        let retrying = CallEvent::ResponseStarted {
            turn_id,
            status: ResponseStatus::Retrying,
            eta_ms: Some(backoff.as_millis() as u64),
        };
        let _ = outbox.emit(retrying).await;
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Some(Next::Cancelled),
            _ = tokio::time::sleep(backoff) => {}
        }
        // A new stream: its first token gets the first-token limit again.
        self.stream = self.model.stream(self.request.clone());
        self.stream_done = false;
        self.first_token_at = None;
        None
    }

    /// The time to first token, measured from the request or `decided_at` if later.
    pub(super) fn first_token_ms(&self, decided_at: Instant) -> Option<u64> {
        self.first_token_at.map(|t| {
            t.saturating_duration_since(self.requested_at.max(decided_at))
                .as_millis() as u64
        })
    }
}

/// Overload answers are worth a bounded retry; anything else fails the turn at once.
fn is_retryable(e: &LlmError) -> bool {
    matches!(
        e,
        LlmError::Http {
            status: 429 | 503,
            ..
        }
    )
}

/// The developer-facing message, made explicit for the cases an operator must fix.
fn describe_llm_error(e: &LlmError) -> String {
    match e {
        LlmError::Http {
            status: 401 | 403, ..
        } => {
            format!("{e} (the API key is missing or wrong: set CALLGATE_LLM_API_KEY)")
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    //! A model that answers 503 and then is slow to start: a test double on purpose, since
    //! that sequence cannot be had from a real server on demand.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use futures_util::stream;

    use super::*;
    use crate::call::v1::V1Codec;

    /// First request: 503 at once. Later ones: the first token after `delay`.
    struct BusyThenSlow {
        requests: AtomicU32,
        delay: Duration,
    }

    impl ChatModel for BusyThenSlow {
        fn stream(&self, _request: ChatRequest) -> TokenStream {
            if self.requests.fetch_add(1, Ordering::SeqCst) == 0 {
                let busy = LlmError::Http {
                    status: 503,
                    body: String::new(),
                    retry_after: Some(Duration::from_millis(100)),
                };
                return Box::pin(stream::iter([Err(busy)]));
            }
            let delay = self.delay;
            Box::pin(stream::once(async move {
                tokio::time::sleep(delay).await;
                Ok(LlmEvent::Text("Tell me more.".into()))
            }))
        }

        fn name(&self) -> &'static str {
            "busy-then-slow"
        }
    }

    fn request() -> ChatRequest {
        ChatRequest {
            persona: crate::llm::PersonaSet::builtin()
                .get(crate::llm::persona::DEFAULT_PERSONA)
                .expect("built-in persona"),
            context: Default::default(),
            history: Vec::new(),
        }
    }

    /// The bug: an error buffered while the turn was held set `first_token_at`, so the retried
    /// stream got the 10 s between-token limit instead of the 20 s first-token one.
    #[tokio::test(start_paused = true)]
    async fn an_error_buffered_before_the_commit_is_not_a_first_token() {
        let model = BusyThenSlow {
            requests: AtomicU32::new(0),
            delay: Duration::from_secs(15),
        };
        let timeouts = LlmTimeouts {
            first_token: Duration::from_secs(20),
            between_tokens: Duration::from_secs(10),
        };
        let mut llm = LlmAttempt::start(&model, request(), timeouts);
        llm.buffer_next().await;
        assert!(llm.first_token_at.is_none(), "an error is not a token");
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let cancel = CancellationToken::new();
        let outbox = Outbox::new(
            tx,
            Arc::new(V1Codec::default()),
            None,
            Arc::default(),
            cancel.clone(),
        );
        let decided_at = Instant::now();
        match llm.next(1, &outbox, &cancel).await {
            Next::Text(t) => assert_eq!(t, "Tell me more."),
            other => panic!("the retried stream was held to the wrong limit: {other:?}"),
        }
        let first_ms = llm.first_token_ms(decided_at).expect("measured");
        assert!((15_000..15_200).contains(&first_ms), "{first_ms}");
    }
}
