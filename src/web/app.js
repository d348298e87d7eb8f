// @ts-check
// The mock-call page: one call at a time over callgate.v1 (docs/protocol.md).
//
// Mic: getUserMedia with the browser's echo cancellation, framed by the `capture` worklet
// at the device's rate into 20 ms binary chunks (kind 1, seq from 0); the server resamples.
// Voice: kind-2 frames go to the `player` worklet in an AudioContext running at the
// output rate the page asked for; a cancelled response is cleared from it at once.
// The wire types come from the Rust definitions through docs/callgate.d.ts.

/** @typedef {import('../../docs/callgate').ClientMessage} ClientMessage */
/** @typedef {import('../../docs/callgate').ServerMessage} ServerMessage */
/** @typedef {import('../../docs/callgate').ErrorEvent} ErrorEvent */
/** @typedef {import('../../docs/callgate').Latency} Latency */
/** @typedef {import('../../docs/callgate').TurnMode} TurnMode */
/** @typedef {import('../../docs/callgate').SessionStart} SessionStart */
/** @typedef {import('../../docs/callgate').TurnRecord} TurnRecord */

const PROTOCOL = 'callgate.v1';
const KIND_INPUT = 1;
const KIND_OUTPUT = 2;
const FLAG_LAST = 2;
const HEADER = 12;
// The rate the page asks the server to speak at: espeak-ng and most TTS voices are about
// this rate, so nothing is lost and the socket carries half of 48 kHz.
const OUTPUT_RATE = 24000;
const FRAME_MS = 20;
// Reconnect waits: quick first, then backing off; after the last the call is over.
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
// Unacknowledged input kept for a resume: 10 s of 20 ms chunks.
const MAX_UNACKED = 500;
const POSITION_EVERY_MS = 250;
// When the server checks tokens, whoever links to this page puts one in its address
// (`/?access_token=...`, e.g. from `callgate token`): it opens the call and the recordings.
const ACCESS_TOKEN = new URLSearchParams(location.search).get('access_token') ?? '';

/** @param {string} id */
function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el;
}

const ui = {
  conn: $('conn'),
  setup: $('setup'),
  form: /** @type {HTMLFormElement} */ ($('setup-form')),
  persona: /** @type {HTMLSelectElement} */ ($('persona')),
  personaDesc: $('persona-desc'),
  role: /** @type {HTMLInputElement} */ ($('role')),
  start: /** @type {HTMLButtonElement} */ ($('start')),
  call: $('call'),
  you: $('you'),
  youStatus: $('you-status'),
  level: /** @type {HTMLMeterElement} */ ($('level')),
  ai: $('ai'),
  aiName: $('ai-name'),
  aiStatus: $('ai-status'),
  mute: /** @type {HTMLButtonElement} */ ($('mute')),
  ptt: /** @type {HTMLButtonElement} */ ($('ptt')),
  end: /** @type {HTMLButtonElement} */ ($('end')),
  notices: $('notices'),
  transcript: $('transcript'),
  typeForm: /** @type {HTMLFormElement} */ ($('type-form')),
  typed: /** @type {HTMLInputElement} */ ($('typed')),
  after: $('after'),
  summary: $('summary'),
  downloads: $('downloads'),
  again: /** @type {HTMLButtonElement} */ ($('again')),
};

/**
 * One exchange on screen: the candidate's words and the interviewer's answer.
 * @typedef {{
 *   user: HTMLElement | null,
 *   ai: HTMLElement | null,
 *   receivedSamples: number,
 *   playedSamples: number,
 *   lastPositionAt: number,
 *   done: boolean,
 * }} Turn
 */

const call = {
  /** @type {WebSocket | null} */ ws: null,
  /** @type {'idle' | 'connecting' | 'live' | 'reconnecting' | 'ended'} */ phase: 'idle',
  sessionId: '',
  resumeToken: '',
  /** @type {TurnMode} */ mode: 'server_vad',
  seq: 0,
  /** Times this call was resumed on a new connection. */
  resumes: 0,
  /** Input frames not yet acknowledged (sent, or held while reconnecting), by seq, for
   * `session.resume`. */
  /** @type {Map<number, ArrayBuffer>} */ unacked: new Map(),
  muted: false,
  talking: false, // push-to-talk held
  userEnded: false,
  attempt: 0,
  /** Sessions of this page visit, so the recordings of every one can be offered. */
  /** @type {string[]} */ sessions: [],
  /** @type {Map<number, Turn>} */ turns: new Map(),
  /** Turns whose response was cancelled: their late frames are dropped, never played. */
  /** @type {Set<number>} */ cancelled: new Set(),
  lateFramesDropped: 0,
  /** @type {number | undefined} */ pingTimer: undefined,
  /** @type {{durationMs: number} | null} */ ended: null,
};

