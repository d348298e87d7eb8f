// callgate.v1 wire types, generated from src/protocol/ by src/schema.rs.
// Do not edit: `cargo run --release --example gen_contract` rewrites this file.
// Fields the server fills with a default (`input.channels`, `output`, `turnDetection`,
// ...) are declared as the server sends them; in a client message they may be
// omitted (GET /v1/schema marks exactly which).

/** Any JSON value (free-form fields such as `context` and `ping.t`). */
export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]?: JsonValue } | null;

export type ClientMessage = { "type": "session.start" } & SessionStart | { "type": "session.resume", 
/**
 * The `sessionId` from `session.started`.
 */
sessionId: string, 
/**
 * The `resumeToken` from `session.started`; proves ownership of the session.
 */
resumeToken: string, 
/**
 * A call token, for a client that sent its token in `session.start` rather than
 * on the upgrade request (the same rules apply).
 */
token?: string | null, } | { "type": "session.end" } | { "type": "audio.chunk", 
/**
 * Input sequence number, shared with binary frames.
 */
seq: number, 
/**
 * Base64 of the little-endian PCM bytes.
 */
audio: string, } | { "type": "input.commit" } | { "type": "input.clear" } | { "type": "input.text", 
/**
 * The user's words, used as the final transcript.
 */
text: string, } | { "type": "response.cancel", 
/**
 * Only cancel if this turn is the one in flight; `None` cancels whatever is.
 */
turnId?: number | null, } | { "type": "playback.position", 
/**
 * The response being played.
 */
turnId: number, 
/**
 * Milliseconds of that response's audio played so far.
 */
playedMs: number, } | { "type": "ping", 
/**
 * Opaque client value echoed in `pong` (normally client ms); `null` when omitted.
 */
t: JsonValue, };

export type SessionStart = { 
/**
 * JWT when not given on the upgrade request.
 */
token?: string | null, 
/**
 * Which AI role/script to use; `None` means the server's default persona.
 */
persona?: string | null, 
/**
 * Free-form context given to the LLM; empty when omitted.
 */
context?: { [key in string]: JsonValue }, 
/**
 * The client's audio format. Required: there is no safe guess for a microphone's rate.
 */
input: InputFormat, 
/**
 * The audio format the client wants back; defaults to 24 kHz binary PCM.
 */
output: OutputFormat, 
/**
 * How the end of a user turn is found; defaults to `smart`.
 */
turnDetection: TurnDetection, };

export type InputFormat = { 
/**
 * Samples per second per channel; the server resamples to what ASR needs.
 */
sampleRate: number, 
/**
 * 1, or 2 for interleaved stereo that the server down-mixes; defaults to 1.
 */
channels: number, 
/**
 * Always `pcm_s16le`; the field exists so a future encoding can be negotiated.
 */
encoding: string, };

export type OutputFormat = { 
/**
 * Samples per second; defaults to [`DEFAULT_OUTPUT_SAMPLE_RATE`].
 */
sampleRate: number, 
/**
 * Always `pcm_s16le`.
 */
encoding: string, 
/**
 * Binary frames or JSON `response.audio.chunk` messages; defaults to binary.
 */
transport: Transport, };

export type Transport = "binary" | "json";

export type TurnDetection = { 
/**
 * Smart end of turn (the default), server VAD with a fixed silence, or client commits.
 */
mode: TurnMode, 
/**
 * `server_vad`: the silence that ends a turn; `None` means [`DEFAULT_SILENCE_MS`].
 */
silenceMs?: number | null, 
/**
 * `smart`: the silence that ends a turn judged complete; `None` means
 * [`DEFAULT_MIN_SILENCE_MS`].
 */
minSilenceMs?: number | null, 
/**
 * `smart`: the silence that ends any turn, however unfinished it sounds; `None` means
 * [`DEFAULT_MAX_SILENCE_MS`].
 */
maxSilenceMs?: number | null, };

export type TurnMode = "smart" | "server_vad" | "manual";

