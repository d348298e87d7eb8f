// Drives Debian's chromium through one call on callgate's page, as a candidate would:
// open the page, press Start call, let the fake microphone (a WAV file) speak, and wait
// until the page shows what the scenario waits for. Prints one JSON object on stdout with
// what the page showed; tests/browser.rs makes the assertions.
//
//   node drive.mjs URL FIXTURE.wav OUT_DIR SCENARIO
//
// SCENARIO "answer": the fixture's speech is turn 1; wait for its response to be done and
// its audio played to the end. "barge-in": type turn 1 at once (no speech recognition to
// wait for, so the reply starts at a known moment), and let the fixture's speech, a few
// seconds in, land while the interviewer is answering; wait for turns 1 and 2 to be done.
// "resume": as "answer", through a relay that drops the connection mid-answer; the page
// must resume the call and lose nothing of what was said meanwhile. All then press End
// call and wait for the recording links. The caller's timeout bounds the whole run.

import { chromium } from 'playwright-core';

const [url, fixture, outDir, scenario] = process.argv.slice(2);
if (!url || !fixture || !outDir || !['answer', 'barge-in', 'resume'].includes(scenario)) {
  console.error('usage: node drive.mjs URL FIXTURE.wav OUT_DIR answer|barge-in|resume');
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
  await page.goto(url);
  await page.waitForSelector('#persona option', { state: 'attached' });
  await page.fill('#role', 'Backend engineer');
  await page.click('#start');
  await page.waitForSelector('#conn[data-state=live]');

  const turn = (id) => `#transcript li.ai[data-turn="${id}"]`;
  const doneStatus = ':is([data-status=completed],[data-status=cancelled],[data-status=failed])';
  if (scenario === 'answer' || scenario === 'resume') {
    await page.waitForSelector(`${turn(1)}${doneStatus}`, { timeout: 0 });
    // Played to the end: the player's count reached what arrived.
    await page.waitForFunction(
      (sel) => {
        const el = document.querySelector(sel);
        return el && el.dataset.receivedMs && el.dataset.playedMs === el.dataset.receivedMs;
      },
      turn(1),
      { timeout: 0 },
    );
  } else {
    await page.fill('#typed', 'I have five years of experience building backend services in Rust.');
    await page.press('#typed', 'Enter');
    await page.waitForSelector(`${turn(1)}${doneStatus}`, { timeout: 0 });
    await page.waitForSelector(`${turn(2)}${doneStatus}`, { timeout: 0 });
  }
  await page.screenshot({ path: `${outDir}/call.png`, fullPage: true });

  const during = await page.evaluate(() => {
    const turns = [...document.querySelectorAll('#transcript li')].map((li) => ({
      turn: Number(li.dataset.turn),
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
      turns,
    };
  });

  await page.click('#end');
  await page.waitForSelector('#conn[data-state=ended]');
  await page.waitForSelector('#after:not([hidden])');
  // Recording links appear once the server lists the call's files.
  await page
    .waitForSelector('#downloads a.recording', { timeout: 5000 })
    .catch(() => {});
  await page.screenshot({ path: `${outDir}/after.png`, fullPage: true });
  const downloads = await page.$$eval('#downloads a', (as) =>
    as.map((a) => ({ text: a.textContent, href: a.getAttribute('href') })),
  );
  console.log(JSON.stringify({ ...during, downloads, log }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e), log }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
