// @ts-check
// What the page shows of the conversation: one entry per spoken part (the candidate's
// words, the interviewer's answer as it streams, what of it was heard), the notices, and
// per turn how much of the answer's audio arrived and played. Turn ids are a call's own:
// when a refused resume starts a new call, the old call's entries stay on screen, closed,
// and the new call's turns start from an empty table.

import { samplesToMs } from './protocol.js';

/** @typedef {import('./protocol.js').ResponseDone} ResponseDone */
/** @typedef {import('../../docs/callgate').Latency} Latency */

/**
 * One exchange of the current call: the candidate's words and the interviewer's answer.
 * @typedef {{
 *   user: HTMLElement | null,
 *   ai: HTMLElement | null,
 *   receivedSamples: number,
 *   playedSamples: number,
 *   lastPositionAt: number,
 *   done: boolean,
 *   cancelled: boolean,
 * }} Turn
 */

export class TranscriptView {
  /**
   * @param {HTMLElement} list the transcript (`<ol>`)
   * @param {HTMLElement} notices
   * @param {() => string} interviewer the interviewer's name, for its entries
   */
  constructor(list, notices, interviewer) {
    this.list = list;
    this.notices = notices;
    this.interviewer = interviewer;
    /** Calls of this visit's conversation: more than one after a refused resume. */
    this.call = 0;
    /** @type {Map<number, Turn>} */ this.turns = new Map();
    /** Frames of cancelled responses that arrived late, and were dropped, never played. */
    this.lateFramesDropped = 0;
  }

  /** An empty screen for a call the candidate started. */
  clear() {
    this.list.replaceChildren();
    this.notices.replaceChildren();
    this.call = 0;
    this.#newTurns();
  }

  /** A new call in the same conversation: what was said stays, closed off above a divider. */
  startOver() {
    this.cutOff();
    for (const li of this.list.children) li.classList.add('earlier');
    const divider = document.createElement('li');
    divider.className = 'divider';
    divider.setAttribute('role', 'separator');
    divider.textContent = 'New call';
    this.list.append(divider);
    this.#newTurns();
  }

  /** Answers still streaming when the call went away: they will get no `response.done`. */
  cutOff() {
    for (const turn of this.turns.values()) {
      if (turn.ai && !turn.done) {
        turn.done = true;
        turn.ai.dataset.status = 'cancelled';
        this.#part(turn.ai, '.meta').textContent = 'Cut off';
      }
    }
  }

