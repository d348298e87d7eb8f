//! One AI response: (speculative) final transcript -> LLM tokens -> sentences -> synthesis ->
//! output frames, owned by one task with one cancellation token. The task is the only
//! sender of its turn's frames and of its `response.done`, so no frame of a turn can follow
//! that turn's `response.done`.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::Engines;
use super::outbox::Outbox;
use crate::asr::pool::AsrOutcome;
use crate::audio::resample::resample_all;
use crate::audio::{f32_to_i16, i16_to_mono_f32};
use crate::llm::{ChatMessage, ChatRequest, LlmEvent, SentenceSplitter};
use crate::protocol::{DoneStatus, ErrorCode, ErrorEvent, Latency, ResponseStatus, ServerMessage};

/// Output audio goes out in frames of this length: small enough to start playback early,
/// large enough to keep the frame count (and the writer queue) modest.
const FRAME_MS: u32 = 100;

/// How far output audio may run ahead of real time. The server paces audio to the clock
/// (plus this lead, to ride out network jitter) instead of dumping it: a barge-in can then
/// still stop what the user has not heard, and a client's buffer stays small.
const PLAYBACK_LEAD_MS: u64 = 400;

/// Where the user's words come from.
pub enum UserInput {
    /// No user words: the greeting.
    Greeting,
    /// Typed (`input.text`).
    Text(String),
    /// A decode queued on the ASR pool; `start_ms`/`end_ms` locate the speech in the input.
    Audio {
        /// The pool's reply.
        asr: oneshot::Receiver<AsrOutcome>,
        /// Speech start in the input stream.
        start_ms: u64,
        /// Speech end in the input stream.
        end_ms: u64,
    },
}

/// The end-of-turn decision, sent when the turn is committed.
#[derive(Debug, Clone, Copy)]
pub struct Commit {
    /// When the server decided the turn had ended.
    pub decided_at: Instant,
    /// End of speech to that decision, on the audio clock.
    pub endpoint_ms: Option<u64>,
}

/// What a finished turn tells the session (to update history and counters).
#[derive(Debug)]
pub struct TurnFinished {
    /// The turn.
    pub turn_id: u32,
    /// The user's final transcript ("" for the greeting or an empty decode).
    pub user_text: String,
    /// The AI's full text.
    pub text: String,
    /// What the user heard of it (the history keeps this).
    pub heard_text: String,
    /// How it ended; `None` when no response was started (speculation dropped, empty input).
    pub status: Option<DoneStatus>,
}

/// Everything a turn task needs.
pub struct TurnTask {
    /// Turn id (0 = greeting).
    pub turn_id: u32,
    /// Engines.
    pub engines: Arc<Engines>,
    /// The request minus the user's words (added once transcribed).
    pub request: ChatRequest,
    /// Output audio rate.
    pub output_rate: u32,
    /// Where events and audio go.
    pub outbox: Outbox,
    /// Fires on barge-in, response.cancel, hang-up, or a dropped speculation.
    pub cancel: CancellationToken,
    /// Resolves when the turn is committed (immediately unless speculative).
    pub commit: oneshot::Receiver<Commit>,
    /// Latest `playback.position` for this turn, in ms.
    pub played_ms: watch::Receiver<Option<u64>>,
    /// Report back to the session.
    pub finished: mpsc::Sender<TurnFinished>,
}

/// One synthesized sentence's place in the text and in the audio.
struct Spoken {
    /// Byte offset in the full text where this sentence ends.
    text_end: usize,
    /// Where its audio starts and ends in the turn's output, in ms.
    audio_start_ms: u64,
    audio_end_ms: u64,
}

struct SpeakerReport {
    spoken: Vec<Spoken>,
    first_audio_at: Option<Instant>,
    tts_first_ms: Option<u64>,
    error: Option<String>,
    /// Whether `error` already went to the client as an `error` event.
    error_reported: bool,
    /// Audio actually handed to the socket, ms: the most a client can have played.
    sent_ms: u64,
}

enum Outcome {
    Completed,
    Cancelled,
    Failed(ErrorCode, String),
}

