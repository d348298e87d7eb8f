// @ts-check
// What the page offers once a call is over: a one-line summary, the transcript as a text
// download, links to what the server kept of each of the call's sessions (its report,
// and with `--record` its recordings), and with a token the user's last calls.

/**
 * @param {HTMLElement} el
 * @param {number} answers the candidate gave
 * @param {number | null} durationMs from `session.ended`, when it came
 */
export function showSummary(el, answers, durationMs) {
  const length = durationMs != null ? ` in ${duration(durationMs)}` : '';
  el.textContent = `${answers} ${answers === 1 ? 'answer' : 'answers'}${length}. Your transcript is below.`;
}

/** @param {number} msTotal */
function duration(msTotal) {
  const s = Math.round(msTotal / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** @param {string} text the whole transcript */
export function transcriptLink(text) {
  const blob = new Blob([text], { type: 'text/plain' });
  const li = document.createElement('li');
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'interview-transcript.txt';
  a.textContent = 'Transcript (text)';
  li.append(a);
  return li;
}

const FILE_LABELS = /** @type {Record<string, string>} */ ({
  'input.wav': 'Your voice (WAV)',
  'output.wav': "The interviewer's voice (WAV)",
  'events.jsonl': 'Call record (JSON lines)',
});

/**
 * Links to what the server kept of each session of the call, if it kept anything.
 * @param {HTMLElement} list where the links go
 * @param {string[]} sessions
 * @param {string} token the page's access token ('' for none)
 */
export async function offerRecordings(list, sessions, token) {
  for (const id of sessions) {
    try {
      const res = await fetch(`/v1/calls/${id}`, {
        headers: token ? { Authorization: `Bearer ${token}` } : {},
      });
      if (!res.ok) continue;
      const body = await res.json();
      // A link cannot send a header: the token rides in the query, as for the call.
      const query = token ? `?access_token=${encodeURIComponent(token)}` : '';
      const report = document.createElement('a');
      report.href = `/v1/calls/${id}/report.html${query}`;
      report.target = '_blank';
      report.textContent = 'Your report: timing, pace, fillers, pauses';
      report.className = 'report';
      const item = document.createElement('li');
      item.append(report);
      list.append(item);
      for (const f of body.files) {
        const li = document.createElement('li');
        const a = document.createElement('a');
        a.href = `${f.url}${query}`;
        a.download = `${id.slice(0, 8)}-${f.name}`;
        a.textContent = FILE_LABELS[f.name] || f.name;
        a.className = 'recording';
        li.append(a);
        list.append(li);
      }
    } catch {
      // The server may not keep calls (calls-dir disabled): the text transcript remains.
    }
  }
}

/**
 * The user's last calls and how their figures moved (`GET /v1/calls`); only when the
 * server checks tokens (without one there is no history to show).
 * @param {HTMLElement} el the history block (its `#trends` and `#past-calls` lists)
 * @param {string} token the page's access token ('' for none)
 */
export async function showHistory(el, token) {
  if (!token) return;
  try {
    const res = await fetch('/v1/calls', { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok) return;
    /** @type {{calls: PastCall[], trends: {summary: string}[]}} */
    const history = await res.json();
    if (history.calls.length === 0) return;
    const trends = /** @type {HTMLElement} */ (el.querySelector('#trends'));
    trends.replaceChildren(...history.trends.map((t) => item(t.summary)));
    const list = /** @type {HTMLElement} */ (el.querySelector('#past-calls'));
    const query = `?access_token=${encodeURIComponent(token)}`;
    list.replaceChildren(...history.calls.map((c) => pastCall(c, query)));
    el.hidden = false;
  } catch {
    // No history is no loss: the call's own report and transcript are above.
  }
}

/**
 * @typedef {{sessionId: string, startedAt: number, persona: string | null, durationMs: number,
 *   answers: number, wordsPerMinute: number, fillersPerMinute: number}} PastCall
 */

/** @param {string} text */
function item(text) {
  const li = document.createElement('li');
  li.textContent = text;
  return li;
}

/**
 * @param {PastCall} c
 * @param {string} query the token, for the report link
 */
function pastCall(c, query) {
  const when = new Date(c.startedAt).toLocaleString();
  const li = item(
    `${when}, ${c.persona ?? 'interview'}, ${duration(c.durationMs)}: ${c.answers} answers, ` +
      `${Math.round(c.wordsPerMinute)} wpm, ${c.fillersPerMinute.toFixed(1)} fillers/min `,
  );
  const a = document.createElement('a');
  a.href = `/v1/calls/${c.sessionId}/report.html${query}`;
  a.target = '_blank';
  a.textContent = 'report';
  li.append(a);
  return li;
}
