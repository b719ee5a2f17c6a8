// The run event stream (api.md §26.5): replay from the table after the start point, then
// live events through the process's hub, in seq order without gap or duplicate; `: ping`
// heartbeats while idle; closed after the terminal event. Written on the raw response; the
// frames produced in one turn of the event loop leave in one socket write.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { notFound } from '../../http/errors.js';
import { identityHeaders } from '../../http/identity-headers.js';
import { TERMINAL_EVENTS, type RunEvent } from '../../engine/events.js';
import { RunEventCursor } from '../../engine/hub.js';

const MAX_UNSENT_BYTES = 1024 * 1024;

/** The run (visible to the caller) and its first page of events after `afterSeq`; null = 404. */
export type FindRunForStream = (afterSeq: number, limit: number) => Promise<{ terminal: boolean; events: RunEvent[] } | null>;

export async function streamRunEvents(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  runId: string,
  startSeq: number,
  follow: boolean,
  find: FindRunForStream,
): Promise<void> {
  const res = reply.raw;
  let closed = false;
  let lastWrite = Date.now();
  let corked = false;
  let heartbeat: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | null = null;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));

  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    unsubscribe?.();
    cursor.close();
    if (!res.writableEnded && res.headersSent) res.end();
    finish();
  };

  const write = (chunk: string) => {
    if (closed) return;
    if (!corked) {
      corked = true;
      res.cork();
      process.nextTick(() => {
        corked = false;
        res.uncork();
      });
    }
    res.write(chunk);
    lastWrite = Date.now();
    // A client that cannot keep up is dropped; it resumes from its last id.
    if (res.writableLength > MAX_UNSENT_BYTES) {
      res.destroy();
      close();
    }
  };

  const cursor = new RunEventCursor(ctx.db, runId, startSeq, (e: RunEvent) => {
    write(`id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`);
    if (TERMINAL_EVENTS.has(e.type)) close();
  }, ctx.config.sseBatchLimit, (err) => {
    req.log.warn({ err: err.message, run_id: runId }, 'event read failed');
    close();
  });

  // The replay page goes first; live events that arrive meanwhile wait behind it. The
  // subscription is taken before the run is read, so nothing committed in between is missed.
  let releaseReplay: (events: RunEvent[]) => void = () => undefined;
  const replayed = cursor.catchUpFrom(new Promise<RunEvent[]>((resolve) => (releaseReplay = resolve)));
  if (follow) unsubscribe = ctx.engine.hub.subscribe(runId, (e) => cursor.offer(e), () => void cursor.catchUp());

  let found: Awaited<ReturnType<FindRunForStream>>;
  try {
    found = await find(startSeq, ctx.config.sseBatchLimit);
  } catch (err) {
    close();
    releaseReplay([]);
    throw err;
  }
  if (!found) {
    close();
    releaseReplay([]);
    throw notFound('runs.not_found', 'run');
  }

  reply.hijack();
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
    'x-trace-id': req.id,
    ...identityHeaders(req),
  });
  res.flushHeaders?.();
  if (req.method === 'HEAD') {
    // The headers a GET would send, and no stream to hold open.
    close();
    releaseReplay([]);
    return;
  }
  res.on('close', close);
  req.raw.on('close', close);
  // The client may have gone while the run was read: its 'close' has already been emitted.
  if (res.destroyed || !res.socket || res.socket.destroyed) {
    close();
    releaseReplay([]);
    return;
  }
  const heartbeatMs = ctx.config.sseHeartbeatSeconds * 1000;
  heartbeat = setInterval(() => {
    if (Date.now() - lastWrite >= heartbeatMs) write(': ping\n\n');
  }, Math.max(50, Math.min(heartbeatMs / 2, 1000)));

  releaseReplay(found.events);
  await replayed.catch(() => undefined); // a failed read closes the stream (above)
  // Replay only, or the run had already ended: close once what exists is written.
  if (!follow || found.terminal) close();
  await done;
}
