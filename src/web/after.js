// @ts-check
// What the page offers once a call is over: a one-line summary, the transcript as a text
// download, and links to what the server kept of each of the call's sessions (its report,
// and with `--record` its recordings).

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
