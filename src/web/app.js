// @ts-check
// The mock-call page, one call at a time over callgate.v1 (docs/protocol.md): the setup
// form, the call's controls, and what happens after. It wires the modules together:
// protocol.js (the wire format), connection.js (the socket, resume and backoff),
// audio.js (microphone and playback), transcript.js (the conversation on screen) and
// after.js (the summary and downloads).
// What the candidate chooses in the setup form becomes the call's `session.start`.

import { CallAudio } from './audio.js';
import { Connection } from './connection.js';
import { offerRecordings, showHistory, showSummary, transcriptLink } from './after.js';
import { asPatience, cancelledDone, samplesToMs, sessionStart } from './protocol.js';
import { TranscriptView } from './transcript.js';

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').TurnMode} TurnMode */
/** @typedef {import('./protocol.js').OutputFrame} OutputFrame */
/** @typedef {import('./connection.js').Phase} Phase */
/** @typedef {import('./audio.js').PlayerReport} PlayerReport */
/** @typedef {import('./audio.js').PlayerState} PlayerState */
/** @typedef {import('../../docs/callgate').ErrorEvent} WireError */
/** @typedef {import('../../docs/callgate').TurnRecord} TurnRecord */
/** @typedef {{id: string, name: string, description: string}} Persona */

const POSITION_EVERY_MS = 250;
// When the server checks tokens, whoever links to this page puts one in its address
// (`/?access_token=...`, e.g. from `callgate token`): it opens the call and the recordings.
const ACCESS_TOKEN = new URLSearchParams(location.search).get('access_token') ?? '';
// Where the page remembers the candidate's patience choice between visits.
const PATIENCE_KEY = 'callgate.patience';

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
  patience: /** @type {HTMLSelectElement} */ ($('patience')),
  start: /** @type {HTMLButtonElement} */ ($('start')),
  call: $('call'),
  you: $('you'),
  youStatus: $('you-status'),
  level: /** @type {HTMLMeterElement} */ ($('level')),
  ai: $('ai'),
  aiName: $('ai-name'),
  aiStatus: $('ai-status'),
  aiVoice: $('ai-voice'),
  mute: /** @type {HTMLButtonElement} */ ($('mute')),
  ptt: /** @type {HTMLButtonElement} */ ($('ptt')),
  end: /** @type {HTMLButtonElement} */ ($('end')),
  typeForm: /** @type {HTMLFormElement} */ ($('type-form')),
  typed: /** @type {HTMLInputElement} */ ($('typed')),
  after: $('after'),
  summary: $('summary'),
  downloads: $('downloads'),
  history: $('history'),
  again: /** @type {HTMLButtonElement} */ ($('again')),
};

/** The candidate's side of the call: how they talk, and what this call was. */
const call = {
  /** @type {TurnMode} */ mode: 'smart',
  muted: false,
  talking: false, // push-to-talk held
  /** Sessions of this call (more than one after a refused resume): each one's recordings
   * are offered afterwards. */
  /** @type {string[]} */ sessions: [],
  /** @type {number | null} */ durationMs: null,
};

const view = new TranscriptView($('transcript'), $('notices'), () => ui.aiName.textContent || 'Interviewer');
const audio = new CallAudio({ onCaptured, onPlayer });
const connection = new Connection(ACCESS_TOKEN, {
  sessionStart: () =>
    sessionStart({
      persona: ui.persona.value,
      role: ui.role.value.trim(),
      inputRate: audio.inputRate,
      mode: call.mode,
      patience: asPatience(ui.patience.value),
    }),
  onEvent,
  onAudio,
  onPhase: showPhase,
  onNewCall: () => {
    audio.clear();
    showPlayer('idle');
    setYouSpeaking(false);
    view.startOver();
    view.notice('The connection dropped and the call could not be resumed, so a new call started.', 'info');
  },
  onClosed: (lost) => {
    if (lost) view.notice('The connection to the server was lost. Please start the call again.', 'error');
    finish();
  },
});

// ---------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------

