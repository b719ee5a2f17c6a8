// The event stream as a client on a real socket sees it: headers flushed at once, live
// frames, heartbeats while idle, resume with Last-Event-ID, Accept-negotiated run detail.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';

interface Frame { id?: number; data?: any; comment?: string }

async function readFrames(url: string, headers: Record<string, string>, until: (frames: Frame[]) => boolean, timeoutMs = 5000): Promise<{ frames: Frame[]; status: number; headers: Headers }> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  const res = await fetch(url, { headers, signal: ctrl.signal });
  const frames: Frame[] = [];
  let buf = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const raw = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (raw.startsWith(':')) frames.push({ comment: raw.slice(1).trim() });
        else {
          const lines = raw.split('\n');
          frames.push({ id: Number(lines[0].slice(4)), data: JSON.parse(lines[1].slice(6)) });
        }
      }
      if (until(frames)) break;
    }
  } catch (err) {
    if (!ctrl.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    ctrl.abort();
  }
  return { frames, status: res.status, headers: res.headers };
}

describe('run event stream over a socket', () => {
  let t: TestApp;
  let u: TestUser;
  let base: string;
  before(async () => {
    t = await startTestApp({ ARKLOOP_SSE_HEARTBEAT_SECONDS: '0.1' }, { worker: true });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
    await registerUser(t);
    u = await registerUser(t);
  });
  after(async () => { await t.close(); });

  async function start(script: unknown): Promise<string> {
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: JSON.stringify(script) }, { token: u.token });
    const { body } = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    return body.run_id;
  }

  it('sends heartbeats while a run waits, then live events after input', async () => {
    const runId = await start({ stub: { steps: [{ ask_input: 'continue?' }, { text: 'resumed fine' }] } });
    const auth = { authorization: `Bearer ${u.token}` };
    const waiting = await readFrames(`${base}/v1/runs/${runId}/events`, auth, (f) => f.filter((x) => x.comment === 'ping').length >= 2);
    assert.equal(waiting.status, 200);
    assert.match(String(waiting.headers.get('content-type')), /text\/event-stream/);
    assert.ok(waiting.frames.some((f) => f.data?.type === 'run.waiting_for_input'));
    assert.ok(waiting.frames.filter((f) => f.comment === 'ping').length >= 2);
    const lastId = Math.max(...waiting.frames.filter((f) => f.id).map((f) => f.id!));

    // Resume from the last id, as a reconnecting EventSource does, then answer.
    const follow = readFrames(`${base}/v1/runs/${runId}/events`, { ...auth, 'last-event-id': String(lastId) }, (f) => f.some((x) => x.data?.type === 'run.completed'));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await t.post(`/v1/runs/${runId}/input`, { content: 'yes' }, { token: u.token })).status, 200);
    const rest = await follow;
    const ids = rest.frames.filter((f) => f.id).map((f) => f.id!);
    assert.equal(ids[0], lastId + 1);
    assert.deepEqual(ids, ids.map((_, i) => lastId + 1 + i));
    assert.equal(rest.frames.at(-1)!.data.type, 'run.completed');
    assert.equal(rest.frames[rest.frames.findIndex((f) => f.id) ].data.type, 'run.input_provided');
  });

  it('a burst of streams with a token seen for the first time: every stream gets its events exactly once', async () => {
    // The opens share the credential lookup and, per run and start point, the replay read;
    // none of that may cost a stream an event (or give it one twice).
    const runs = [await start({ stub: { steps: [{ ask_input: 'a?' }, { text: 'done a' }] } }), await start({ stub: { steps: [{ ask_input: 'b?' }, { text: 'done b' }] } })];
    const lastSeqs: number[] = [];
    for (const runId of runs) {
      for (;;) {
        const r = await t.get(`/v1/runs/${runId}/events`, { token: u.token, headers: { accept: 'application/json' } });
        if (r.body.status === 'waiting_for_input') { lastSeqs.push(r.body.last_seq); break; }
        await new Promise((res) => setTimeout(res, 20));
      }
    }
    const login = await t.post('/v1/auth/login', { login: u.login, password: u.password });
    assert.equal(login.status, 200);
    const auth = { authorization: `Bearer ${login.body.access_token}` };
    const opens = Array.from({ length: 60 }, (_, i) => {
      const run = i % 2;
      const from = [0, 1, lastSeqs[run]][i % 3];
      const read = readFrames(`${base}/v1/runs/${runs[run]}/events`, { ...auth, 'last-event-id': String(from) }, (f) => f.some((x) => x.data?.type === 'run.completed'), 15000);
      return read.then((r) => ({ r, from }));
    });
    await new Promise((r) => setTimeout(r, 300));
    for (const runId of runs) assert.equal((await t.post(`/v1/runs/${runId}/input`, { content: 'go' }, { token: u.token })).status, 200);
    for (const { r, from } of await Promise.all(opens)) {
      assert.equal(r.status, 200);
      const ids = r.frames.filter((f) => f.id).map((f) => f.id!);
      assert.deepEqual(ids, ids.map((_, i) => from + 1 + i));
      assert.equal(r.frames.filter((f) => f.id).at(-1)!.data.type, 'run.completed');
    }
  });

  it('opens in the same turn by two accounts never share a read: the other account gets 404', async () => {
    const runId = await start({ stub: { steps: [{ ask_input: 'private?' }, { text: 'done' }] } });
    const other = await registerUser(t);
    const [mine, theirs] = await Promise.all([
      readFrames(`${base}/v1/runs/${runId}/events`, { authorization: `Bearer ${u.token}` }, (f) => f.some((x) => x.data?.type === 'run.waiting_for_input')),
      fetch(`${base}/v1/runs/${runId}/events`, { headers: { authorization: `Bearer ${other.token}`, accept: 'text/event-stream' } }),
    ]);
    assert.equal(mine.status, 200);
    assert.equal(theirs.status, 404);
    assert.equal(((await theirs.json()) as { code: string }).code, 'runs.not_found');
  });

  it('GET /v1/runs/{id} with Accept: text/event-stream is the stream; ?access_token works', async () => {
    const runId = await start({ stub: { steps: [{ text: 'short' }] } });
    const viaAccept = await readFrames(`${base}/v1/runs/${runId}?access_token=${u.token}`, { accept: 'text/event-stream' }, (f) => f.some((x) => x.data?.type === 'run.completed'));
    assert.equal(viaAccept.status, 200);
    assert.equal(viaAccept.frames.filter((f) => f.id)[0].data.type, 'run.started');
    const json = await fetch(`${base}/v1/runs/${runId}`, { headers: { authorization: `Bearer ${u.token}` } });
    assert.equal((await json.json()).status, 'completed');
    const denied = await fetch(`${base}/v1/runs/${runId}/events`);
    assert.equal(denied.status, 401);
    assert.equal((await denied.json()).code, 'auth.unauthorized');
  });

  it('HEAD on the stream of a waiting run answers its headers at once; on another account\'s run 404', async () => {
    const runId = await start({ stub: { steps: [{ ask_input: 'hold' }] } });
    const head = await fetch(`${base}/v1/runs/${runId}/events`, { method: 'HEAD', headers: { authorization: `Bearer ${u.token}` }, signal: AbortSignal.timeout(2000) });
    assert.equal(head.status, 200);
    assert.match(String(head.headers.get('content-type')), /text\/event-stream/);
    const stranger = await registerUser(t);
    const foreign = await fetch(`${base}/v1/runs/${runId}/events`, { method: 'HEAD', headers: { authorization: `Bearer ${stranger.token}` }, signal: AbortSignal.timeout(2000) });
    assert.equal(foreign.status, 404);
    await t.post(`/v1/runs/${runId}:cancel`, undefined, { token: u.token });
  });

  it('drops a client that stops reading once more than 1 MiB is unsent', async () => {
    const runId = await start({ stub: { steps: [{ ask_input: 'hold' }] } });
    for (let i = 0; i < 100 && (await t.get(`/v1/runs/${runId}`, { token: u.token })).body.status !== 'waiting_for_input'; i++) await new Promise((r) => setTimeout(r, 20));
    const { connect } = await import('node:net');
    const port = (t.app.server.address() as { port: number }).port;
    const socket = connect(port, '127.0.0.1');
    socket.pause(); // never reads
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`GET /v1/runs/${runId}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${u.token}\r\n\r\n`);
    for (let i = 0; i < 100 && t.ctx.engine.hub.subscriptions === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(t.ctx.engine.hub.subscriptions, 1);
    const big = 'x'.repeat(256 * 1024);
    let dropped = false;
    for (let i = 0; i < 400 && !dropped; i++) {
      await t.ctx.engine.append(t.ctx.db, runId, 'test.big', { big });
      dropped = t.ctx.engine.hub.subscriptions === 0;
    }
    for (let i = 0; i < 100 && !dropped; i++) {
      await new Promise((r) => setTimeout(r, 20));
      dropped = t.ctx.engine.hub.subscriptions === 0;
    }
    socket.destroy();
    assert.ok(dropped, 'the slow stream was dropped');
    // The events stay in the table: a client resumes from its last id.
    const ev = await t.get(`/v1/runs/${runId}/events?limit=1000`, { token: u.token, headers: { accept: 'application/json' } });
    assert.ok(ev.body.data.filter((e: any) => e.type === 'test.big').length >= 4); // ≥ 1 MiB was written before the drop
  });
});
