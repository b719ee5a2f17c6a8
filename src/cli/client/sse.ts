// Follows a run's event stream (GET /v1/runs/{id}/events, api.md §26.5) until its terminal event,
// parsing frames with eventsource-parser. A dropped connection (reset, server restart, an idle
// socket) is reopened with `Last-Event-ID: <last seq>`, and any event at or below that seq is
// skipped, so the caller sees every event exactly once and in order.
import { createParser } from 'eventsource-parser';
import { ApiError, errorFromResponse, type ApiClient } from './api.js';

export interface RunEvent {
  event_id: string;
  run_id: string;
  seq: number;
  type: string;
  data: any;
  ts: string;
}

export const TERMINAL_EVENTS = new Set(['run.completed', 'run.failed', 'run.cancelled']);

export interface FollowOptions {
  afterSeq?: number;
  signal?: AbortSignal;
  /** Called before each reconnection (after a drop), with the reason. */
  onReconnect?: (reason: string, attempt: number) => void;
  /** Reconnect when nothing (not even a heartbeat) arrived for this long. */
  idleTimeoutMs?: number;
  /** Consecutive failed connection attempts (no new event in between) before giving up. */
  maxAttempts?: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/** Yields the run's events after `afterSeq`; returns after the terminal event or when `signal` aborts. */
export async function* followRunEvents(api: ApiClient, runId: string, opts: FollowOptions = {}): AsyncGenerator<RunEvent> {
  let lastSeq = opts.afterSeq ?? 0;
  let failures = 0;
  const maxAttempts = opts.maxAttempts ?? 12;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
  while (!opts.signal?.aborted) {
    const conn = new AbortController();
    const abortConn = () => conn.abort();
    opts.signal?.addEventListener('abort', abortConn, { once: true });
    let idle: NodeJS.Timeout | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => conn.abort(new Error('no data from the server')), idleTimeoutMs);
    };
    let reason = 'the stream ended before the run did';
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (lastSeq > 0) headers['last-event-id'] = String(lastSeq);
      const res = await api.fetch(`/v1/runs/${encodeURIComponent(runId)}/events`, { headers, signal: conn.signal, timeoutMs: null });
      if (!res.ok) {
        const err = await errorFromResponse(res);
        if (res.status < 500 && res.status !== 429) throw err; // not worth retrying: 401, 404, ...
        throw new Error(`${err.message} (${err.code})`); // 5xx, 429: try again below
      }
      touch();
      const pending: RunEvent[] = [];
      const parser = createParser({
        onEvent: (msg) => {
          const ev = JSON.parse(msg.data) as RunEvent;
          if (ev.seq > lastSeq) pending.push(ev);
        },
      });
      res.body.setEncoding('utf8');
      for await (const chunk of res.body as AsyncIterable<string>) {
        touch();
        parser.feed(chunk);
        while (pending.length) {
          const ev = pending.shift()!;
          if (ev.seq <= lastSeq) continue;
          lastSeq = ev.seq;
          failures = 0;
          // The consumer may hold an event for long (a question to the user): not idle time.
          clearTimeout(idle);
          yield ev;
          if (TERMINAL_EVENTS.has(ev.type)) return;
          touch();
        }
      }
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (opts.signal?.aborted) return;
      const e = err as Error & { code?: string };
      reason = conn.signal.aborted && conn.signal.reason instanceof Error ? conn.signal.reason.message : (e.code ?? e.message);
    } finally {
      clearTimeout(idle);
      opts.signal?.removeEventListener('abort', abortConn);
      conn.abort();
    }
    if (opts.signal?.aborted) return;
    failures++;
    if (failures > maxAttempts) throw new ApiError(0, 'client.stream_lost', `lost the event stream of run ${runId}: ${reason}`);
    opts.onReconnect?.(reason, failures);
    await sleep(Math.min(100 * 2 ** (failures - 1), 3_000), opts.signal);
  }
}
