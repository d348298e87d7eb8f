// @ts-check
// The callgate.v1 wire format as the page speaks it (docs/protocol.md): the constants,
// binary audio frames, and text messages in and out. The only module that knows field
// offsets and close codes. The types come from the Rust definitions through
// docs/callgate.d.ts, so `tsc -p src/web` fails when the page and the contract differ.

/** @typedef {import('../../docs/callgate').ClientMessage} ClientMessage */
/** @typedef {import('../../docs/callgate').ServerMessage} ServerMessage */
/** @typedef {import('../../docs/callgate').SessionStart} SessionStart */
/** @typedef {import('../../docs/callgate').TurnMode} TurnMode */
/** @typedef {import('../../docs/callgate').TurnDetection} TurnDetection */
/** @typedef {Extract<ServerMessage, {type: 'response.done'}>} ResponseDone */

/** @type {typeof import('../../docs/callgate').PROTOCOL_NAME} */
export const PROTOCOL_NAME = 'callgate.v1';
/** @type {typeof import('../../docs/callgate').KIND_INPUT} */
const KIND_INPUT = 1;
/** @type {typeof import('../../docs/callgate').KIND_OUTPUT} */
const KIND_OUTPUT = 2;
/** @type {typeof import('../../docs/callgate').FLAG_LAST} */
const FLAG_LAST = 2;
/** @type {typeof import('../../docs/callgate').FRAME_HEADER_LEN} */
const FRAME_HEADER_LEN = 12;
/** The close code of a refused `session.resume` (after `SESSION_NOT_FOUND`). */
export const CLOSE_REFUSED = 1008;

// The rate the page asks the server to speak at: espeak-ng and most TTS voices are about
// this rate, so nothing is lost and the socket carries half of 48 kHz.
export const OUTPUT_RATE = 24000;

/** @param {number} samples of output audio */
export function samplesToMs(samples) {
  return Math.round((samples * 1000) / OUTPUT_RATE);
}

/** @param {ClientMessage} msg */
export function encode(msg) {
  return JSON.stringify(msg);
}

/**
 * A text frame from the server; `null` for one that is not a JSON object with a `type`
 * (the server never sends one, but a proxy might).
 * @param {string} text
 * @returns {ServerMessage | null}
 */
export function decode(text) {
  try {
    const msg = JSON.parse(text);
    return msg && typeof msg === 'object' && typeof msg.type === 'string' ? msg : null;
  } catch {
    return null;
  }
}

/**
 * The binary frame of one chunk of microphone input (kind 1; flags and turn are 0).
 * @param {number} seq
 * @param {Int16Array} samples
 */
export function inputFrame(seq, samples) {
  const frame = new ArrayBuffer(FRAME_HEADER_LEN + samples.byteLength);
  const head = new DataView(frame);
  head.setUint8(0, KIND_INPUT);
  head.setUint32(4, seq, true);
  for (let i = 0; i < samples.length; i++) head.setInt16(FRAME_HEADER_LEN + i * 2, samples[i], true);
  return frame;
}

/** @typedef {{turnId: number, last: boolean, samples: Int16Array}} OutputFrame */

/**
 * A binary frame of the interviewer's voice; `null` for anything else.
 * @param {ArrayBuffer} buf
 * @returns {OutputFrame | null}
 */
export function parseOutputFrame(buf) {
  if (buf.byteLength < FRAME_HEADER_LEN) return null;
  const head = new DataView(buf);
  if (head.getUint8(0) !== KIND_OUTPUT) return null;
  const n = (buf.byteLength - FRAME_HEADER_LEN) >> 1;
  const samples = new Int16Array(n);
  for (let i = 0; i < n; i++) samples[i] = head.getInt16(FRAME_HEADER_LEN + i * 2, true);
  return {
    turnId: head.getUint32(8, true),
    last: (head.getUint8(1) & FLAG_LAST) !== 0,
    samples,
  };
}

/**
 * How long the interviewer lets a pause run before it answers, as smart turn detection's
 * silences. `normal` sends none, so the server's defaults apply (and stay defined there
 * only); `quick` ends an unfinished-sounding answer sooner, `patient` waits longer even
 * after one that sounds finished (within the server's 100..=5000 ms).
 * @type {Record<'quick' | 'normal' | 'patient', Pick<TurnDetection, 'minSilenceMs' | 'maxSilenceMs'>>}
 */
export const PATIENCE = {
  quick: { maxSilenceMs: 1200 },
  normal: {},
  patient: { minSilenceMs: 800, maxSilenceMs: 4500 },
};

/** @typedef {keyof typeof PATIENCE} Patience */

/**
 * @param {string | null} name a stored or chosen patience (anything else is normal)
 * @returns {Patience}
 */
export function asPatience(name) {
  return name === 'quick' || name === 'patient' ? name : 'normal';
}

/**
 * What the page asks for in `session.start`.
 * @param {{persona: string, role: string, inputRate: number, mode: TurnMode, patience: Patience}} choice
 * @returns {SessionStart}
 */
export function sessionStart({ persona, role, inputRate, mode, patience }) {
  return {
    persona: persona || null,
    context: role ? { role } : {},
    input: { sampleRate: inputRate, channels: 1, encoding: 'pcm_s16le' },
    output: { sampleRate: OUTPUT_RATE, encoding: 'pcm_s16le', transport: 'binary' },
    turnDetection: mode === 'manual' ? { mode: 'manual' } : { mode: 'smart', ...PATIENCE[patience] },
  };
}

/**
 * The `response.done` the page settles a response with when the server's went to a
 * socket that died: cancelled, with what the server's record says was heard.
 * @param {number} turnId
 * @param {string} text
 * @param {string} heardText
 * @returns {ResponseDone}
 */
export function cancelledDone(turnId, text, heardText) {
  return {
    type: 'response.done',
    turnId,
    status: 'cancelled',
    text,
    heardText,
    latency: {
      endpointMs: null,
      endOfTurn: null,
      asrMs: null,
      llmFirstTokenMs: null,
      ttsFirstAudioMs: null,
      firstAudioMs: null,
      totalMs: null,
    },
  };
}

/**
 * The call's WebSocket address beside the page, with the page's token when it has one.
 * @param {string} pageUrl
 * @param {string} token
 */
export function callUrl(pageUrl, token) {
  const url = new URL('/v1/call', pageUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) url.searchParams.set('access_token', token);
  return url;
}