export type ServerMessage = { "type": "session.started", 
/**
 * Identifies the session for `session.resume`.
 */
sessionId: string, 
/**
 * Secret the client must present to resume.
 */
resumeToken: string, 
/**
 * Always [`PROTOCOL_NAME`].
 */
protocol: string, 
/**
 * The input format in effect, defaults filled in.
 */
input: InputFormat, 
/**
 * The output format in effect, defaults filled in.
 */
output: OutputFormat, 
/**
 * Limits the client must respect.
 */
limits: Limits, 
/**
 * The interviewer's voice, as `--voice` names it: `piper:en_US-joe-medium` (the
 * default neural voice) or `espeak:NAME`.
 */
voice: string, } | { "type": "session.resumed", 
/**
 * The session that was resumed.
 */
sessionId: string, 
/**
 * The first input seq the client must (re)send: one past the last ack.
 */
nextSeq: number, 
/**
 * The conversation so far, oldest first, so the client can redraw its transcript.
 */
turns: Array<TurnRecord>, } | { "type": "session.ended", 
/**
 * The session that ended.
 */
sessionId: string, 
/**
 * Who or what ended it.
 */
reason: EndReason, 
/**
 * User turns taken.
 */
turns: number, 
/**
 * Call length.
 */
durationMs: number, } | { "type": "audio.ack", 
/**
 * Highest contiguous input seq received.
 */
seq: number, } | { "type": "input.speech_started", 
/**
 * The user turn this speech opens.
 */
turnId: number, 
/**
 * Position in the input stream of the speech onset.
 */
audioMs: number, } | { "type": "input.speech_stopped", 
/**
 * The user turn that ended.
 */
turnId: number, 
/**
 * Position in the input stream where speech ended.
 */
audioMs: number, 
/**
 * Which rule ended the turn, and when.
 */
endOfTurn: EndOfTurn, } | { "type": "transcript", 
/**
 * The user turn transcribed.
 */
turnId: number, 
/**
 * Transcribed text.
 */
text: string, 
/**
 * True for the one final transcript of the turn.
 */
isFinal: boolean, 
/**
 * Start of the transcribed audio in the input stream (final only).
 */
startMs?: number | null, 
/**
 * End of the transcribed audio in the input stream (final only).
 */
endMs?: number | null, } | { "type": "response.started", 
/**
 * The turn answered.
 */
turnId: number, 
/**
 * Thinking, queued for capacity, or retrying an engine.
 */
status: ResponseStatus, 
/**
 * Expected wait when queued.
 */
etaMs?: number | null, } | { "type": "response.paused", 
/**
 * The response paused.
 */
turnId: number, 
/**
 * Where the candidate's speech began in the input stream.
 */
audioMs: number, } | { "type": "response.resumed", 
/**
 * The response resumed.
 */
turnId: number, 
/**
 * How long it was paused, ms.
 */
pausedMs: number, 
/**
 * What the candidate said ("" for sound without words).
 */
text: string, } | { "type": "response.text.delta", 
/**
 * The turn answered.
 */
turnId: number, 
/**
 * 0-based position of this delta, so a client can spot a lost one.
 */
index: number, 
/**
 * The text piece.
 */
delta: string, } | { "type": "response.audio.chunk", 
/**
 * The turn the audio belongs to.
 */
turnId: number, 
/**
 * Output seq, counted across the call.
 */
seq: number, 
/**
 * Base64 of the little-endian PCM bytes.
 */
audio: string, 
/**
 * First chunk of the response.
 */
first: boolean, 
/**
 * Last chunk of the response.
 */
last: boolean, } | { "type": "response.done", 
/**
 * The turn answered.
 */
turnId: number, 
/**
 * How the response ended.
 */
status: DoneStatus, 
/**
 * Everything the AI generated.
 */
text: string, 
/**
 * The part the client actually played; what the conversation history keeps.
 */
heardText: string, 
/**
 * Stage timings.
 */
latency: Latency, 
/**
 * Tokens the model reported using for this turn, when its server sends them.
 */
usage?: TokenUsage | null, } | { "type": "error" } & ErrorEvent | { "type": "pong", 
/**
 * The client's `t`, unchanged.
 */
t: JsonValue, 
/**
 * Server wall clock in ms since the Unix epoch, for clock-offset estimates.
 */
serverTime: number, };

export type Limits = { 
/**
 * Largest frame the server accepts, [`MAX_FRAME_BYTES`].
 */
maxFrameBytes: number, };

export type TurnRecord = { 
/**
 * The turn id (0 for a greeting).
 */
turnId: number, 
/**
 * The user's final transcript; empty for the greeting.
 */
userText: string, 
/**
 * What the AI said that the user heard (`heardText`).
 */
aiText: string, };

export type EndReason = "client" | "idle" | "shutdown" | "error" | "timeout";

export type ResponseStatus = "thinking" | "queued" | "retrying";

export type DoneStatus = "completed" | "cancelled" | "failed";

export type Latency = { 
/**
 * End of speech in the audio to the end-of-turn decision.
 */
endpointMs: number | null, 
/**
 * The rule that ended the user's turn (`null` for typed and manual turns).
 */
endOfTurn: EndOfTurn | null, 
/**
 * Final transcription.
 */
asrMs: number | null, 
/**
 * LLM request to its first token.
 */
llmFirstTokenMs: number | null, 
/**
 * First sentence to its first synthesized audio.
 */
ttsFirstAudioMs: number | null, 
/**
 * End-of-turn decision to the first output audio frame sent.
 */
firstAudioMs: number | null, 
/**
 * End-of-turn decision to `response.done`.
 */
totalMs: number | null, };