const audio = {
  /** @type {MediaStream | null} */ stream: null,
  /** @type {AudioContext | null} */ captureCtx: null,
  /** @type {AudioContext | null} */ playCtx: null,
  /** @type {AudioWorkletNode | null} */ player: null,
  playing: false,
};

// ---------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------

/** @type {{id: string, name: string, description: string}[]} */
let personas = [];
let defaultPersona = '';

async function loadPersonas() {
  try {
    const res = await fetch('/v1/personas');
    const body = await res.json();
    personas = body.personas || [];
    defaultPersona = body.default || '';
  } catch {
    personas = [];
  }
  ui.persona.replaceChildren(
    ...personas.map((p) => {
      const o = document.createElement('option');
      o.value = p.id;
      o.textContent = p.name;
      return o;
    }),
  );
  if (defaultPersona) ui.persona.value = defaultPersona;
  showPersona();
}

function showPersona() {
  const p = personas.find((x) => x.id === ui.persona.value);
  ui.personaDesc.textContent = p ? p.description : '';
}

ui.persona.addEventListener('change', showPersona);

ui.form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const mode = /** @type {HTMLInputElement | null} */ (
    ui.form.querySelector('input[name=mode]:checked')
  );
  call.mode = mode && mode.value === 'manual' ? 'manual' : 'server_vad';
  ui.start.disabled = true;
  try {
    await openAudio();
  } catch (err) {
    ui.start.disabled = false;
    notice(micProblem(err), 'error');
    return;
  }
  call.userEnded = false;
  call.attempt = 0;
  call.sessions = [];
  call.ended = null;
  call.turns.clear();
  call.cancelled.clear();
  ui.transcript.replaceChildren();
  ui.notices.replaceChildren();
  ui.setup.hidden = true;
  ui.after.hidden = true;
  ui.call.hidden = false;
  ui.ptt.hidden = call.mode !== 'manual';
  connect(false);
});

/** @param {unknown} err */
function micProblem(err) {
  const name = err instanceof DOMException ? err.name : '';
  if (name === 'NotAllowedError') {
    return 'The microphone is blocked. Allow it for this page in the browser, then start again.';
  }
  if (name === 'NotFoundError') return 'No microphone was found. Plug one in and start again.';
  return `The microphone could not be opened (${err}).`;
}

// ---------------------------------------------------------------------------------------
// Audio
// ---------------------------------------------------------------------------------------

async function openAudio() {
  if (audio.stream) return;
  audio.stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  // Capture at the device's own rate: resampling is the server's job.
  const cap = new AudioContext();
  await cap.audioWorklet.addModule('/worklets.js');
  const source = cap.createMediaStreamSource(audio.stream);
  const capture = new AudioWorkletNode(cap, 'capture', {
    processorOptions: { frameMs: FRAME_MS },
    numberOfOutputs: 1,
  });
  // A silent path to the destination keeps the graph (and so the worklet) running.
  const sink = cap.createGain();
  sink.gain.value = 0;
  source.connect(capture).connect(sink).connect(cap.destination);
  capture.port.onmessage = (e) => onCaptured(e.data.samples, e.data.level);

  const play = new AudioContext({ sampleRate: OUTPUT_RATE });
  await play.audioWorklet.addModule('/worklets.js');
  const player = new AudioWorkletNode(play, 'player', { outputChannelCount: [1] });
  player.connect(play.destination);
  player.port.onmessage = (e) => onPlayer(e.data);
  await Promise.all([cap.resume(), play.resume()]);
  audio.captureCtx = cap;
  audio.playCtx = play;
  audio.player = player;
  applyMute();
}

function closeAudio() {
  audio.stream?.getTracks().forEach((t) => t.stop());
  audio.captureCtx?.close();
  audio.playCtx?.close();
  audio.stream = null;
  audio.captureCtx = null;
  audio.playCtx = null;
  audio.player = null;
  audio.playing = false;
}

