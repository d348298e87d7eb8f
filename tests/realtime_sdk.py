"""The official OpenAI Python SDK (GA `client.realtime.connect`) driving a callgate call.

Run by tests/realtime.rs with the venv scripts/realtime-sdk makes:

    realtime_sdk.py WS_BASE_URL ANSWER.wav INTERRUPTION.wav

Each check prints "ok NAME" (and its figures) or fails with an assertion. No client code
but the SDK's: the same calls an application makes.
"""

import asyncio
import base64
import sys
import time
import wave

from openai import AsyncOpenAI

CHUNK_MS = 100


def pcm24k(path):
    """A 24 kHz mono 16-bit WAV's frames, as bytes."""
    with wave.open(path, "rb") as w:
        assert w.getframerate() == 24000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.readframes(w.getnframes())


def silence(ms):
    return b"\0\0" * (24 * ms)


async def append(conn, pcm):
    step = 24 * 2 * CHUNK_MS
    for i in range(0, len(pcm), step):
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i : i + step]).decode())


async def until(conn, kind, seen=None):
    """Events up to and including the first of `kind`."""
    seen = [] if seen is None else seen
    while True:
        event = await asyncio.wait_for(conn.recv(), 30)
        seen.append(event)
        if event.type == kind:
            return seen


def of(seen, kind):
    return [e for e in seen if e.type == kind]


async def server_vad(client, answer):
    async with client.realtime.connect(model="gpt-realtime") as conn:
        created = await until(conn, "session.created")
        assert created[-1].session.audio.input.turn_detection.type == "server_vad"
        await conn.session.update(
            session={
                "type": "realtime",
                "instructions": "You interview candidates for a backend role.",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": "whisper-1"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    },
                    "output": {"format": {"type": "audio/pcm", "rate": 24000}},
                },
            }
        )
        await until(conn, "session.updated")
        start = time.monotonic()
        await append(conn, answer + silence(1500))
        seen = await until(conn, "response.done")
        stopped = of(seen, "input_audio_buffer.speech_stopped")
        assert stopped, [e.type for e in seen]
        transcript = of(seen, "conversation.item.input_audio_transcription.completed")[0].transcript
        done = seen[-1].response
        assert done.status == "completed", done
        audio = b"".join(base64.b64decode(e.delta) for e in of(seen, "response.output_audio.delta"))
        assert len(audio) > 48000, len(audio)
        print(f"ok server_vad transcript={transcript!r} audio_s={len(audio) / 48000:.1f} "
              f"wall_s={time.monotonic() - start:.1f}")


async def manual_commit(client, answer):
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await until(conn, "session.created")
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "turn_detection": None, "transcription": {"model": "whisper-1"}}}})
        await until(conn, "session.updated")
        await append(conn, answer + silence(300))
        await conn.input_audio_buffer.commit()
        committed = await until(conn, "input_audio_buffer.committed")
        await conn.response.create()
        seen = await until(conn, "response.done")
        heard = of(seen, "conversation.item.input_audio_transcription.completed")[0]
        assert heard.item_id == committed[-1].item_id
        assert seen[-1].response.status == "completed"
        print(f"ok manual_commit transcript={heard.transcript!r}")


async def barge_in_and_truncate(client, interruption):
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await until(conn, "session.created")
        await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Please tell me about the role in detail."}]})
        await conn.response.create()
        opened = await until(conn, "response.output_audio.delta")
        response_id = of(opened, "response.created")[0].response.id
        item_id = of(opened, "response.output_item.added")[0].item.id
        onset = time.monotonic()
        # Sent while this task reads, so each event is timed as it arrives.
        sending = asyncio.create_task(append(conn, interruption + silence(1200)))
        last_delta = 0.0
        truncated = []
        while True:
            event = await asyncio.wait_for(conn.recv(), 30)
            if event.type == "conversation.item.truncated":
                truncated.append(event)
            if event.type == "response.output_audio.delta" and event.response_id == response_id:
                last_delta = time.monotonic() - onset
            if event.type == "input_audio_buffer.speech_started":
                # What an application does: stop the player and say how much was heard.
                await conn.conversation.item.truncate(item_id=item_id, content_index=0,
                                                      audio_end_ms=500)
            if event.type == "response.done" and event.response.id == response_id:
                break
        await sending
        assert event.response.status == "cancelled", event.response
        assert event.response.status_details.reason == "turn_detected"
        assert last_delta < 0.25, last_delta
        print(f"ok barge_in last_delta_ms={last_delta * 1000:.0f}")
        if not truncated:
            truncated = (await until(conn, "conversation.item.truncated"))[-1:]
        assert truncated[0].item_id == item_id and truncated[0].audio_end_ms == 500
        print("ok truncate")
        await until(conn, "response.done")


async def text_only(client):
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await until(conn, "session.created")
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await until(conn, "session.updated")
        await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "I mostly write backend services in Rust."}]})
        await conn.response.create()
        seen = await until(conn, "response.done")
        assert not of(seen, "response.output_audio.delta")
        text = "".join(e.delta for e in of(seen, "response.output_text.delta"))
        assert text and of(seen, "response.output_text.done")[0].text == text
        print(f"ok text_only text={text!r}")


async def bad_event(client):
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await until(conn, "session.created")
        await conn.send_raw('{"type":"no.such.event","event_id":"evt_bad"}')
        error = (await until(conn, "error"))[-1].error
        assert error.event_id == "evt_bad" and error.type == "invalid_request_error", error
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 16000}}}}, event_id="evt_rate")
        error = (await until(conn, "error"))[-1].error
        assert error.param == "session.audio.input.format.rate", error
        # The session goes on.
        await conn.session.update(session={"type": "realtime", "instructions": "Be brief."})
        updated = (await until(conn, "session.updated"))[-1]
        assert updated.session.instructions == "Be brief."
        print("ok bad_event")


async def main():
    url, answer_wav, interruption_wav = sys.argv[1:4]
    client = AsyncOpenAI(api_key="local", websocket_base_url=url)
    answer, interruption = pcm24k(answer_wav), pcm24k(interruption_wav)
    await server_vad(client, answer)
    await manual_commit(client, answer)
    await barge_in_and_truncate(client, interruption)
    await text_only(client)
    await bad_event(client)


asyncio.run(main())
