"""Voice-to-voice latency of spoken turns through the official OpenAI Python SDK.

Run by `scripts/realtime-sdk latency WS_BASE_URL [--silence-ms N] [--chunk-ms N] [--manual]
FILE.wav...` (mono 16-bit WAVs; a file at another rate than 24 kHz, e.g. 16 kHz, is resampled to
24 kHz by this client first, as any client of the GA protocol must): one Realtime session per
file, the file streamed as a microphone delivers it (chunk i leaves when its last sample would have been spoken). With
server VAD (the default) silence follows until the turn's response.done; with --manual
(turn_detection null) the client commits and sends response.create right after the chunk
holding the end of speech, as a push-to-talk release would, and stops streaming.

Voice-to-voice is measured as `callgate replay`/`callgate bench` measure it for callgate.v1,
so the two figures compare on the same files: from the send of the chunk holding the true
end of speech (the last 10 ms frame above max(-45 dBFS, noise floor + 15 dB), the rule of
src/audio/level.rs) to the arrival of the response's first audio delta.
"""

import argparse
import array
import asyncio
import base64
import math
import statistics
import sys
import time
import wave

from openai import AsyncOpenAI

RATE = 24000


def pcm24k(path):
    with wave.open(path, "rb") as w:
        if (w.getnchannels(), w.getsampwidth()) != (1, 2):
            sys.exit(f"{path}: want mono 16-bit (sox IN -c 1 -b 16 OUT)")
        rate = w.getframerate()
        samples = array.array("h")
        samples.frombytes(w.readframes(w.getnframes()))
    return samples if rate == RATE else resample(samples, rate)


def resample(samples, rate):
    """Linear interpolation to 24 kHz: what a client without a DSP library does."""
    n = len(samples) * RATE // rate
    out = array.array("h", bytes(2 * n))
    step = rate / RATE
    for i in range(n):
        x = i * step
        j = int(x)
        frac = x - j
        a = samples[j]
        b = samples[j + 1] if j + 1 < len(samples) else a
        out[i] = int(round(a + (b - a) * frac))
    return out


def end_of_speech(samples):
    """The end of the last 10 ms frame above the speech threshold, in samples."""
    frame = RATE // 100
    levels = []
    for i in range(0, len(samples), frame):
        block = samples[i : i + frame]
        power = sum((s / 32768.0) ** 2 for s in block) / len(block)
        levels.append(10 * math.log10(max(power, 1e-10)))
    floor = sorted(levels)[len(levels) // 20]
    threshold = max(-45.0, floor + 15.0)
    last = max((i for i, db in enumerate(levels) if db > threshold), default=None)
    return None if last is None else min((last + 1) * frame, len(samples))


async def one_turn(client, path, silence_ms, chunk_ms, manual):
    samples = pcm24k(path)
    eos = end_of_speech(samples)
    per_chunk = RATE * chunk_ms // 1000
    eos_chunk = (eos - 1) // per_chunk
    async with client.realtime.connect(model="gpt-realtime") as conn:
        turn_detection = None if manual else {"type": "server_vad", "silence_duration_ms": silence_ms}
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "transcription": {"model": "whisper-1"}, "turn_detection": turn_detection}}})
        done = asyncio.Event()
        sent_eos = None

        async def stream():
            nonlocal sent_eos
            start = time.monotonic()
            i = 0
            while not done.is_set():
                chunk = samples[i * per_chunk : (i + 1) * per_chunk]
                if len(chunk) < per_chunk:
                    chunk = chunk + array.array("h", bytes(2 * (per_chunk - len(chunk))))
                # Chunk i leaves when its last sample would have been spoken.
                await asyncio.sleep(max(0.0, start + (i + 1) * chunk_ms / 1000 - time.monotonic()))
                await conn.input_audio_buffer.append(audio=base64.b64encode(chunk.tobytes()).decode())
                if i == eos_chunk:
                    sent_eos = time.monotonic()
                    if manual:
                        await conn.input_audio_buffer.commit()
                        await conn.response.create()
                        return
                i += 1

        sending = asyncio.create_task(stream())
        first_audio, transcript, status = None, "", None
        try:
            while True:
                event = await asyncio.wait_for(conn.recv(), 60)
                if event.type == "error":
                    raise RuntimeError(f"{path}: {event.error}")
                if event.type == "conversation.item.input_audio_transcription.completed":
                    transcript = event.transcript
                if event.type == "response.output_audio.delta" and first_audio is None:
                    first_audio = time.monotonic()
                if event.type == "response.done":
                    status = event.response.status
                    break
        finally:
            done.set()
            await sending
    v2v = None if first_audio is None or sent_eos is None else (first_audio - sent_eos) * 1000
    return v2v, status, transcript


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("files", nargs="+")
    p.add_argument("--silence-ms", type=int, default=500)
    p.add_argument("--chunk-ms", type=int, default=40)
    p.add_argument("--manual", action="store_true", help="commit at the end of speech")
    a = p.parse_args()
    client = AsyncOpenAI(api_key="local", websocket_base_url=a.url)
    figures = []
    for path in a.files:
        v2v, status, transcript = await one_turn(client, path, a.silence_ms, a.chunk_ms, a.manual)
        print(f"{path}: {status} voice_to_voice_ms={v2v and round(v2v)} {transcript!r}", flush=True)
        if status == "completed" and v2v is not None:
            figures.append(v2v)
    if not figures:
        sys.exit("no completed turn")
    figures.sort()
    p90 = figures[min(len(figures) - 1, math.ceil(0.9 * len(figures)) - 1)]
    print(f"turns={len(figures)}/{len(a.files)} voice_to_voice_ms p50={statistics.median(figures):.0f} "
          f"p90={p90:.0f} mean={statistics.mean(figures):.0f} max={figures[-1]:.0f}")
    return 0 if len(figures) == len(a.files) else 1


sys.exit(asyncio.run(main()))