impl TurnTask {
    /// Runs the turn to its end. Never panics on engine output.
    pub async fn run(self, input: UserInput) {
        let TurnTask {
            turn_id,
            engines,
            mut request,
            output_rate,
            outbox,
            cancel,
            commit,
            played_ms,
            finished,
        } = self;
        let mut latency = Latency::default();
        let mut commit = Some(commit);
        let mut committed: Option<Commit> = None;

        // 1. The user's words.
        let mut user_text = String::new();
        let mut transcript_span = None;
        let mut asr_decode_ms = None;
        match input {
            UserInput::Greeting => {}
            UserInput::Text(t) => user_text = t,
            UserInput::Audio {
                asr,
                start_ms,
                end_ms,
            } => {
                transcript_span = Some((start_ms, end_ms));
                let outcome = tokio::select! {
                    _ = cancel.cancelled() => None,
                    o = asr => o.ok(),
                };
                let Some(outcome) = outcome else {
                    let _ = finished.send(TurnFinished::dropped(turn_id)).await;
                    return;
                };
                asr_decode_ms = Some(outcome.decode.as_millis() as u64);
                match outcome.result {
                    Ok(t) => user_text = t.text,
                    Err(crate::asr::AsrError::Cancelled) => {
                        let _ = finished.send(TurnFinished::dropped(turn_id)).await;
                        return;
                    }
                    Err(e) => {
                        // Wait for the commit so the failure belongs to a real turn.
                        let Some(c) = wait_commit(&cancel, &mut commit).await else {
                            let _ = finished.send(TurnFinished::dropped(turn_id)).await;
                            return;
                        };
                        latency.endpoint_ms = c.endpoint_ms;
                        let _ = outbox
                            .event(ServerMessage::Transcript {
                                turn_id,
                                text: String::new(),
                                is_final: true,
                                start_ms: Some(start_ms),
                                end_ms: Some(end_ms),
                            })
                            .await;
                        fail(
                            &outbox,
                            turn_id,
                            &c,
                            latency,
                            ErrorCode::AsrError,
                            e.to_string(),
                        )
                        .await;
                        engines.metrics.turns_failed.inc();
                        let _ = finished
                            .send(TurnFinished {
                                turn_id,
                                user_text: String::new(),
                                text: String::new(),
                                heard_text: String::new(),
                                status: Some(DoneStatus::Failed),
                            })
                            .await;
                        return;
                    }
                }
            }
        }

        let is_greeting = request.history.is_empty() && user_text.is_empty();
        if user_text.trim().is_empty() && !is_greeting {
            // Nothing intelligible was said: close the user turn, no response.
            if wait_commit(&cancel, &mut commit).await.is_some() {
                let (start_ms, end_ms) = transcript_span.unzip();
                let _ = outbox
                    .event(ServerMessage::Transcript {
                        turn_id,
                        text: String::new(),
                        is_final: true,
                        start_ms,
                        end_ms,
                    })
                    .await;
            }
            let _ = finished.send(TurnFinished::dropped(turn_id)).await;
            return;
        }
        if !user_text.is_empty() {
            request.history.push(ChatMessage::user(user_text.clone()));
        }

        // 2. Start the LLM now (maybe before the commit: speculation), buffering tokens.
        let llm_started = Instant::now();
        // Kept to retry an overloaded model (429/503) before it has said anything.
        let retry_request = request.clone();
        let mut retries = 0u32;
        let mut stream = engines.llm.stream(request);
        let mut buffered: Vec<Result<LlmEvent, crate::llm::LlmError>> = Vec::new();
        let mut usage = None;
        let mut first_token_at: Option<Instant> = None;
        let mut stream_done = false;
        while committed.is_none() {
            let Some(rx) = commit.as_mut() else { break };
            // A committed turn always gets response.started and response.done, even when
            // cancelled at once, so the commit is looked at before the cancellation.
            tokio::select! {
                biased;
                c = rx => {
                    commit = None;
                    match c {
                        Ok(c) => committed = Some(c),
                        Err(_) => {
                            let _ = finished.send(TurnFinished::dropped(turn_id)).await;
                            return;
                        }
                    }
                }
                _ = cancel.cancelled() => {
                    let _ = finished.send(TurnFinished::dropped(turn_id)).await;
                    return;
                }
                item = stream.next(), if !stream_done => match item {
                    Some(item) => {
                        if !matches!(item, Ok(LlmEvent::Usage(_))) {
                            first_token_at.get_or_insert_with(Instant::now);
                        }
                        let is_err = item.is_err();
                        buffered.push(item);
                        if is_err { stream_done = true; }
                    }
                    None => stream_done = true,
                },
            }
        }
        let Some(c) = committed else {
            let _ = finished.send(TurnFinished::dropped(turn_id)).await;
            return;
        };
        latency.endpoint_ms = c.endpoint_ms;
        // The final transcription's own decode time. When it ran speculatively inside the
        // end-of-turn silence, firstAudioMs shows how much of it the user never waited for.
        latency.asr_ms = asr_decode_ms;

        // 3. Committed: tell the client, then stream.
        if let Some((start_ms, end_ms)) = transcript_span {
            let _ = outbox
                .event(ServerMessage::Transcript {
                    turn_id,
                    text: user_text.clone(),
                    is_final: true,
                    start_ms: Some(start_ms),
                    end_ms: Some(end_ms),
                })
                .await;
        }
        if outbox
            .event(ServerMessage::ResponseStarted {
                turn_id,
                status: ResponseStatus::Thinking,
                eta_ms: None,
            })
            .await
            .is_err()
        {
            let _ = finished.send(TurnFinished::dropped(turn_id)).await;
            return;
        }

        let (sentence_tx, sentence_rx) = mpsc::channel::<(String, usize)>(32);
        let speaker = tokio::spawn(speak(
            turn_id,
            engines.clone(),
            output_rate,
            outbox.clone(),
            cancel.clone(),
            sentence_rx,
        ));

        let mut text = String::new();
        let mut index = 0u32;
        let mut splitter = SentenceSplitter::new();
        let mut outcome = Outcome::Completed;
        let mut pending = buffered.into_iter();
        let mut sent_up_to = 0usize;
        loop {
            let item = match pending.next() {
                Some(item) => Some(item),
                None if stream_done => None,
                None => {
                    // A model that stalls fails the turn instead of holding the call.
                    let limit = if first_token_at.is_none() {
                        engines.llm_timeouts.first_token
                    } else {
                        engines.llm_timeouts.between_tokens
                    };
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => { outcome = Outcome::Cancelled; break; }
                        item = tokio::time::timeout(limit, stream.next()) => match item {
                            Ok(item) => item,
                            Err(_) => {
                                let what = if first_token_at.is_none() { "first token" } else { "next token" };
                                outcome = Outcome::Failed(
                                    ErrorCode::LlmError,
                                    format!("the language model sent no {what} within {} s", limit.as_secs_f32()),
                                );
                                break;
                            }
                        },
                    }
                }
            };
            if cancel.is_cancelled() {
                outcome = Outcome::Cancelled;
                break;
            }
            let delta = match item {
                None => break,
                Some(Ok(LlmEvent::Usage(u))) => {
                    usage = Some(u);
                    continue;
                }
                Some(Ok(LlmEvent::Text(d))) => d,
                Some(Err(e)) => {
                    if text.is_empty() && retries < MAX_LLM_RETRIES && is_retryable(&e) {
                        retries += 1;
                        // The server's Retry-After when given (capped), else 1 s, then 2 s.
                        let backoff = match &e {
                            crate::llm::LlmError::Http {
                                retry_after: Some(d),
                                ..
                            } => (*d).min(std::time::Duration::from_secs(5)),
                            _ => std::time::Duration::from_millis(500 << retries),
                        };
                        tracing::info!(turn_id, retries, error = %e, "LLM busy; retrying");
                        let _ = outbox
                            .event(ServerMessage::ResponseStarted {
                                turn_id,
                                status: ResponseStatus::Retrying,
                                eta_ms: Some(backoff.as_millis() as u64),
                            })
                            .await;
                        tokio::select! {
                            biased;
                            _ = cancel.cancelled() => { outcome = Outcome::Cancelled; break; }
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        stream = engines.llm.stream(retry_request.clone());
                        stream_done = false;
                        continue;
                    }
                    outcome = Outcome::Failed(ErrorCode::LlmError, describe_llm_error(&e));
                    break;
                }
            };
            first_token_at.get_or_insert_with(Instant::now);
            if delta.is_empty() {
                continue;
            }
            text.push_str(&delta);
            let _ = outbox
                .event(ServerMessage::ResponseTextDelta {
                    turn_id,
                    index,
                    delta: delta.clone(),
                })
                .await;
            index += 1;
            for sentence in splitter.push(&delta) {
                let end = locate(&text, &sentence, &mut sent_up_to);
                if sentence_tx.send((sentence, end)).await.is_err() {
                    break;
                }
            }
        }
        drop(stream);
        if matches!(outcome, Outcome::Completed) && text.trim().is_empty() {
            outcome = Outcome::Failed(
                ErrorCode::LlmError,
                "the language model returned an empty answer".into(),
            );
        }
        if matches!(outcome, Outcome::Completed)
            && let Some(rest) = splitter.finish()
        {
            let end = locate(&text, &rest, &mut sent_up_to);
            let _ = sentence_tx.send((rest, end)).await;
        }
        drop(sentence_tx);
        latency.llm_first_token_ms = first_token_at.map(|t| {
            t.saturating_duration_since(llm_started.max(c.decided_at))
                .as_millis() as u64
        });

        // 4. Wait for the speaker (it stops at once when cancelled), so nothing of this
        // turn can be sent after its response.done.
        let report = speaker.await.unwrap_or(SpeakerReport {
            spoken: Vec::new(),
            first_audio_at: None,
            tts_first_ms: None,
            error: Some("speaker task ended abnormally".into()),
            error_reported: false,
            sent_ms: 0,
        });
        if cancel.is_cancelled() {
            outcome = Outcome::Cancelled;
        } else if let (Outcome::Completed, Some(e)) = (&outcome, &report.error) {
            outcome = Outcome::Failed(ErrorCode::TtsError, e.clone());
        }
        latency.tts_first_audio_ms = report.tts_first_ms;
        latency.first_audio_ms = report
            .first_audio_at
            .map(|t| t.saturating_duration_since(c.decided_at).as_millis() as u64);
        latency.total_ms = Some(c.decided_at.elapsed().as_millis() as u64);

        let (status, heard_text) = match &outcome {
            Outcome::Completed => (DoneStatus::Completed, text.clone()),
            Outcome::Cancelled => (
                DoneStatus::Cancelled,
                heard_prefix(
                    &text,
                    &report.spoken,
                    heard_ms(*played_ms.borrow(), report.sent_ms),
                ),
            ),
            Outcome::Failed(..) => (
                DoneStatus::Failed,
                heard_prefix(
                    &text,
                    &report.spoken,
                    heard_ms(*played_ms.borrow(), report.sent_ms),
                ),
            ),
        };
        if let Outcome::Failed(code, message) = &outcome {
            tracing::warn!(turn_id, %message, "turn failed");
            // A speaker that failed outright told the client when its first sentence failed.
            if !(*code == ErrorCode::TtsError && report.error_reported) {
                let _ = outbox
                    .event(
                        ErrorEvent::new(*code, message.clone(), true)
                            .turn(turn_id)
                            .into(),
                    )
                    .await;
            }
        }
        let counter = match status {
            DoneStatus::Completed => &engines.metrics.turns_completed,
            DoneStatus::Cancelled => &engines.metrics.turns_cancelled,
            DoneStatus::Failed => &engines.metrics.turns_failed,
        };
        counter.inc();
        if status == DoneStatus::Completed {
            engines.metrics.observe_latency(&latency);
        }
        let _ = outbox
            .event(ServerMessage::ResponseDone {
                turn_id,
                status,
                text: text.clone(),
                heard_text: heard_text.clone(),
                latency,
                usage,
            })
            .await;
        let _ = finished
            .send(TurnFinished {
                turn_id,
                user_text,
                text,
                heard_text,
                status: Some(status),
            })
            .await;
    }
}