/** The mic reaches the server unless muted; with push-to-talk only while the key is held. */
function micOpen() {
  return !call.muted && (call.mode !== 'manual' || call.talking);
}

function applyMute() {
  const on = micOpen();
  audio.stream?.getAudioTracks().forEach((t) => {
    t.enabled = on;
  });
  ui.mute.setAttribute('aria-pressed', String(call.muted));
  ui.mute.textContent = call.muted ? 'Unmute' : 'Mute';
  setYouSpeaking(ui.you.dataset.speaking === 'true');
}

/** @param {boolean} on */
function setYouSpeaking(on) {
  ui.you.dataset.speaking = String(on && !call.muted);
  ui.youStatus.textContent = call.muted ? 'Muted' : on ? 'Speaking' : 'Mic on';
}

/**
 * @param {Int16Array} samples
 * @param {number} level
 */
function onCaptured(samples, level) {
  ui.level.value = micOpen() ? Math.min(1, level * 4) : 0;
  const ws = call.ws;
  const live = call.phase === 'live' && ws && ws.readyState === WebSocket.OPEN;
  // While reconnecting, what the candidate says is kept (as unacknowledged frames) and sent
  // once the call is resumed: a dropped connection loses no audio.
  const held = call.phase === 'reconnecting' && call.sessionId !== '';
  if (!live && !held) return;
  // Push-to-talk sends only the held stretch; server VAD hears the whole call (a muted
  // track gives silence, which keeps the server's timeline continuous).
  if (call.mode === 'manual' && !call.talking) return;
  const frame = new ArrayBuffer(HEADER + samples.byteLength);
  const head = new DataView(frame);
  head.setUint8(0, KIND_INPUT);
  head.setUint32(4, call.seq, true);
  const pcm = new DataView(frame, HEADER);
  for (let i = 0; i < samples.length; i++) pcm.setInt16(i * 2, samples[i], true);
  if (live) ws.send(frame);
  call.unacked.set(call.seq, frame);
  if (call.unacked.size > MAX_UNACKED) {
    const oldest = call.unacked.keys().next().value;
    if (oldest !== undefined) call.unacked.delete(oldest);
  }
  call.seq += 1;
}

/** @param {any} msg */
function onPlayer(msg) {
  const turn = call.turns.get(msg.turn);
  if (msg.type === 'pos' || msg.type === 'drained' || msg.type === 'cleared') {
    if (turn) turn.playedSamples = msg.played;
  }
  if (msg.type === 'pos') {
    setAiSpeaking(true);
    if (turn && performance.now() - turn.lastPositionAt >= POSITION_EVERY_MS) {
      sendPosition(msg.turn, turn);
    }
  } else if (msg.type === 'drained') {
    setAiSpeaking(false);
    if (turn) sendPosition(msg.turn, turn);
  } else if (msg.type === 'cleared') {
    setAiSpeaking(false);
    if (turn && turn.ai) turn.ai.dataset.clearedMs = String(ms(msg.dropped));
  }
  if (turn && turn.ai) turn.ai.dataset.playedMs = String(ms(turn.playedSamples));
}

/** @param {number} samples */
function ms(samples) {
  return Math.round((samples * 1000) / OUTPUT_RATE);
}

/**
 * @param {number} turnId
 * @param {Turn} turn
 */
function sendPosition(turnId, turn) {
  turn.lastPositionAt = performance.now();
  send({ type: 'playback.position', turnId, playedMs: ms(turn.playedSamples) });
}

/** @param {boolean} on */
function setAiSpeaking(on) {
  audio.playing = on;
  ui.ai.dataset.speaking = String(on);
  ui.aiStatus.textContent = on ? 'Speaking' : 'Listening';
}

// ---------------------------------------------------------------------------------------
// Connection
// ---------------------------------------------------------------------------------------

