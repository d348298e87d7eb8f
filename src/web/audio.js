// @ts-check
// The page's sound: the microphone (getUserMedia with the browser's echo cancellation,
// framed by the `capture` worklet at the device's rate into 20 ms chunks; the server
// resamples) and the interviewer's voice (the `player` worklet in an AudioContext at the
// output rate the page asks for, emptied at once when a response is cancelled).
// worklets.js holds both processors.

import { OUTPUT_RATE } from './protocol.js';

const FRAME_MS = 20;

/**
 * What the player worklet reports: how much of `turn` it has played (`pos` as it plays,
 * `drained` at its end, `cleared` when emptied, with the samples it dropped).
 * @typedef {{type: 'pos' | 'drained' | 'cleared', turn: number, played: number, dropped?: number}} PlayerReport
 */

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
    /** The interviewer's voice is coming out of the speakers. */
    this.playing = false;
  }

  /** Opens the microphone and both worklets; throws what getUserMedia throws. */
  async open() {
    if (this.stream) return;
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
    this.playing = false;
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
    this.playing = false;
  }

  /** @param {PlayerReport} report */
  #onPlayer(report) {
    this.playing = report.type === 'pos';
    this.hooks.onPlayer(report);
  }
}
