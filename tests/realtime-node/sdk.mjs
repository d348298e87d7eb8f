// The official OpenAI Node SDK (`openai`, OpenAIRealtimeWS over `ws`) driving a callgate call.
//
// Run by tests/realtime.rs:  node sdk.mjs HOST:PORT ANSWER.wav   (24 kHz mono 16-bit WAV)
//
// The Node SDK only dials wss:// (it rewrites the scheme of any base URL), so the script puts
// a TLS terminator in front of callgate, as a deployment would (a self-signed certificate made
// with openssl, trusted by this client only). Each check prints "ok NAME" or the script exits
// non-zero. No client code but the SDK's for the Realtime side.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";

import OpenAI from "openai";
import { OpenAIRealtimeWS } from "openai/realtime/ws";

const [target, answerWav] = process.argv.slice(2);
const [host, port] = target.split(":");

function fail(message) {
  console.error(`FAIL ${message}`);
  process.exit(1);
}

/** The PCM frames of a 24 kHz mono 16-bit WAV. */
function pcm24k(file) {
  const wav = fs.readFileSync(file);
  let at = 12;
  let format = null;
  while (at + 8 <= wav.length) {
    const id = wav.toString("ascii", at, at + 4);
    const size = wav.readUInt32LE(at + 4);
    if (id === "fmt ") format = wav.subarray(at + 8, at + 8 + size);
    if (id === "data") {
      if (!format || format.readUInt16LE(2) !== 1 || format.readUInt32LE(4) !== 24000 ||
          format.readUInt16LE(14) !== 16) fail(`${file}: want 24 kHz mono 16-bit`);
      return wav.subarray(at + 8, at + 8 + size);
    }
    at += 8 + size + (size % 2);
  }
  fail(`${file}: no data chunk`);
}

/** A TLS terminator on an ephemeral port forwarding to callgate; its certificate. */
async function tlsFront() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "callgate-node-sdk-"));
  const key = path.join(dir, "key.pem");
  const cert = path.join(dir, "cert.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
    "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
  const server = tls.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) },
    (down) => {
      const up = net.connect(Number(port), host);
      down.on("error", () => up.destroy());
      up.on("error", () => down.destroy());
      down.pipe(up).pipe(down);
    });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  server.unref();
  return { port: server.address().port, ca: fs.readFileSync(cert) };
}

/** An SDK connection and a way to wait for its events. */
function connect(client, ca) {
  const rt = new OpenAIRealtimeWS({ model: "gpt-realtime", options: { ca } }, client);
  const seen = [];
  const waiters = [];
  rt.on("event", (event) => {
    seen.push(event);
    for (const w of waiters.splice(0)) w();
  });
  // Realtime `error` events also come here; the checks read them from `seen`.
  rt.on("error", () => {});
  /** Resolves with the events up to the first of `type` after `from`; fails when the
   *  server says nothing for 30 s (a hang, not a speed check: a loaded CI machine is slow). */
  rt.until = async (type, from = 0) => {
    let heard = seen.length;
    let deadline = Date.now() + 30_000;
    for (;;) {
      const at = seen.findIndex((e, i) => i >= from && e.type === type);
      if (at >= 0) return seen.slice(from, at + 1);
      if (seen.length > heard) [heard, deadline] = [seen.length, Date.now() + 30_000];
      if (Date.now() > deadline) fail(`no ${type}, and nothing for 30 s: ${seen.map((e) => e.type)}`);
      await new Promise((resolve) => { waiters.push(resolve); setTimeout(resolve, 500); });
    }
  };
  rt.seen = seen;
  return rt;
}

const of = (events, type) => events.filter((e) => e.type === type);

async function spokenTurn(client, ca, pcm) {
  const rt = connect(client, ca);
  await rt.until("session.created");
  rt.send({ type: "session.update", session: { type: "realtime",
    audio: { input: { transcription: { model: "whisper-1" },
      turn_detection: { type: "server_vad", silence_duration_ms: 500 } } } } });
  await rt.until("session.updated");
  const from = rt.seen.length;
  const audio = Buffer.concat([pcm, Buffer.alloc(24 * 2 * 1500)]);
  for (let i = 0; i < audio.length; i += 4800) {
    rt.send({ type: "input_audio_buffer.append", audio: audio.subarray(i, i + 4800).toString("base64") });
  }
  const events = await rt.until("response.done", from);
  const done = events.at(-1).response;
  if (done.status !== "completed") fail(`spoken turn: ${JSON.stringify(done)}`);
  const heard = of(events, "conversation.item.input_audio_transcription.completed")[0];
  if (!heard || !heard.transcript.trim()) fail("spoken turn: no transcript");
  const bytes = of(events, "response.output_audio.delta")
    .reduce((n, e) => n + Buffer.from(e.delta, "base64").length, 0);
  if (bytes < 48000) fail(`spoken turn: ${bytes} bytes of audio`);
  console.log(`ok node_spoken_turn transcript=${JSON.stringify(heard.transcript)} audio_s=${(bytes / 48000).toFixed(1)}`);
  rt.close();
}

async function textAndBadEvent(client, ca) {
  const rt = connect(client, ca);
  await rt.until("session.created");
  rt.send({ type: "no.such.event", event_id: "evt_bad" });
  const error = (await rt.until("error")).at(-1).error;
  if (error.event_id !== "evt_bad" || error.type !== "invalid_request_error") {
    fail(`bad event: ${JSON.stringify(error)}`);
  }
  console.log("ok node_bad_event");
  rt.send({ type: "session.update", session: { type: "realtime", output_modalities: ["text"] } });
  await rt.until("session.updated");
  rt.send({ type: "conversation.item.create", item: { type: "message", role: "user",
    content: [{ type: "input_text", text: "I mostly write backend services in Rust." }] } });
  rt.send({ type: "response.create" });
  const events = await rt.until("response.done");
  if (of(events, "response.output_audio.delta").length) fail("text-only response sent audio");
  const text = of(events, "response.output_text.delta").map((e) => e.delta).join("");
  if (!text.trim() || of(events, "response.output_text.done")[0]?.text !== text) {
    fail(`text-only: ${JSON.stringify(text)}`);
  }
  console.log(`ok node_text_only text=${JSON.stringify(text)}`);
  rt.close();
}

const front = await tlsFront();
const client = new OpenAI({ apiKey: "local", baseURL: `https://127.0.0.1:${front.port}/v1` });
await textAndBadEvent(client, front.ca);
await spokenTurn(client, front.ca, pcm24k(answerWav));
process.exit(0);