/** @param {boolean} resume try `session.resume` for the current session first */
function connect(resume) {
  setPhase(call.attempt === 0 ? 'connecting' : 'reconnecting');
  const url = new URL('/v1/call', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (ACCESS_TOKEN) url.searchParams.set('access_token', ACCESS_TOKEN);
  const ws = new WebSocket(url, PROTOCOL);
  ws.binaryType = 'arraybuffer';
  call.ws = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    if (resume && call.sessionId) {
      send({ type: 'session.resume', sessionId: call.sessionId, resumeToken: call.resumeToken });
    } else {
      startSession();
    }
  };
  ws.onmessage = (e) => {
    if (typeof e.data === 'string') onEvent(JSON.parse(e.data));
    else onAudio(e.data);
  };
  ws.onclose = (e) => {
    if (call.ws !== ws) return;
    clearInterval(call.pingTimer);
    if (call.phase === 'ended' || call.userEnded) {
      finish();
      return;
    }
    // A refused resume (1008) is not a network problem: start a fresh call at once.
    if (opened && e.code === 1008 && resume) {
      call.sessionId = '';
      notice('The connection dropped and the call could not be resumed, so a new call started.', 'info');
      call.attempt = 0;
      connect(false);
      return;
    }
    if (call.attempt >= BACKOFF_MS.length) {
      notice('The connection to the server was lost. Please start the call again.', 'error');
      setPhase('ended');
      finish();
      return;
    }
    const wait = BACKOFF_MS[call.attempt];
    call.attempt += 1;
    setPhase('reconnecting', wait);
    setTimeout(() => connect(true), wait);
  };
}

function startSession() {
  const role = ui.role.value.trim();
  /** @type {SessionStart} */
  const start = {
    persona: ui.persona.value || null,
    context: role ? { role } : {},
    input: {
      sampleRate: audio.captureCtx ? audio.captureCtx.sampleRate : 48000,
      channels: 1,
      encoding: 'pcm_s16le',
    },
    output: { sampleRate: OUTPUT_RATE, encoding: 'pcm_s16le', transport: 'binary' },
    turnDetection: call.mode === 'manual' ? { mode: 'manual' } : { mode: 'server_vad', silenceMs: 500 },
  };
  send({ type: 'session.start', ...start });
}

/** @param {ClientMessage} msg */
function send(msg) {
  if (call.ws && call.ws.readyState === WebSocket.OPEN) call.ws.send(JSON.stringify(msg));
}

/**
 * @param {'idle' | 'connecting' | 'live' | 'reconnecting' | 'ended'} phase
 * @param {number} [waitMs]
 */
function setPhase(phase, waitMs) {
  call.phase = phase;
  ui.conn.dataset.state = phase;
  ui.conn.textContent = {
    idle: 'Not connected',
    connecting: 'Connecting…',
    live: 'In call',
    reconnecting: waitMs ? `Reconnecting in ${(waitMs / 1000).toFixed(1)} s…` : 'Reconnecting…',
    ended: 'Call ended',
  }[phase];
}

// ---------------------------------------------------------------------------------------
// Server events
// ---------------------------------------------------------------------------------------

/** @param {ServerMessage} m */
function onEvent(m) {
  switch (m.type) {
    case 'session.started':
    case 'session.resumed':
      if (m.type === 'session.started') {
        call.sessionId = m.sessionId;
        call.resumeToken = m.resumeToken;
        call.seq = 0;
        call.unacked.clear();
        call.sessions.push(m.sessionId);
        document.body.dataset.sessionId = m.sessionId;
      } else {
        // Resend, in order, what the server never got (including what was said while the
        // connection was down); new frames go on from the seq after the last one kept.
        for (const [seq, frame] of call.unacked) {
          if (seq >= m.nextSeq) call.ws?.send(frame);
        }
        call.resumes += 1;
        document.body.dataset.resumes = String(call.resumes);
        settleDroppedResponses(m.turns);
      }
      call.attempt = 0;
      setPhase('live');
      clearInterval(call.pingTimer);
      call.pingTimer = setInterval(() => send({ type: 'ping', t: Date.now() }), 15000);
      break;
    case 'audio.ack':
      for (const seq of call.unacked.keys()) {
        if (seq > m.seq) break;
        call.unacked.delete(seq);
      }
      break;
    case 'input.speech_started':
      setYouSpeaking(true);
      break;
    case 'input.speech_stopped':
      setYouSpeaking(false);
      break;
    case 'transcript': {
      const turn = turnFor(m.turnId);
      const el = turn.user || (turn.user = bubble(m.turnId, 'user', 'You'));
      const text = /** @type {HTMLElement} */ (el.querySelector('.text'));
      text.textContent = m.text;
      text.className = m.isFinal ? 'text final' : 'text partial';
      if (m.isFinal) setYouSpeaking(false);
      break;
    }
    case 'response.started': {
      const turn = turnFor(m.turnId);
      const el = turn.ai || (turn.ai = bubble(m.turnId, 'ai', ui.aiName.textContent || 'Interviewer'));
      el.dataset.status = m.status;
      ui.aiStatus.textContent = m.status === 'thinking' ? 'Thinking' : m.status === 'queued' ? 'Waiting for a free moment' : 'Trying again';
      break;
    }
    case 'response.text.delta': {
      const turn = turnFor(m.turnId);
      const el = turn.ai || (turn.ai = bubble(m.turnId, 'ai', ui.aiName.textContent || 'Interviewer'));
      el.dataset.status = 'speaking';
      const text = /** @type {HTMLElement} */ (el.querySelector('.text'));
      text.textContent += m.delta;
      break;
    }
    case 'response.done':
      onResponseDone(m);
      break;
    case 'error':
      onError(m);
      break;
    case 'session.ended':
      call.ended = { durationMs: m.durationMs };
      setPhase('ended');
      break;
    default:
      break;
  }
  scrollDown();
}