async function loadPersonas() {
  /** @type {Persona[]} */
  let personas = [];
  let preferred = '';
  try {
    const body = await (await fetch('/v1/personas')).json();
    personas = body.personas || [];
    preferred = body.default || '';
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
  if (preferred) ui.persona.value = preferred;
  const describe = () => {
    ui.personaDesc.textContent = personas.find((x) => x.id === ui.persona.value)?.description ?? '';
  };
  ui.persona.addEventListener('change', describe);
  describe();
}

/** The chosen way to finish an answer; patience only matters when a pause ends it. */
function chosenMode() {
  const mode = /** @type {HTMLInputElement | null} */ (ui.form.querySelector('input[name=mode]:checked'));
  return mode && mode.value === 'manual' ? 'manual' : 'smart';
}

/** The patience remembered from the last visit (storage may be blocked: then normal). */
function loadPatience() {
  try {
    ui.patience.value = asPatience(localStorage.getItem(PATIENCE_KEY));
  } catch {
    ui.patience.value = asPatience(null);
  }
  ui.patience.addEventListener('change', () => {
    try {
      localStorage.setItem(PATIENCE_KEY, asPatience(ui.patience.value));
    } catch {
      // Not remembered, still used for this call.
    }
  });
  const onlyWhenPausing = () => {
    ui.patience.disabled = chosenMode() === 'manual';
  };
  ui.form.addEventListener('change', onlyWhenPausing);
  onlyWhenPausing();
}

ui.form.addEventListener('submit', async (e) => {
  e.preventDefault();
  call.mode = chosenMode();
  ui.start.disabled = true;
  try {
    await audio.open();
  } catch (err) {
    ui.start.disabled = false;
    view.notice(micProblem(err), 'error');
    return;
  }
  applyMute();
  call.sessions = [];
  call.durationMs = null;
  view.clear();
  ui.setup.hidden = true;
  ui.after.hidden = true;
  ui.call.hidden = false;
  // The last call's end hid the controls; this call has them again.
  ui.call.classList.remove('over');
  ui.ptt.hidden = call.mode !== 'manual';
  connection.open();
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

/** The mic reaches the server unless muted; with push-to-talk only while the key is held. */
function micOpen() {
  return !call.muted && (call.mode !== 'manual' || call.talking);
}

function applyMute() {
  audio.setMicOpen(micOpen());
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
 * The interviewer as the player has it: speaking, paused while the candidate speaks over
 * it (its answer kept, to go on or be dropped), or listening.
 * @param {PlayerState} state
 */
function showPlayer(state) {
  ui.ai.dataset.speaking = String(state === 'playing');
  ui.ai.dataset.player = state;
  ui.aiStatus.textContent = { playing: 'Speaking', paused: 'Paused, listening…', idle: 'Listening' }[state];
}

/**
 * @param {Int16Array} samples
 * @param {number} level
 */
function onCaptured(samples, level) {
  ui.level.value = micOpen() ? Math.min(1, level * 4) : 0;
  // Push-to-talk sends only the held stretch; server VAD hears the whole call (a muted
  // track gives silence, which keeps the server's timeline continuous).
  if (call.mode === 'manual' && !call.talking) return;
  connection.sendInput(samples);
}

/** @param {PlayerReport} report */
function onPlayer(report) {
  view.audioPlayed(report.turn, report.played, report.type === 'cleared' ? report.dropped : undefined);
  showPlayer(audio.state);
  const turn = view.turns.get(report.turn);
  if (!turn || report.type === 'cleared') return;
  // Where a pause stopped is what was heard, if the answer goes no further.
  const now = report.type === 'drained' || report.type === 'paused';
  if (now || performance.now() - turn.lastPositionAt >= POSITION_EVERY_MS) {
    turn.lastPositionAt = performance.now();
    connection.send({ type: 'playback.position', turnId: report.turn, playedMs: samplesToMs(turn.playedSamples) });
  }
}

/** @param {OutputFrame} frame */
function onAudio(frame) {
  if (view.audioArrived(frame.turnId, frame.samples.length)) {
    audio.play(frame.turnId, frame.samples, frame.last);
  }
}

// ---------------------------------------------------------------------------------------
// Server events
// ---------------------------------------------------------------------------------------

/**
 * @param {Phase} phase
 * @param {number} [waitMs]
 */
function showPhase(phase, waitMs) {
  ui.conn.dataset.state = phase;
  ui.conn.textContent = {
    idle: 'Not connected',
    connecting: 'Connecting…',
    live: 'In call',
    reconnecting: waitMs ? `Reconnecting in ${(waitMs / 1000).toFixed(1)} s…` : 'Reconnecting…',
    ended: 'Call ended',
  }[phase];
}

/** @param {ServerMessage} m */
function onEvent(m) {
  switch (m.type) {
    case 'session.started':
      call.sessions.push(m.sessionId);
      document.body.dataset.sessionId = m.sessionId;
      ui.aiVoice.textContent = `Voice: ${m.voice}`;
      break;
    case 'session.resumed':
      document.body.dataset.resumes = String(connection.resumes);
      settleDroppedResponses(m.turns);
      break;
    case 'input.speech_started':
      setYouSpeaking(true);
      break;
    case 'input.speech_stopped':
      setYouSpeaking(false);
      break;
    case 'transcript':
      view.transcript(m.turnId, m.text, m.isFinal);
      if (m.isFinal) setYouSpeaking(false);
      break;
    case 'response.started':
      view.responseStatus(m.turnId, m.status);
      ui.aiStatus.textContent = { thinking: 'Thinking', queued: 'Waiting for a free moment', retrying: 'Trying again' }[m.status];
      break;
    case 'response.paused':
      // Speech over the interviewer: hold its answer until the server says whether it goes on.
      if (!view.turns.get(m.turnId)?.cancelled) audio.pause(m.turnId);
      break;
    case 'response.resumed':
      // A backchannel ("mm-hmm"): play on from the sample where the pause stopped.
      if (!view.turns.get(m.turnId)?.cancelled) audio.resume();
      break;
    case 'response.text.delta':
      view.responseDelta(m.turnId, m.delta);
      break;
    case 'response.done':
      onResponseDone(m);
      break;
    case 'error':
      onError(m);
      break;
    case 'session.ended':
      call.durationMs = m.durationMs;
      break;
    default:
      break;
  }
  view.scrollDown();
}

/**
 * The server cancels the response it was speaking when the connection drops (nobody heard
 * the rest), and that `response.done` went to the dead socket: settle those turns here,
 * with what the server's record says was heard.
 * @param {TurnRecord[]} records
 */
function settleDroppedResponses(records) {
  for (const [turnId, turn] of view.turns) {
    if (!turn.ai || turn.done) continue;
    const text = view.aiText(turnId);
    const heard = records.find((r) => r.turnId === turnId)?.aiText ?? '';
    onResponseDone(cancelledDone(turnId, heard.length > text.length ? heard : text, heard));
  }
}

/** @param {import('./protocol.js').ResponseDone} m */
function onResponseDone(m) {
  view.responseDone(m);
  if (m.status === 'cancelled') {
    // Barge-in or cancel: nothing more of this turn may be heard.
    audio.clear();
    showPlayer('idle');
  } else if (!audio.playing) {
    ui.aiStatus.textContent = 'Listening';
  }
}

/** @param {WireError} e */
function onError(e) {
  // A refused resume is handled by starting a new call; the candidate hears about that.
  if (e.code === 'SESSION_NOT_FOUND') return;
  view.notice(e.userMessage, e.recoverable ? 'warn' : 'error');
}

// ---------------------------------------------------------------------------------------
// Controls
// ---------------------------------------------------------------------------------------

ui.mute.addEventListener('click', () => {
  call.muted = !call.muted;
  applyMute();
});

ui.end.addEventListener('click', () => {
  ui.end.disabled = true;
  connection.end();
});

ui.typeForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.typed.value.trim();
  if (!text || !connection.live) return;
  if (audio.state !== 'idle') audio.clear();
  connection.send({ type: 'input.text', text });
  ui.typed.value = '';
});

function pttDown() {
  if (call.mode !== 'manual' || call.talking || !connection.live) return;
  call.talking = true;
  // Speaking over the interviewer interrupts it, as on a real call.
  if (audio.state !== 'idle') connection.send({ type: 'response.cancel' });
  connection.send({ type: 'input.clear' });
  ui.ptt.setAttribute('aria-pressed', 'true');
  applyMute();
  setYouSpeaking(true);
}

function pttUp() {
  if (!call.talking) return;
  call.talking = false;
  connection.send({ type: 'input.commit' });
  ui.ptt.setAttribute('aria-pressed', 'false');
  applyMute();
  setYouSpeaking(false);
}

/**
 * Space is push-to-talk, except while typing.
 * @param {KeyboardEvent} e
 */
function isPttKey(e) {
  const t = /** @type {HTMLElement | null} */ (e.target);
  const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT');
  return e.code === 'Space' && !typing && call.mode === 'manual' && connection.live;
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
  showPhase('idle');
});

// ---------------------------------------------------------------------------------------
// After the call
// ---------------------------------------------------------------------------------------

function finish() {
  audio.close();
  view.cutOff();
  call.talking = false;
  ui.you.dataset.speaking = 'false';
  ui.ai.dataset.speaking = 'false';
  ui.end.disabled = false;
  ui.after.hidden = false;
  ui.call.classList.add('over');
  showSummary(ui.summary, view.answers(), call.durationMs);
  ui.downloads.replaceChildren(transcriptLink(view.asText()));
  offerRecordings(ui.downloads, call.sessions, ACCESS_TOKEN);
  // The call's report is written just after it ends: look a moment later.
  setTimeout(() => showHistory(ui.history, ACCESS_TOKEN), HISTORY_DELAY_MS);
}

/** How long after the end of a call its report is looked for in the history, ms. */
const HISTORY_DELAY_MS = 1500;

// For tests and for the curious: the live state, read-only by convention.
/** @type {any} */ (window).callgate = { call, connection, audio, view };

loadPersonas();
loadPatience();
showPhase('idle');
