// The run event stream (api.md §26.5): replay from the table after the start point, then
// live events through the process's hub, in seq order without gap or duplicate; `: ping`
// heartbeats while idle; closed after the terminal event. Written on the raw response so
// each frame is flushed as it is produced.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../http/context.js';
import { TERMINAL_EVENTS, type RunEvent } from '../../engine/events.js';
import { RunEventCursor } from '../../engine/hub.js';

const MAX_UNSENT_BYTES = 1024 * 1024;

export async function streamRunEvents(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  run: { id: string; terminal: boolean },
  startSeq: number,
  follow: boolean,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
    'x-trace-id': req.id,
  });
  res.flushHeaders?.();

  let closed = false;
  let lastWrite = Date.now();
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));

  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    unsubscribe?.();
    cursor.close();
    if (!res.writableEnded) res.end();
    finish();
  };

  const write = (chunk: string) => {
    if (closed) return;
    res.write(chunk);
    lastWrite = Date.now();
    // A client that cannot keep up is dropped; it resumes from its last id.
    if (res.writableLength > MAX_UNSENT_BYTES) {
      res.destroy();
      close();
    }
  };

  const cursor = new RunEventCursor(ctx.db, run.id, startSeq, (e: RunEvent) => {
    write(`id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`);
    if (TERMINAL_EVENTS.has(e.type)) close();
  }, ctx.config.sseBatchLimit);

  const heartbeatMs = ctx.config.sseHeartbeatSeconds * 1000;
  const heartbeat = setInterval(() => {
    if (Date.now() - lastWrite >= heartbeatMs) write(': ping\n\n');
  }, Math.max(50, Math.min(heartbeatMs / 2, 1000)));

  let unsubscribe: (() => void) | null = null;
  res.on('close', close);
  req.raw.on('close', close);

  if (follow && !run.terminal) {
    // Subscribe before the replay: whatever commits meanwhile is ordered by the cursor.
    unsubscribe = ctx.engine.hub.subscribe(run.id, (e) => cursor.offer(e), () => void cursor.catchUp());
  }
  try {
    await cursor.catchUp();
  } catch (err) {
    req.log.warn({ err: (err as Error).message, run_id: run.id }, 'event replay failed');
    close();
  }
  // Replay only, or the run had already ended: close once what exists is written.
  if (!follow || run.terminal) close();
  await done;
}
