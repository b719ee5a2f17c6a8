// Follows a run's event stream (GET /v1/runs/{id}/events, api.md §26.5) over fetch, so the
// access token goes in a header and is refreshed like any other call. A dropped connection
// reconnects from the last seq it delivered (Last-Event-ID), so no event is seen twice.
import { createParser } from 'eventsource-parser';
import { authedFetch } from './api.js';

export const TERMINAL = new Set(['run.completed', 'run.failed', 'run.cancelled']);

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

/**
 * Calls onEvent(event) for every event with seq > afterSeq, in order, until the run ends or
 * `signal` aborts. Resolves to the last seq delivered.
 */
export async function followRun(runId, { afterSeq = 0, onEvent, signal }) {
  let last = afterSeq;
  let ended = false;
  let failures = 0;
  while (!ended && !signal?.aborted) {
    try {
      const res = await authedFetch(`/v1/runs/${runId}/events?after_seq=${last}`, {
        headers: { accept: 'text/event-stream', 'last-event-id': String(last) },
        signal,
      });
      const parser = createParser({
        onEvent(msg) {
          const ev = JSON.parse(msg.data);
          if (ev.seq <= last) return; // never twice, whatever the server resends
          last = ev.seq;
          onEvent(ev);
          if (TERMINAL.has(ev.type)) ended = true;
        },
      });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
        failures = 0;
      }
    } catch (err) {
      if (signal?.aborted) break;
      if (err?.status && err.status < 500) throw err; // 401 after a failed refresh, 404: give up
      failures++;
    }
    if (!ended && !signal?.aborted) await sleep(Math.min(250 * 2 ** failures, 5000), signal);
  }
  return last;
}
