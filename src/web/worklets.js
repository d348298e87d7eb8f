// @ts-nocheck — AudioWorkletGlobalScope types are not in TypeScript's DOM library.
// The page's two audio processors, loaded with audioWorklet.addModule('/worklets.js').
//
// capture: frames the microphone's PCM, at the device's own rate (the server resamples),
//   into fixed-length Int16 chunks (20 ms by default) and posts each to the page with its
//   RMS level, so the page never touches audio on the main thread's timing.
// player: a jitter buffer for the interviewer's voice. The page pushes Int16 chunks
//   tagged with their turn; the processor plays them in order, counts what it actually
//   played (for playback.position), and drops everything at once on `clear` (barge-in,
//   cancelled response), so no stale audio follows an interruption. `pause` (speech over
//   the interviewer, `response.paused`) stops it where it is and keeps the queue, still
//   taking pushes; `resume` (a backchannel, `response.resumed`) plays on from that sample.

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const frameMs = (options.processorOptions && options.processorOptions.frameMs) || 20;
    // `sampleRate` is the AudioContext's rate, a global in the worklet scope.
    this.frame = new Int16Array(Math.round((sampleRate * frameMs) / 1000));
    this.fill = 0;
    this.sumSquares = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      for (let i = 0; i < channel.length; i++) {
        const x = Math.max(-1, Math.min(1, channel[i]));
        this.sumSquares += x * x;
        this.frame[this.fill++] = x < 0 ? x * 0x8000 : x * 0x7fff;
        if (this.fill === this.frame.length) {
          const n = this.frame.length;
          const level = Math.sqrt(this.sumSquares / n);
          // Transferring detaches the buffer (its length reads 0 afterwards): keep `n`.
          this.port.postMessage({ samples: this.frame, level }, [this.frame.buffer]);
          this.frame = new Int16Array(n);
          this.fill = 0;
          this.sumSquares = 0;
        }
      }
    }
    return true;
  }
}

// Audio buffered before a response starts playing: enough to ride out network jitter,
// short enough that nobody notices the wait.
const PREBUFFER_MS = 80;
// How often the processor tells the page how much it has played.
const REPORT_MS = 100;

class PlayerProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    /** @type {{turn: number, samples: Float32Array}[]} */
    this.queue = [];
    this.offset = 0; // read position in queue[0]
    this.queued = 0; // samples waiting
    this.turn = -1; // turn being played
    this.played = 0; // samples of `turn` played
    this.lastSeen = false; // `turn`'s last chunk has arrived
    this.started = false; // prebuffer filled for `turn`
    this.paused = false; // held where it is, queue kept
    this.sinceReport = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(msg) {
    if (msg.type === 'push') {
      if (msg.turn !== this.turn) this.begin(msg.turn);
      const pcm = msg.samples;
      const f = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) f[i] = pcm[i] / 0x8000;
      if (f.length > 0) {
        this.queue.push({ turn: msg.turn, samples: f });
        this.queued += f.length;
      }
      if (msg.last) this.lastSeen = true;
      if (this.lastSeen && this.queued === 0 && !this.paused) this.finish();
    } else if (msg.type === 'pause' || msg.type === 'resume') {
      // A pause for a turn none of whose audio has come yet holds that turn's audio.
      if (msg.turn !== this.turn && msg.type === 'pause') this.begin(msg.turn);
      this.paused = msg.type === 'pause';
      const type = this.paused ? 'paused' : 'resumed';
      this.port.postMessage({ type, turn: this.turn, played: this.played, queued: this.queued });
      if (!this.paused && this.lastSeen && this.queued === 0) this.finish();
    } else if (msg.type === 'clear') {
      const dropped = this.queued;
      this.queue = [];
      this.offset = 0;
      this.queued = 0;
      this.port.postMessage({ type: 'cleared', turn: this.turn, played: this.played, dropped });
      this.started = false;
      this.lastSeen = false;
      this.paused = false;
      this.turn = -1;
    }
  }

  /** `turn`'s audio starts: counted from 0; a pause held the turn before, so it is over. */
  begin(turn) {
    this.turn = turn;
    this.played = 0;
    this.lastSeen = false;
    this.started = false;
    this.paused = false;
  }

  finish() {
    this.port.postMessage({ type: 'drained', turn: this.turn, played: this.played });
    this.started = false;
    this.lastSeen = false;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    out.fill(0);
    // Paused: silence, and nothing consumed or counted, so `played` stays where it stopped.
    if (this.paused) return true;
    if (!this.started) {
      const enough = this.queued >= (sampleRate * PREBUFFER_MS) / 1000;
      if (!(enough || (this.lastSeen && this.queued > 0))) return true;
      this.started = true;
    }
    let i = 0;
    while (i < out.length && this.queue.length > 0) {
      const head = this.queue[0].samples;
      const n = Math.min(out.length - i, head.length - this.offset);
      out.set(head.subarray(this.offset, this.offset + n), i);
      i += n;
      this.offset += n;
      this.queued -= n;
      this.played += n;
      if (this.offset === head.length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
    if (i > 0) {
      this.sinceReport += i;
      if (this.sinceReport >= (sampleRate * REPORT_MS) / 1000) {
        this.sinceReport = 0;
        this.port.postMessage({ type: 'pos', turn: this.turn, played: this.played });
      }
    }
    if (this.queued === 0 && this.lastSeen) this.finish();
    return true;
  }
}

registerProcessor('capture', CaptureProcessor);
registerProcessor('player', PlayerProcessor);