/**
 * The server cancels the response it was speaking when the connection drops (nobody heard
 * the rest), and that `response.done` went to the dead socket: settle those turns here,
 * with what the server's record says was heard.
 * @param {TurnRecord[]} records
 */
function settleDroppedResponses(records) {
  for (const [turnId, turn] of call.turns) {
    if (!turn.ai || turn.done) continue;
    const text = turn.ai.querySelector('.text')?.textContent ?? '';
    const heard = records.find((r) => r.turnId === turnId)?.aiText ?? '';
    onResponseDone({
      type: 'response.done',
      turnId,
      status: 'cancelled',
      text: heard.length > text.length ? heard : text,
      heardText: heard,
      latency: {
        endpointMs: null,
        asrMs: null,
        llmFirstTokenMs: null,
        ttsFirstAudioMs: null,
        firstAudioMs: null,
        totalMs: null,
      },
    });
  }
}

/**
 * @param {Extract<ServerMessage, {type: 'response.done'}>} m
 */
function onResponseDone(m) {
  const turn = turnFor(m.turnId);
  const el = turn.ai || (turn.ai = bubble(m.turnId, 'ai', ui.aiName.textContent || 'Interviewer'));
  turn.done = true;
  el.dataset.status = m.status;
  const text = /** @type {HTMLElement} */ (el.querySelector('.text'));
  if (m.status === 'cancelled') {
    // Barge-in or cancel: nothing more of this turn may be heard.
    call.cancelled.add(m.turnId);
    audio.player?.port.postMessage({ type: 'clear' });
    setAiSpeaking(false);
    const unheard = m.text.slice(m.heardText.length);
    text.textContent = m.heardText;
    if (unheard) {
      const rest = document.createElement('span');
      rest.className = 'unheard';
      rest.textContent = unheard;
      text.append(rest);
    }
  } else {
    text.textContent = m.text;
  }
  const meta = /** @type {HTMLElement} */ (el.querySelector('.meta'));
  meta.textContent = describeDone(m.status, m.latency);
  meta.title = breakdown(m.latency);
  if (m.status !== 'cancelled' && !audio.playing) ui.aiStatus.textContent = 'Listening';
}

/**
 * @param {string} status
 * @param {Latency} l
 */
function describeDone(status, l) {
  if (status === 'cancelled') return 'Interrupted';
  if (status === 'failed') return 'No answer this time';
  if (l.firstAudioMs == null) return '';
  // What the candidate felt: from the end of their speech to the first sound back.
  const wait = (l.endpointMs ?? 0) + l.firstAudioMs;
  return `Answered in ${(wait / 1000).toFixed(2)} s`;
}

/** @param {Latency} l */
function breakdown(l) {
  const parts = [
    ['end of turn', l.endpointMs],
    ['speech recognition', l.asrMs],
    ['first word', l.llmFirstTokenMs],
    ['first audio synthesized', l.ttsFirstAudioMs],
    ['decision to first audio', l.firstAudioMs],
    ['whole response', l.totalMs],
  ];
  return parts
    .filter(([, v]) => v != null)
    .map(([k, v]) => `${k}: ${v} ms`)
    .join('\n');
}