impl TurnFinished {
    fn dropped(turn_id: u32) -> Self {
        Self {
            turn_id,
            user_text: String::new(),
            text: String::new(),
            heard_text: String::new(),
            status: None,
        }
    }
}

async fn wait_commit(
    cancel: &CancellationToken,
    commit: &mut Option<oneshot::Receiver<Commit>>,
) -> Option<Commit> {
    let rx = commit.take()?;
    tokio::select! {
        _ = cancel.cancelled() => None,
        c = rx => c.ok(),
    }
}

async fn fail(
    outbox: &Outbox,
    turn_id: u32,
    c: &Commit,
    mut latency: Latency,
    code: ErrorCode,
    message: String,
) {
    latency.total_ms = Some(c.decided_at.elapsed().as_millis() as u64);
    let _ = outbox
        .event(ServerMessage::ResponseStarted {
            turn_id,
            status: ResponseStatus::Thinking,
            eta_ms: None,
        })
        .await;
    let _ = outbox
        .event(ErrorEvent::new(code, message, true).turn(turn_id).into())
        .await;
    let _ = outbox
        .event(ServerMessage::ResponseDone {
            turn_id,
            status: DoneStatus::Failed,
            text: String::new(),
            heard_text: String::new(),
            latency,
            usage: None,
        })
        .await;
}

