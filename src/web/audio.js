// @ts-check
// The page's sound: the microphone (getUserMedia with the browser's echo cancellation,
// framed by the `capture` worklet at the device's rate into 20 ms chunks; the server
// resamples) and the interviewer's voice (the `player` worklet in an AudioContext at the
// output rate the page asks for, held with its buffer kept while the candidate speaks over
// it, emptied at once when a response is cancelled). worklets.js holds both processors.

import { OUTPUT_RATE } from './protocol.js';

const FRAME_MS = 20;

/**
 * What the player worklet reports: how much of `turn` it has played (`pos` as it plays,
 * `drained` at its end, `cleared` when emptied, with the samples it dropped, `paused` and
 * `resumed` with the samples it holds).
 * @typedef {{
 *   type: 'pos' | 'drained' | 'cleared' | 'paused' | 'resumed',
 *   turn: number,
 *   played: number,
 *   dropped?: number,
 *   queued?: number,
 * }} PlayerReport
 */

/**
 * The player as its last report left it: `paused` holds the interviewer's audio, unheard.
 * @typedef {'idle' | 'playing' | 'paused'} PlayerState
 */

/** @type {Record<PlayerReport['type'], PlayerState>} */
const STATE_AFTER = { pos: 'playing', resumed: 'playing', paused: 'paused', drained: 'idle', cleared: 'idle' };

// The player's reports other than `pos` kept for a look afterwards (window.callgate).
const LOG_REPORTS = 100;

/**
 * @typedef {{
 *   onCaptured: (samples: Int16Array, level: number) => void,
 *   onPlayer: (report: PlayerReport) => void,
 * }} AudioHooks
 */

export class CallAudio {
  /** @param {AudioHooks} hooks */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {MediaStream | null} */ this.stream = null;
    /** @type {AudioContext | null} */ this.captureCtx = null;
    /** @type {AudioContext | null} */ this.playCtx = null;
    /** @type {AudioWorkletNode | null} */ this.player = null;
    /** @type {PlayerState} */ this.state = 'idle';
    /** The player's reports but `pos`, oldest first (the last {@link LOG_REPORTS}), for
     * tests and the curious: what it paused, resumed, cleared and drained, and where. */
    /** @type {PlayerReport[]} */ this.log = [];
  }

  /** The interviewer's voice is coming out of the speakers. */
  get playing() {
    return this.state === 'playing';
  }

  /** Opens the microphone and both worklets; throws what getUserMedia throws. */
  async open() {
    if (this.stream) return;
    this.log = [];
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    // Capture at the device's own rate: resampling is the server's job.
    const cap = new AudioContext();
    await cap.audioWorklet.addModule('/worklets.js');
    const source = cap.createMediaStreamSource(this.stream);
    const capture = new AudioWorkletNode(cap, 'capture', {
      processorOptions: { frameMs: FRAME_MS },
      numberOfOutputs: 1,
    });
    // A silent path to the destination keeps the graph (and so the worklet) running.
    const sink = cap.createGain();
    sink.gain.value = 0;
    source.connect(capture).connect(sink).connect(cap.destination);
    capture.port.onmessage = (e) => this.hooks.onCaptured(e.data.samples, e.data.level);

    const play = new AudioContext({ sampleRate: OUTPUT_RATE });
    await play.audioWorklet.addModule('/worklets.js');
    const player = new AudioWorkletNode(play, 'player', { outputChannelCount: [1] });
    player.connect(play.destination);
    player.port.onmessage = (e) => this.#onPlayer(e.data);
    await Promise.all([cap.resume(), play.resume()]);
    this.captureCtx = cap;
    this.playCtx = play;
    this.player = player;
  }

  close() {
    this.stream?.getTracks().forEach((t) => t.stop());
    this.captureCtx?.close();
    this.playCtx?.close();
    this.stream = null;
    this.captureCtx = null;
    this.playCtx = null;
    this.player = null;
    this.state = 'idle';
  }

  /** The microphone's rate, which the page declares in `session.start`. */
  get inputRate() {
    return this.captureCtx ? this.captureCtx.sampleRate : 48000;
  }

  /**
   * A closed mic gives silence (the track is disabled), which keeps the server's timeline
   * continuous.
   * @param {boolean} open
   */
  setMicOpen(open) {
    this.stream?.getAudioTracks().forEach((t) => {
      t.enabled = open;
    });
  }

  /**
   * Queues a chunk of the interviewer's voice.
   * @param {number} turnId
   * @param {Int16Array} samples
   * @param {boolean} last
   */
  play(turnId, samples, last) {
    this.player?.port.postMessage({ type: 'push', turn: turnId, samples, last }, [samples.buffer]);
  }

  /** Drops everything queued: nothing more of it may be heard. */
  clear() {
    this.player?.port.postMessage({ type: 'clear' });
    this.state = 'idle';
  }

  /**
   * Stops playing `turnId` where it is, keeping what is queued (and queueing what comes).
   * @param {number} turnId
   */
  pause(turnId) {
    this.player?.port.postMessage({ type: 'pause', turn: turnId });
  }

  /** Plays on from the sample where {@link pause} stopped. */
  resume() {
    this.player?.port.postMessage({ type: 'resume' });
  }

  /** @param {PlayerReport} report */
  #onPlayer(report) {
    this.state = STATE_AFTER[report.type];
    if (report.type !== 'pos') {
      this.log.push(report);
      if (this.log.length > LOG_REPORTS) this.log.shift();
    }
    this.hooks.onPlayer(report);
  }
}