/** @param {ErrorEvent} e */
function onError(e) {
  // A refused resume is handled by starting a new call; the candidate hears about that.
  if (e.code === 'SESSION_NOT_FOUND') return;
  notice(e.userMessage, e.recoverable ? 'warn' : 'error');
}

/** @param {ArrayBuffer} buf */
function onAudio(buf) {
  if (buf.byteLength < HEADER) return;
  const head = new DataView(buf);
  if (head.getUint8(0) !== KIND_OUTPUT) return;
  const last = (head.getUint8(1) & FLAG_LAST) !== 0;
  const turnId = head.getUint32(8, true);
  if (call.cancelled.has(turnId)) {
    call.lateFramesDropped += 1;
    document.body.dataset.lateFramesDropped = String(call.lateFramesDropped);
    return;
  }
  const n = (buf.byteLength - HEADER) >> 1;
  const samples = new Int16Array(n);
  for (let i = 0; i < n; i++) samples[i] = head.getInt16(HEADER + i * 2, true);
  const turn = turnFor(turnId);
  turn.receivedSamples += n;
  if (turn.ai) turn.ai.dataset.receivedMs = String(ms(turn.receivedSamples));
  audio.player?.port.postMessage({ type: 'push', turn: turnId, samples, last }, [samples.buffer]);
}

// ---------------------------------------------------------------------------------------
// Transcript
// ---------------------------------------------------------------------------------------

/** @param {number} id */
function turnFor(id) {
  let t = call.turns.get(id);
  if (!t) {
    t = { user: null, ai: null, receivedSamples: 0, playedSamples: 0, lastPositionAt: 0, done: false };
    call.turns.set(id, t);
  }
  return t;
}

/**
 * A transcript entry, placed in turn order (the candidate's words before the answer).
 * @param {number} turnId
 * @param {'user' | 'ai'} who
 * @param {string} name
 */
function bubble(turnId, who, name) {
  const li = document.createElement('li');
  li.className = `turn ${who}`;
  li.dataset.turn = String(turnId);
  const label = document.createElement('span');
  label.className = 'who';
  label.textContent = name;
  const text = document.createElement('p');
  text.className = 'text';
  const meta = document.createElement('span');
  meta.className = 'meta';
  li.append(label, text, meta);
  const rank = (/** @type {HTMLElement} */ el) =>
    Number(el.dataset.turn) * 2 + (el.classList.contains('ai') ? 1 : 0);
  const mine = turnId * 2 + (who === 'ai' ? 1 : 0);
  const after = [...ui.transcript.children].find((c) => rank(/** @type {HTMLElement} */ (c)) > mine);
  ui.transcript.insertBefore(li, after || null);
  return li;
}

function scrollDown() {
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
}

/**
 * @param {string} text
 * @param {'info' | 'warn' | 'error'} level
 */
function notice(text, level) {
  const p = document.createElement('p');
  p.className = `notice ${level}`;
  p.textContent = text;
  const close = document.createElement('button');
  close.className = 'dismiss';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';
  close.onclick = () => p.remove();
  p.append(close);
  ui.notices.append(p);
  while (ui.notices.children.length > 3) ui.notices.firstElementChild?.remove();
}

// ---------------------------------------------------------------------------------------
// Controls
// ---------------------------------------------------------------------------------------

ui.mute.addEventListener('click', () => {
  call.muted = !call.muted;
  applyMute();
});

ui.end.addEventListener('click', () => {
  call.userEnded = true;
  ui.end.disabled = true;
  send({ type: 'session.end' });
  // The server closes after session.ended; if it is gone already, finish anyway.
  if (!call.ws || call.ws.readyState !== WebSocket.OPEN) finish();
});

ui.typeForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.typed.value.trim();
  if (!text || call.phase !== 'live') return;
  if (audio.playing) audio.player?.port.postMessage({ type: 'clear' });
  send({ type: 'input.text', text });
  ui.typed.value = '';
});