export type EndOfTurn = { 
/**
 * The rule that ended it.
 */
rule: EndRule, 
/**
 * Silence after the speech when the turn ended.
 */
silenceMs: number, 
/**
 * `smart`: how likely the answer was finished (0-1), from its words and its sound.
 */
score?: number | null, };

export type EndRule = "silence" | "complete" | "unsure" | "max_silence" | "longest_turn";

export type TokenUsage = { 
/**
 * Tokens of the prompt (system prompt and history).
 */
promptTokens: number, 
/**
 * Tokens generated.
 */
completionTokens: number, };

export type ErrorEvent = { 
/**
 * Machine-readable code.
 */
code: ErrorCode, 
/**
 * For developers and logs.
 */
message: string, 
/**
 * Safe to show a candidate.
 */
userMessage: string, 
/**
 * Whether the call goes on.
 */
recoverable: boolean, 
/**
 * The turn affected, if any.
 */
turnId?: number | null, 
/**
 * With `OVERLOADED` / `RATE_LIMITED`: when to try again.
 */
retryAfterMs?: number | null, 
/**
 * With `AUDIO_GAP`: first lost seq.
 */
from?: number | null, 
/**
 * With `AUDIO_GAP`: last lost seq (inclusive).
 */
to?: number | null, };

export type ErrorCode = "BAD_MESSAGE" | "BAD_AUDIO" | "AUDIO_GAP" | "UNAUTHORIZED" | "RATE_LIMITED" | "SESSION_NOT_FOUND" | "ASR_ERROR" | "LLM_ERROR" | "TTS_ERROR" | "OVERLOADED" | "INTERNAL";

export type Report = { 
/**
 * The call.
 */
sessionId: string, 
/**
 * The token's user, when tokens are on.
 */
user: string | null, 
/**
 * The interviewer persona.
 */
persona: string | null, 
/**
 * Which voice spoke, when the call said.
 */
voice: string | null, 
/**
 * When the call started (Unix ms).
 */
startedAt: number, 
/**
 * From `session.started` to `session.ended`.
 */
durationMs: number, 
/**
 * The call has ended (`session.ended` is in the log): the report is final.
 */
ended: boolean, 
/**
 * Every answer, in order.
 */
answers: Array<Answer>, 
/**
 * Figures over the whole call.
 */
call: CallFigures, 
/**
 * What crossed a threshold of [`rules`].
 */
observations: Array<Observation>, 
/**
 * Who spoke when, in ms from the call's start.
 */
timeline: Array<Span>, 
/**
 * Whether more than the rules has been said.
 */
feedback: Feedback, };

export type Answer = { 
/**
 * The user turn.
 */
turnId: number, 
/**
 * What the interviewer had said (as heard) before this answer.
 */
question: string, 
/**
 * What the candidate said (whisper).
 */
transcript: string, 
/**
 * Start of the answer's speech, ms from the call's start.
 */
startMs: number, 
/**
 * End of the answer's speech, ms from the call's start.
 */
endMs: number, 
/**
 * Start of the answer's speech in the input stream (ms of audio the client sent).
 */
inputStartMs: number, 
/**
 * End of the answer's speech in the input stream.
 */
inputEndMs: number, 
/**
 * From the first word to the last, pauses included.
 */
lengthS: number, 
/**
 * Words in the transcript, fillers included.
 */
words: number, 
/**
 * Speech time: the answer's length without its pauses.
 */
speechMs: number, 
/**
 * Words per minute of speech time.
 */
wordsPerMinute: number, 
/**
 * The fillers heard, in order.
 */
fillers: Array<Filler>, 
/**
 * Fillers a minute of speech time.
 */
fillersPerMinute: number, 
/**
 * Pauses of at least [`rules::LISTED_PAUSE_MS`] inside the answer.
 */
pauses: Array<AnswerPause>, 
/**
 * The longest of the answer's pauses (0 without one).
 */
longestPauseMs: number, 
/**
 * From the end of the interviewer's audio to the answer's first speech; negative when
 * the candidate started before it ended (interrupted it). `None` when nothing came
 * before.
 */
startDelayMs: number | null, 
/**
 * The answer began over the interviewer and stopped it.
 */
interruptedInterviewer: boolean, 
/**
 * The candidate spoke on over the reply within [`rules::CUT_OFF_MS`] of the answer's end and stopped it.
 */
cutOff: boolean, };

