// Drives Debian's chromium through a call on callgate's page, as a candidate would:
// open the page, press Start call, let the fake microphone (a WAV file) speak, and wait
// until the page shows what the scenario waits for. Prints one JSON object on stdout with
// what the page showed (also written to OUT_DIR/page.json); tests/browser.rs makes the
// assertions.
//
//   node drive.mjs URL FIXTURE.wav OUT_DIR SCENARIO
//
// SCENARIO "answer": the fixture's speech is turn 1; wait for its response to be done and
// its audio played to the end. "barge-in": type turn 1 at once (no speech recognition to
// wait for, so the reply starts at a known moment), and let the fixture's speech, a few
// seconds in, land while the interviewer is answering; wait for turns 1 and 2 to be done.
// "resume": as "answer", through a relay that drops the connection mid-answer; the page
// must resume the call and lose nothing of what was said meanwhile.
// "second-call": end the first call, press Start another call and Start call, and type an
// answer in the second call (if its controls are there to type into).
// "end-reconnecting": through a relay that drops the call and refuses the next two
// reconnects, press End call while the page waits 2 s to try again, then watch the page's
// sockets for 16 s (longer than the 15 s ping).
// "refused-resume": through a relay that drops the call, to a server whose resume grace is
// shorter than the page's first reconnect wait: the resume is refused and the page starts a
// new call; wait for that call's greeting to be done and played.
// "overlap": the fixture speaks over the greeting twice, a backchannel ("okay") that must
// pause the page's player and resume it, then an interruption that must pause and clear
// it; wait for the greeting (turn 0) and the interruption's turn (1) to be done.
// "patience": before the call, choose the patient interviewer and reload the page (the
// choice must be remembered); the call's `session.start` is read off the socket.
// All then press End call (unless the call is over already) and wait for the recording
// links. The caller's timeout bounds the whole run.

import { writeFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

const ANSWER = 'I have five years of experience building backend services in Rust.';
const DONE_STATUS = ':is([data-status=completed],[data-status=cancelled],[data-status=failed])';
const turn = (id) => `#transcript li.ai[data-turn="${id}"]`;

// The text frames kept in `wire`, in the order the page sent and received them.
const WIRE_TYPES = ['response.paused', 'response.resumed', 'response.done', 'playback.position'];

/**
 * What every scenario sees of the page's sockets: how many were opened, pings sent, each
 * `session.start`'s turnDetection, and (`wire`) the pause, resume, done and position frames.
 */
function watchSockets(page) {
  const seen = { opened: 0, pings: 0, turnDetections: [], wire: [] };
  const text = (f, dir) => {
    if (typeof f.payload !== 'string' || !f.payload.startsWith('{')) return;
    const m = JSON.parse(f.payload);
    if (m.type === 'ping') seen.pings += 1;
    if (m.type === 'session.start') seen.turnDetections.push(m.turnDetection);
    if (WIRE_TYPES.includes(m.type)) {
      seen.wire.push({ dir, type: m.type, turnId: m.turnId, playedMs: m.playedMs, status: m.status });
    }
  };
  page.on('websocket', (ws) => {
    seen.opened += 1;
    ws.on('framesent', (f) => text(f, 'out'));
    ws.on('framereceived', (f) => text(f, 'in'));
  });
  return seen;
}

/** Waits until the interviewer's entry `sel` has arrived and played to its end. */
async function playedOut(page, sel, timeout = 0) {
  await page.waitForFunction(
    (s) => {
      const el = [...document.querySelectorAll(s)].pop();
      return el && el.dataset.receivedMs && el.dataset.playedMs === el.dataset.receivedMs;
    },
    sel,
    { timeout },
  );
}

async function answered(page) {
  await page.waitForSelector(`${turn(1)}${DONE_STATUS}`, { timeout: 0 });
  // Played to the end: the player's count reached what arrived.
  await playedOut(page, turn(1));
  return {};
}

async function bargeIn(page) {
  await page.fill('#typed', ANSWER);
  await page.press('#typed', 'Enter');
  await page.waitForSelector(`${turn(1)}${DONE_STATUS}`, { timeout: 0 });
  await page.waitForSelector(`${turn(2)}${DONE_STATUS}`, { timeout: 0 });
  return {};
}

async function secondCall(page) {
  const firstSessionId = await page.evaluate(() => document.body.dataset.sessionId);
  await page.click('#end');
  await page.waitForSelector('#after:not([hidden])');
  await page.click('#again');
  await page.click('#start');
  await page.waitForSelector('#conn[data-state=live]');
  const controls = {};
  for (const id of ['mute', 'end', 'typed']) controls[id] = await page.isVisible(`#${id}`);
  if (controls.typed) {
    await page.fill('#typed', ANSWER);
    await page.press('#typed', 'Enter');
    await page.waitForSelector(`${turn(1)}${DONE_STATUS}`, { timeout: 0 });
  }
  return { firstSessionId, secondCallControls: controls };
}

async function endWhileReconnecting(page, sockets) {
  // The third wait of the backoff (0.5 s, 1 s, then 2 s): two reconnects were refused.
  await page.waitForFunction(() => document.querySelector('#conn').textContent.includes('in 2.0 s'));
  const before = { ...sockets };
  await page.click('#end');
  await page.waitForTimeout(16000);
  return {
    socketsOpenedAfterEnd: sockets.opened - before.opened,
    pingsAfterEnd: sockets.pings - before.pings,
    socketsBeforeEnd: before.opened,
    conn: await page.evaluate(() => ({
      state: document.querySelector('#conn').dataset.state,
      text: document.querySelector('#conn').textContent,
    })),
    afterShown: await page.isVisible('#after'),
  };
}

async function overlap(page, _sockets, outDir) {
  // Bounded, so a page that never settles still reports what its player did.
  await page.waitForSelector('#ai[data-player=paused]', { timeout: 60000 });
  const pausedStatus = await page.textContent('#ai-status');
  await page.screenshot({ path: `${outDir}/paused.png`, fullPage: true });
  await page
    .waitForSelector(`${turn(0)}${DONE_STATUS}`, { timeout: 60000 })
    .then(() => page.waitForSelector(`${turn(1)}${DONE_STATUS}`, { timeout: 60000 }))
    .catch((e) => log.push(`turns 0 and 1 did not finish: ${e.message}`));
  return { pausedStatus };
}

/** Before the call: the patient interviewer, chosen, then the page reloaded. */
async function choosePatient(page) {
  await page.selectOption('#patience', 'patient');
  await page.reload();
  await page.waitForSelector('#persona option', { state: 'attached' });
}

async function patience(page) {
  return { patienceShown: await page.inputValue('#patience') };
}

async function refusedResume(page) {
  const firstSessionId = await page.evaluate(() => document.body.dataset.sessionId);
  await page.waitForFunction((first) => document.body.dataset.sessionId !== first, firstSessionId, {
    timeout: 30000,
  });
  // The new call's greeting, to its end; on a page that merges it into the old call's
  // entry this never comes, and the test reads what the page shows instead.
  await page
    .waitForFunction(
      (s) => [...document.querySelectorAll(s)].pop()?.dataset.status === 'completed',
      turn(0),
      { timeout: 30000 },
    )
    .then(() => playedOut(page, turn(0), 30000))
    .catch((e) => log.push(`the new greeting did not finish: ${e.message}`));
  return { firstSessionId };
}

const scenarios = {
  answer: answered,
  resume: answered,
  'barge-in': bargeIn,
  'second-call': secondCall,
  'end-reconnecting': endWhileReconnecting,
  'refused-resume': refusedResume,
  overlap,
  patience,
};
/** What a scenario does on the setup form before Start call. */
const setups = { patience: choosePatient };

const [url, fixture, outDir, scenario] = process.argv.slice(2);
if (!url || !fixture || !outDir || !(scenario in scenarios)) {
  console.error(`usage: node drive.mjs URL FIXTURE.wav OUT_DIR ${Object.keys(scenarios).join('|')}`);
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    // %noloop: the file plays once, then the fake mic gives silence.
    `--use-file-for-fake-audio-capture=${fixture}%noloop`,
    '--autoplay-policy=no-user-gesture-required',
  ],
});
const log = [];
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  const sockets = watchSockets(page);
  await page.goto(url);
  await page.waitForSelector('#persona option', { state: 'attached' });
  await setups[scenario]?.(page);
  await page.fill('#role', 'Backend engineer');
  await page.click('#start');
  await page.waitForSelector('#conn[data-state=live]');

  const seen = await scenarios[scenario](page, sockets, outDir);
  await page.screenshot({ path: `${outDir}/call.png`, fullPage: true });

  const during = await page.evaluate(() => {
    const turns = [...document.querySelectorAll('#transcript li[data-turn]')].map((li) => ({
      turn: Number(li.dataset.turn),
      call: li.dataset.call ? Number(li.dataset.call) : null,
      who: li.classList.contains('ai') ? 'ai' : 'user',
      text: li.querySelector('.text')?.textContent ?? '',
      textClass: li.querySelector('.text')?.className ?? '',
      status: li.dataset.status ?? null,
      receivedMs: li.dataset.receivedMs ? Number(li.dataset.receivedMs) : null,
      playedMs: li.dataset.playedMs ? Number(li.dataset.playedMs) : null,
      clearedMs: li.dataset.clearedMs ? Number(li.dataset.clearedMs) : null,
      meta: li.querySelector('.meta')?.textContent ?? '',
    }));
    return {
      sessionId: document.body.dataset.sessionId ?? null,
      resumes: Number(document.body.dataset.resumes ?? 0),
      lateFramesDropped: Number(document.body.dataset.lateFramesDropped ?? 0),
      notices: [...document.querySelectorAll('#notices .notice')].map((n) => n.textContent),
      // The player's reports but `pos` (paused, resumed, cleared, drained), in order.
      playerLog: window.callgate.audio.log,
      turns,
    };
  });

  if (await page.isVisible('#end')) {
    await page.click('#end');
    await page.waitForSelector('#conn[data-state=ended]');
    await page.waitForSelector('#after:not([hidden])');
    // Recording links appear once the server lists the call's files.
    await page
      .waitForSelector('#downloads a.recording', { timeout: 5000 })
      .catch(() => {});
  }
  await page.screenshot({ path: `${outDir}/after.png`, fullPage: true });
  const downloads = await page.$$eval('#downloads a', (as) =>
    as.map((a) => ({ text: a.textContent, href: a.getAttribute('href') })),
  );
  // The end screen's report link, opened as a candidate would: the page's charts are SVG.
  let report = null;
  const reportLink = downloads.find((d) => d.href?.includes('/report.html'));
  if (reportLink?.href) {
    await page.goto(new URL(reportLink.href, page.url()).href);
    await page.waitForSelector('svg', { timeout: 5000 }).catch(() => {});
    await page.screenshot({ path: `${outDir}/report.png`, fullPage: true });
    report = await page.evaluate(() => ({
      title: document.title,
      svgs: document.querySelectorAll('svg').length,
      answers: document.querySelectorAll('section.answer').length,
      timelineBars: document.querySelectorAll('svg[aria-label=timeline] rect').length,
      scripts: document.querySelectorAll('script').length,
    }));
  }
  const { turnDetections, wire } = sockets;
  const result = JSON.stringify({ ...during, ...seen, turnDetections, wire, downloads, report, log });
  // Beside the screenshots too, for reading after a run that passed.
  await writeFile(`${outDir}/page.json`, result);
  console.log(result);
} catch (e) {
  console.log(JSON.stringify({ error: String(e), log }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