  #newTurns() {
    this.call += 1;
    this.turns = new Map();
    this.lateFramesDropped = 0;
    document.body.dataset.lateFramesDropped = '0';
  }

  /** @param {number} id */
  turn(id) {
    let t = this.turns.get(id);
    if (!t) {
      t = { user: null, ai: null, receivedSamples: 0, playedSamples: 0, lastPositionAt: 0, done: false, cancelled: false };
      this.turns.set(id, t);
    }
    return t;
  }

  /**
   * @param {number} turnId
   * @param {string} text
   * @param {boolean} isFinal
   */
  transcript(turnId, text, isFinal) {
    const turn = this.turn(turnId);
    const el = turn.user || (turn.user = this.#entry(turnId, 'user', 'You'));
    const p = this.#part(el, '.text');
    p.textContent = text;
    p.className = isFinal ? 'text final' : 'text partial';
  }

  /**
   * @param {number} turnId
   * @param {string} status
   */
  responseStatus(turnId, status) {
    this.#ai(turnId).dataset.status = status;
  }

  /**
   * @param {number} turnId
   * @param {string} delta
   */
  responseDelta(turnId, delta) {
    const el = this.#ai(turnId);
    el.dataset.status = 'speaking';
    this.#part(el, '.text').textContent += delta;
  }

  /**
   * The answer as it ended; a cancelled one shows what was heard, the rest struck through.
   * @param {ResponseDone} m
   */
  responseDone(m) {
    const turn = this.turn(m.turnId);
    const el = this.#ai(m.turnId);
    turn.done = true;
    turn.cancelled = m.status === 'cancelled';
    el.dataset.status = m.status;
    const text = this.#part(el, '.text');
    if (turn.cancelled) {
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
    const meta = this.#part(el, '.meta');
    meta.textContent = describeDone(m.status, m.latency);
    meta.title = breakdown(m.latency);
  }

  /**
   * Audio of `turnId` arrived; a cancelled turn's is dropped (counted), so `false`.
   * @param {number} turnId
   * @param {number} samples
   */
  audioArrived(turnId, samples) {
    const turn = this.turn(turnId);
    if (turn.cancelled) {
      this.lateFramesDropped += 1;
      document.body.dataset.lateFramesDropped = String(this.lateFramesDropped);
      return false;
    }
    turn.receivedSamples += samples;
    if (turn.ai) turn.ai.dataset.receivedMs = String(samplesToMs(turn.receivedSamples));
    return true;
  }

  /**
   * The player's count for `turnId`; `dropped` when it was emptied.
   * @param {number} turnId
   * @param {number} played
   * @param {number} [dropped]
   */
  audioPlayed(turnId, played, dropped) {
    const turn = this.turns.get(turnId);
    if (!turn) return;
    turn.playedSamples = played;
    if (!turn.ai) return;
    turn.ai.dataset.playedMs = String(samplesToMs(played));
    if (dropped !== undefined) turn.ai.dataset.clearedMs = String(samplesToMs(dropped));
  }

  /**
   * The text of the interviewer's entry for `turnId` so far.
   * @param {number} turnId
   */
  aiText(turnId) {
    return this.turns.get(turnId)?.ai?.querySelector('.text')?.textContent ?? '';
  }

  scrollDown() {
    this.list.scrollTop = this.list.scrollHeight;
  }

  /**
   * @param {string} text
   * @param {'info' | 'warn' | 'error'} level
   */
  notice(text, level) {
    const p = document.createElement('p');
    p.className = `notice ${level}`;
    p.textContent = text;
    const close = document.createElement('button');
    close.className = 'dismiss';
    close.setAttribute('aria-label', 'Dismiss');
    close.textContent = '×';
    close.onclick = () => p.remove();
    p.append(close);
    this.notices.append(p);
    while (this.notices.children.length > 3) this.notices.firstElementChild?.remove();
  }

  /** Answers the candidate gave, over every call of the conversation. */
  answers() {
    return this.list.querySelectorAll('li.user').length;
  }

  /** The whole conversation as plain text, for the download. */
  asText() {
    const lines = [...this.list.querySelectorAll('li')].map((li) => {
      if (li.classList.contains('divider')) return `--- ${li.textContent} ---`;
      return `${li.querySelector('.who')?.textContent}: ${li.querySelector('.text')?.textContent}`;
    });
    return lines.join('\n\n') + '\n';
  }

  /** @param {number} turnId */
  #ai(turnId) {
    const turn = this.turn(turnId);
    return turn.ai || (turn.ai = this.#entry(turnId, 'ai', this.interviewer()));
  }

  /**
   * @param {HTMLElement} el
   * @param {string} selector
   */
  #part(el, selector) {
    return /** @type {HTMLElement} */ (el.querySelector(selector));
  }

  /**
   * An entry of the current call, placed in turn order (the candidate's words before the
   * answer), after everything of earlier calls.
   * @param {number} turnId
   * @param {'user' | 'ai'} who
   * @param {string} name
   */
  #entry(turnId, who, name) {
    const li = document.createElement('li');
    li.className = `turn ${who}`;
    li.dataset.turn = String(turnId);
    li.dataset.call = String(this.call);
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
    const current = [...this.list.children].filter(
      (c) => c instanceof HTMLElement && c.dataset.call === String(this.call),
    );
    const after = current.find((c) => rank(/** @type {HTMLElement} */ (c)) > mine);
    this.list.insertBefore(li, after || null);
    return li;
  }
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
  /** @type {[string, number | null][]} */
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