export type AnswerPause = { 
/**
 * Where it began, ms from the answer's start.
 */
atMs: number, 
/**
 * How long it lasted.
 */
lengthMs: number, };

export type Filler = { 
/**
 * As written in the transcript.
 */
text: string, 
/**
 * Byte range in the transcript.
 */
start: number, 
/**
 * End of the byte range.
 */
end: number, };

export type CallFigures = { 
/**
 * How many answers.
 */
answers: number, 
/**
 * The candidate's speech, all of it (answers, backchannels), ms.
 */
candidateTalkMs: number, 
/**
 * The interviewer's audio as heard, ms.
 */
interviewerTalkMs: number, 
/**
 * The candidate's share of the talking, 0..1.
 */
talkRatio: number, 
/**
 * The mean answer length.
 */
averageAnswerS: number, 
/**
 * Words per minute over all answers' speech time.
 */
wordsPerMinute: number, 
/**
 * Fillers in all answers.
 */
fillers: number, 
/**
 * Fillers a minute over all answers' speech time.
 */
fillersPerMinute: number, 
/**
 * Listed pauses in all answers.
 */
pauses: number, 
/**
 * Answers that began over the interviewer and stopped it.
 */
interruptions: number, 
/**
 * Answers the interviewer cut off.
 */
cutOffs: number, };

export type Span = { 
/**
 * Who spoke.
 */
who: Speaker, 
/**
 * From, ms from the call's start.
 */
startMs: number, 
/**
 * To, ms from the call's start.
 */
endMs: number, };

export type Speaker = "candidate" | "interviewer";

export type Observation = { 
/**
 * The rule it comes from (a name in [`rules::table`]).
 */
rule: string, 
/**
 * The observation, with its figure.
 */
text: string, 
/**
 * The answer it is about (index into `answers`), if one.
 */
answer: number | null, };

export type History = { 
/**
 * The user's ended calls, newest first (at most [`LISTED_CALLS`]).
 */
calls: Array<PastCall>, 
/**
 * How the headline figures moved from the oldest to the newest of the last
 * [`TREND_CALLS`] calls with answers; empty with fewer than two such calls.
 */
trends: Array<Trend>, };

export type PastCall = { 
/**
 * The call (its report is `/v1/calls/<sessionId>/report.html`).
 */
sessionId: string, 
/**
 * When it started (Unix ms).
 */
startedAt: number, 
/**
 * The interviewer persona.
 */
persona: string | null, 
/**
 * How long it lasted.
 */
durationMs: number, 
/**
 * How many answers the candidate gave.
 */
answers: number, 
/**
 * Headline figure: words per minute over all answers.
 */
wordsPerMinute: number, 
/**
 * Headline figure: fillers a minute over all answers.
 */
fillersPerMinute: number, };

export type Trend = { 
/**
 * What moved, as a person says it ("fillers per minute").
 */
figure: string, 
/**
 * Its value in the oldest of those calls.
 */
from: number, 
/**
 * Its value in the newest.
 */
to: number, 
/**
 * How many calls it spans.
 */
calls: number, 
/**
 * One line: "fillers per minute 7.5 -> 4.1 over your last 5 calls".
 */
summary: string, };

export type Feedback = { 
/**
 * `rules_only`: the observations are all there is; `pending`: the interviewer model's
 * feedback on each answer is being written; `model`: it is in `answers`.
 */
status: string, 
/**
 * What the feedback is made of.
 */
note: string, 
/**
 * The model's feedback on each answer (status `model`).
 */
answers: Array<AnswerFeedback>, };

export type AnswerFeedback = { 
/**
 * The answer's user turn.
 */
turnId: number, 
/**
 * The model's two strengths and one improvement, as it wrote them.
 */
text: string | null, 
/**
 * Why there is none for this answer (the model failed or took too long).
 */
error: string | null, };

/** Subprotocol to offer on the WebSocket. */
export const PROTOCOL_NAME: "callgate.v1";
/** Largest text or binary frame, in bytes. */
export const MAX_FRAME_BYTES: 65536;
/** Binary audio frame header: kind u8, flags u8, reserved u16, seq u32, turn u32 (little-endian). */
export const FRAME_HEADER_LEN: 12;
/** Frame kind of client input audio (flags and turn are 0). */
export const KIND_INPUT: 1;
/** Frame kind of server output audio. */
export const KIND_OUTPUT: 2;
/** Output flag: first chunk of a response. */
export const FLAG_FIRST: 1;
/** Output flag: last chunk of a response. */
export const FLAG_LAST: 2;