/// Attempts after the first when the model says it is busy.
const MAX_LLM_RETRIES: u32 = 2;

/// Overload answers are worth a bounded retry; anything else fails the turn at once.
fn is_retryable(e: &crate::llm::LlmError) -> bool {
    matches!(
        e,
        crate::llm::LlmError::Http {
            status: 429 | 503,
            ..
        }
    )
}

/// The developer-facing message, made explicit for the cases an operator must fix.
fn describe_llm_error(e: &crate::llm::LlmError) -> String {
    match e {
        crate::llm::LlmError::Http {
            status: 401 | 403, ..
        } => {
            format!("{e} (the API key is missing or wrong: set CALLGATE_LLM_API_KEY)")
        }
        _ => e.to_string(),
    }
}

/// Finds where `sentence` (trimmed by the splitter) ends in `text`, searching from `from`.
fn locate(text: &str, sentence: &str, from: &mut usize) -> usize {
    let start = (*from).min(text.len());
    let end = text
        .get(start..)
        .and_then(|rest| rest.find(sentence))
        .map(|i| start + i + sentence.len())
        .unwrap_or(text.len());
    *from = end;
    end
}

/// The part of `text` the user heard: whole sentences played, plus the played share of the
/// sentence playing when it stopped, cut back to a word boundary. Without a playback report
/// the client is assumed to have heard nothing it was not sent.
fn heard_prefix(text: &str, spoken: &[Spoken], played_ms: Option<u64>) -> String {
    let played = played_ms.unwrap_or_else(|| spoken.last().map_or(0, |s| s.audio_end_ms));
    let mut end = 0usize;
    let mut start_of_current = 0usize;
    for s in spoken {
        if played >= s.audio_end_ms {
            end = s.text_end;
            start_of_current = s.text_end;
            continue;
        }
        if played > s.audio_start_ms {
            let share = (played - s.audio_start_ms) as f64
                / (s.audio_end_ms - s.audio_start_ms).max(1) as f64;
            let span = s.text_end.saturating_sub(start_of_current);
            let mut cut = start_of_current + (span as f64 * share) as usize;
            while cut > start_of_current && !text.is_char_boundary(cut) {
                cut -= 1;
            }
            // Back to the last whole word.
            let partial = &text[start_of_current..cut];
            end = match partial.rfind(char::is_whitespace) {
                Some(i) => start_of_current + i,
                None => start_of_current,
            };
        }
        break;
    }
    text[..end.min(text.len())].trim_end().to_string()
}