function pttDown() {
  if (call.mode !== 'manual' || call.talking || call.phase !== 'live') return;
  call.talking = true;
  // Speaking over the interviewer interrupts it, as on a real call.
  if (audio.playing) send({ type: 'response.cancel' });
  send({ type: 'input.clear' });
  ui.ptt.setAttribute('aria-pressed', 'true');
  applyMute();
  setYouSpeaking(true);
}

function pttUp() {
  if (!call.talking) return;
  call.talking = false;
  send({ type: 'input.commit' });
  ui.ptt.setAttribute('aria-pressed', 'false');
  applyMute();
  setYouSpeaking(false);
}

/** Space is push-to-talk, except while typing. */
/** @param {KeyboardEvent} e */
function isPttKey(e) {
  const t = /** @type {HTMLElement | null} */ (e.target);
  const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT');
  return e.code === 'Space' && !typing && call.mode === 'manual' && call.phase === 'live';
}

window.addEventListener('keydown', (e) => {
  if (!isPttKey(e)) return;
  e.preventDefault();
  if (!e.repeat) pttDown();
});
window.addEventListener('keyup', (e) => {
  if (!isPttKey(e)) return;
  e.preventDefault();
  pttUp();
});
ui.ptt.addEventListener('pointerdown', pttDown);
ui.ptt.addEventListener('pointerup', pttUp);
ui.ptt.addEventListener('pointerleave', pttUp);

ui.again.addEventListener('click', () => {
  ui.after.hidden = true;
  ui.call.hidden = true;
  ui.setup.hidden = false;
  ui.start.disabled = false;
  setPhase('idle');
});

// ---------------------------------------------------------------------------------------
// After the call
// ---------------------------------------------------------------------------------------

function finish() {
  clearInterval(call.pingTimer);
  call.ws = null;
  if (call.phase !== 'ended') setPhase('ended');
  closeAudio();
  ui.you.dataset.speaking = 'false';
  ui.ai.dataset.speaking = 'false';
  ui.end.disabled = false;
  ui.after.hidden = false;
  ui.call.classList.add('over');
  const answers = ui.transcript.querySelectorAll('li.user').length;
  const length = call.ended ? ` in ${duration(call.ended.durationMs)}` : '';
  ui.summary.textContent = `${answers} ${answers === 1 ? 'answer' : 'answers'}${length}. Your transcript is below.`;
  ui.downloads.replaceChildren(transcriptLink());
  offerRecordings();
}

/** @param {number} msTotal */
function duration(msTotal) {
  const s = Math.round(msTotal / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

function transcriptLink() {
  const lines = [...ui.transcript.querySelectorAll('li')].map((li) => {
    const who = li.querySelector('.who')?.textContent;
    const text = li.querySelector('.text')?.textContent;
    return `${who}: ${text}`;
  });
  const blob = new Blob([lines.join('\n\n') + '\n'], { type: 'text/plain' });
  const li = document.createElement('li');
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'interview-transcript.txt';
  a.textContent = 'Transcript (text)';
  li.append(a);
  return li;
}

const FILE_LABELS = /** @type {Record<string, string>} */ ({
  'input.wav': 'Your voice (WAV)',
  'output.wav': "The interviewer's voice (WAV)",
  'events.jsonl': 'Call record (JSON lines)',
});

/** Links to what the server kept of each session of this call, if it kept anything. */
async function offerRecordings() {
  for (const id of call.sessions) {
    try {
      const res = await fetch(`/v1/calls/${id}`, {
        headers: ACCESS_TOKEN ? { Authorization: `Bearer ${ACCESS_TOKEN}` } : {},
      });
      if (!res.ok) continue;
      const body = await res.json();
      for (const f of body.files) {
        const li = document.createElement('li');
        const a = document.createElement('a');
        // A link cannot send a header: the token rides in the query, as for the call.
        a.href = ACCESS_TOKEN ? `${f.url}?access_token=${encodeURIComponent(ACCESS_TOKEN)}` : f.url;
        a.download = `${id.slice(0, 8)}-${f.name}`;
        a.textContent = FILE_LABELS[f.name] || f.name;
        a.className = 'recording';
        li.append(a);
        ui.downloads.append(li);
      }
    } catch {
      // The server may not keep calls (calls-dir disabled): the text transcript remains.
    }
  }
}

// For tests and for the curious: the live state, read-only by convention.
/** @type {any} */ (window).callgate = { call, audio };

loadPersonas();
setPhase('idle');
