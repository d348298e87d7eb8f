// @ts-check
// The call's WebSocket: opening it with `session.start`, keeping it alive with pings,
// and surviving drops. A dropped socket is retried with backoff and `session.resume`;
// input said meanwhile is kept (unacknowledged frames) and resent after the resume. A
// refused resume starts a new call from a clean state. Everything here is per call and
// `reset()` forgets all of it, timers included, so nothing of one call outlives it.

import { CLOSE_REFUSED, PROTOCOL_NAME, callUrl, decode, encode, inputFrame, parseOutputFrame } from './protocol.js';

/** @typedef {import('./protocol.js').ClientMessage} ClientMessage */
/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').SessionStart} SessionStart */
/** @typedef {import('./protocol.js').OutputFrame} OutputFrame */
/** @typedef {'idle' | 'connecting' | 'live' | 'reconnecting' | 'ended'} Phase */

/**
 * What the connection tells the page.
 * @typedef {{
 *   sessionStart: () => SessionStart,
 *   onEvent: (m: ServerMessage) => void,
 *   onAudio: (frame: OutputFrame) => void,
 *   onPhase: (phase: Phase, waitMs?: number) => void,
 *   onNewCall: () => void,
 *   onClosed: (lost: boolean) => void,
 * }} ConnectionHooks
 * `onNewCall`: the resume was refused and a new call is starting. `onClosed`: the call is
 * over, ended or (`lost`) after the last reconnect failed.
 */

// Reconnect waits: quick first, then backing off; after the last the call is over.
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
// Unacknowledged input kept for a resume: 10 s of 20 ms chunks.
const MAX_UNACKED = 500;
const PING_MS = 15000;

export class Connection {
  /**
   * @param {string} token the page's access token ('' when the server checks none)
   * @param {ConnectionHooks} hooks
   */
  constructor(token, hooks) {
    this.token = token;
    this.hooks = hooks;
    /** @type {WebSocket | null} */ this.ws = null;
    /** @type {Phase} */ this.phase = 'idle';
    this.sessionId = '';
    this.resumeToken = '';
    /** The seq of the next input frame. */
    this.seq = 0;
    /** Input frames not yet acknowledged (sent, or held while reconnecting), by seq, for
     * `session.resume`. */
    /** @type {Map<number, ArrayBuffer>} */ this.unacked = new Map();
    /** Reconnects tried since the socket was last live. */
    this.attempt = 0;
    /** Times this call was resumed on a new connection. */
    this.resumes = 0;
    /** The candidate pressed End: a close is the end, not a drop. */
    this.ending = false;
    /** @type {number | undefined} */ this.retryTimer = undefined;
    /** @type {number | undefined} */ this.pingTimer = undefined;
  }

  /** Starts a new call. */
  open() {
    this.reset();
    this.#connect(false);
  }

  /** Forgets the call: the socket (closed without a word), timers, ids, input, counts. */
  reset() {
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.retryTimer = undefined;
    this.pingTimer = undefined;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.close();
    }
    this.phase = 'idle';
    this.sessionId = '';
    this.resumeToken = '';
    this.seq = 0;
    this.unacked.clear();
    this.attempt = 0;
    this.resumes = 0;
    this.ending = false;
  }

  /** End call: asks the server to end it when connected; otherwise it is over now. */
  end() {
    this.ending = true;
    if (this.phase === 'live' && this.ws?.readyState === WebSocket.OPEN) {
      // The server closes after session.ended.
      this.send({ type: 'session.end' });
    } else {
      this.#closed(false);
    }
  }

  get live() {
    return this.phase === 'live' && this.ws?.readyState === WebSocket.OPEN;
  }

  /** @param {ClientMessage} msg */
  send(msg) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(encode(msg));
  }

  /**
   * One chunk of microphone input: sent when live, kept while reconnecting (and sent once
   * the call is resumed, so a dropped connection loses no audio), dropped otherwise.
   * @param {Int16Array} samples
   */
  sendInput(samples) {
    const live = this.live;
    const held = this.phase === 'reconnecting' && this.sessionId !== '';
    if (!live && !held) return;
    const frame = inputFrame(this.seq, samples);
    if (live) this.ws?.send(frame);
    this.unacked.set(this.seq, frame);
    if (this.unacked.size > MAX_UNACKED) {
      const oldest = this.unacked.keys().next().value;
      if (oldest !== undefined) this.unacked.delete(oldest);
    }
    this.seq += 1;
  }

  /** @param {boolean} resume try `session.resume` for the current session first */
  #connect(resume) {
    this.#setPhase(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(callUrl(location.href, this.token), PROTOCOL_NAME);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      if (resume && this.sessionId) {
        this.send({ type: 'session.resume', sessionId: this.sessionId, resumeToken: this.resumeToken });
      } else {
        this.send({ type: 'session.start', ...this.hooks.sessionStart() });
      }
    };
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') {
        const msg = decode(e.data);
        if (msg) this.#onMessage(msg);
      } else {
        const frame = parseOutputFrame(e.data);
        if (frame) this.hooks.onAudio(frame);
      }
    };
    ws.onclose = (e) => {
      if (this.ws === ws) this.#onClose(opened && resume && e.code === CLOSE_REFUSED);
    };
  }

  /** @param {boolean} refused the server refused `session.resume` */
  #onClose(refused) {
    this.ws = null;
    clearInterval(this.pingTimer);
    if (this.phase === 'ended' || this.ending) {
      this.#closed(false);
    } else if (refused) {
      // Not a network problem: the call is gone (grace over, server restarted). A new one
      // starts at once, sharing nothing with the old one.
      this.reset();
      this.hooks.onNewCall();
      this.#connect(false);
    } else if (this.attempt >= BACKOFF_MS.length) {
      this.#closed(true);
    } else {
      const wait = BACKOFF_MS[this.attempt];
      this.attempt += 1;
      this.#setPhase('reconnecting', wait);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.#connect(true);
      }, wait);
    }
  }

  /** @param {boolean} lost */
  #closed(lost) {
    this.reset();
    this.#setPhase('ended');
    this.hooks.onClosed(lost);
  }

  /** @param {ServerMessage} m */
  #onMessage(m) {
    switch (m.type) {
      case 'session.started':
        this.sessionId = m.sessionId;
        this.resumeToken = m.resumeToken;
        this.seq = 0;
        this.unacked.clear();
        this.#live();
        break;
      case 'session.resumed':
        // Resend, in order, what the server never got (including what was said while the
        // connection was down); new frames go on from the seq after the last one kept.
        for (const [seq, frame] of this.unacked) {
          if (seq >= m.nextSeq) this.ws?.send(frame);
        }
        this.resumes += 1;
        this.#live();
        break;
      case 'audio.ack':
        for (const seq of this.unacked.keys()) {
          if (seq > m.seq) break;
          this.unacked.delete(seq);
        }
        break;
      case 'session.ended':
        this.#setPhase('ended');
        break;
      default:
        break;
    }
    this.hooks.onEvent(m);
  }

  #live() {
    this.attempt = 0;
    this.#setPhase('live');
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.send({ type: 'ping', t: Date.now() }), PING_MS);
  }

  /**
   * @param {Phase} phase
   * @param {number} [waitMs]
   */
  #setPhase(phase, waitMs) {
    this.phase = phase;
    this.hooks.onPhase(phase, waitMs);
  }
}