/// What the user can have heard: the client's report, capped by what was sent; without a
/// report, what was sent.
fn heard_ms(reported: Option<u64>, sent_ms: u64) -> Option<u64> {
    Some(reported.map_or(sent_ms, |r| r.min(sent_ms)))
}

/// Synthesizes sentences in order and sends their audio; returns where each sentence lies.
async fn speak(
    turn_id: u32,
    engines: Arc<Engines>,
    output_rate: u32,
    outbox: Outbox,
    cancel: CancellationToken,
    mut sentences: mpsc::Receiver<(String, usize)>,
) -> SpeakerReport {
    let mut report = SpeakerReport {
        spoken: Vec::new(),
        first_audio_at: None,
        tts_first_ms: None,
        error: None,
        error_reported: false,
        sent_ms: 0,
    };
    let frame_len = (output_rate * FRAME_MS / 1000) as usize;
    // The last frame is held back until we know whether more audio follows, so it can
    // carry the `last` flag.
    let mut held: Option<Vec<i16>> = None;
    let mut first = true;
    let mut sent_ms = 0u64;
    let mut last_tts_error: Option<String> = None;
    // Audio handed to the outbox so far (ms) and when the first frame went out.
    let mut queued_ms = 0u64;
    let mut clock_start: Option<Instant> = None;
    loop {
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled() => return report,
            s = sentences.recv() => s,
        };
        let Some((sentence, text_end)) = next else {
            break;
        };
        let started = Instant::now();
        let speech = match engines.tts.synthesize(sentence, cancel.clone()).await {
            Ok(s) => s,
            Err(crate::tts::TtsError::Cancelled) => return report,
            Err(e) => {
                // One unspeakable sentence should not silence the rest of the answer: skip it,
                // tell the client once, go on with the next.
                tracing::warn!(turn_id, error = %e, "synthesis failed; skipping a sentence");
                last_tts_error = Some(e.to_string());
                if !report.error_reported {
                    report.error_reported = true;
                    let _ = outbox
                        .event(
                            ErrorEvent::new(ErrorCode::TtsError, e.to_string(), true)
                                .turn(turn_id)
                                .user_message(
                                    "Part of the interviewer's answer could not be spoken.",
                                )
                                .into(),
                        )
                        .await;
                }
                continue;
            }
        };
        report
            .tts_first_ms
            .get_or_insert(started.elapsed().as_millis() as u64);
        // Resampling a whole sentence is a block of CPU work: keep it off the async workers.
        let rate = speech.sample_rate;
        let samples = speech.samples;
        let job = tokio::task::spawn_blocking(move || {
            resample_all(&i16_to_mono_f32(&samples, 1), rate, output_rate).map(|o| f32_to_i16(&o))
        })
        .await;
        let audio = match job
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            Ok(audio) => audio,
            Err(e) => {
                report.error = Some(e);
                break;
            }
        };
        let audio_start_ms = sent_ms;
        sent_ms += audio.len() as u64 * 1000 / output_rate as u64;
        report.spoken.push(Spoken {
            text_end,
            audio_start_ms,
            audio_end_ms: sent_ms,
        });
        for frame in audio.chunks(frame_len.max(1)) {
            if let Some(prev) = held.replace(frame.to_vec()) {
                if let Some(start) = clock_start {
                    let due = start
                        + std::time::Duration::from_millis(
                            queued_ms.saturating_sub(PLAYBACK_LEAD_MS),
                        );
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => return report,
                        _ = tokio::time::sleep_until(due.into()) => {}
                    }
                }
                if cancel.is_cancelled() {
                    return report;
                }
                clock_start.get_or_insert_with(Instant::now);
                if outbox.audio(turn_id, first, false, &prev).await.is_err() {
                    return report;
                }
                queued_ms += prev.len() as u64 * 1000 / output_rate as u64;
                report.sent_ms = queued_ms;
                if first {
                    report.first_audio_at = Some(Instant::now());
                    first = false;
                }
            }
        }
    }
    if cancel.is_cancelled() {
        return report;
    }
    if report.spoken.is_empty()
        && let Some(e) = last_tts_error
    {
        // Not one sentence could be spoken: the engine is broken, not one sentence.
        report.error = Some(format!("no sentence of the answer could be spoken: {e}"));
        return report;
    }
    let last = held.take().unwrap_or_default();
    if outbox.audio(turn_id, first, true, &last).await.is_ok() {
        report.sent_ms = queued_ms + last.len() as u64 * 1000 / output_rate as u64;
        if first {
            report.first_audio_at = Some(Instant::now());
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spoken() -> (String, Vec<Spoken>) {
        let text = "Thanks for that. Tell me about a bug you fixed.".to_string();
        let s = vec![
            Spoken {
                text_end: 16,
                audio_start_ms: 0,
                audio_end_ms: 1000,
            },
            Spoken {
                text_end: text.len(),
                audio_start_ms: 1000,
                audio_end_ms: 3000,
            },
        ];
        (text, s)
    }

    #[test]
    fn heard_prefix_cuts_at_played_word() {
        let (text, s) = spoken();
        assert_eq!(heard_prefix(&text, &s, Some(0)), "");
        assert_eq!(heard_prefix(&text, &s, Some(1000)), "Thanks for that.");
        let mid = heard_prefix(&text, &s, Some(2000));
        assert!(
            text.starts_with(&mid) && mid.len() > 16 && mid.len() < text.len(),
            "{mid}"
        );
        assert_eq!(heard_prefix(&text, &s, Some(5000)), text);
        // No report: everything sent counts as heard.
        assert_eq!(heard_prefix(&text, &s, None), text);
    }

    #[test]
    fn locate_finds_sentence_ends_in_order() {
        let text = "Yes. Yes. No.";
        let mut from = 0;
        assert_eq!(locate(text, "Yes.", &mut from), 4);
        assert_eq!(locate(text, "Yes.", &mut from), 9);
        assert_eq!(locate(text, "No.", &mut from), 13);
    }
}
