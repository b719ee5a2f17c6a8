// MCP servers as run tools (api.md §27.5): stub-scripted runs call tools of real MCP servers —
// server-everything over stdio and over streamable HTTP, and the misbehaving test server
// (helpers/mcp-test-server.mjs) — and get the real results or exactly the mcp.* error classes;
// stdio servers are pooled, restarted after they die, started with only their configured env,
// replaced when their config changes (in this process and, through NOTIFY, in another one)
// and stopped when it is deleted.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { openDatabase } from '../src/db/database.js';
import { createWorkspace } from './helpers/accounts-fixtures.js';
import { EVERYTHING_BIN, TEST_SERVER_BIN, isAlive, startEverythingHttp, stdioConfig, waitGone, type HttpMcpServer } from './helpers/mcp.js';
import { closeMcp, mcpServerPid, mcpTools } from '../src/mcp/runtime.js';
import { mcpToolName } from '../src/mcp/naming.js';

const ENV = { ARKLOOP_FEATURE_MCP_REMOTE_ENABLED: 'true', ARKLOOP_SECURITY_SSRF_ALLOW_PRIVATE: 'true' };

function frames(text: string): any[] {
  return text
    .split('\n\n')
    .filter((f) => f.startsWith('id: '))
    .map((f) => JSON.parse(f.split('\n')[1].slice(6)));
}

type Step = { tool_call: { name: string; arguments: Record<string, unknown> } } | { text: string };
const call = (name: string, args: Record<string, unknown> = {}): Step => ({ tool_call: { name, arguments: args } });

describe('MCP tools in runs', () => {
  let t: TestApp;
  let root: TestUser; // platform admin: may create stdio configs
  let other: TestUser;
  let http: HttpMcpServer | null = null;
  let sse: HttpMcpServer | null = null;
  const ids: Record<string, string> = {};

  async function createConfig(body: Record<string, unknown>, u = root, headers: Record<string, string> = {}): Promise<string> {
    const res = await t.post('/v1/mcp-configs', body, { token: u.token, headers });
    assert.equal(res.status, 201, res.text);
    return res.body.id;
  }

  /** Runs a stub script and returns its events. */
  async function run(steps: Step[], u = root) {
    const th = await t.post('/v1/threads', {}, { token: u.token });
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: JSON.stringify({ stub: { steps } }) }, { token: u.token });
    const created = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: u.token });
    assert.equal(created.status, 201, created.text);
    const sse = await t.get(`/v1/runs/${created.body.run_id}/events`, { token: u.token });
    const events = frames(sse.text);
    assert.equal(events.at(-1)?.type, 'run.completed', JSON.stringify(events.at(-1)));
    return events;
  }
  const results = (events: any[]) => events.filter((e) => e.type === 'tool.result' || e.type === 'tool.denied').map((e) => e.data);

  before(async () => {
    t = await startTestApp(ENV, { worker: true });
    root = await registerUser(t);
    other = await registerUser(t);
    ids.everything = await createConfig(stdioConfig('everything', EVERYTHING_BIN, ['stdio']));
    ids.test = await createConfig(stdioConfig('test', TEST_SERVER_BIN, [], { env: { ONLY_THIS: 'yes' }, call_timeout_ms: 1000 }));
    // The same server with a roomy call timeout for the stdout flood: reading 4 MiB before the
    // limit trips must not race `test`'s 1 s timeout on a loaded machine.
    ids.flood = await createConfig(stdioConfig('flood', TEST_SERVER_BIN, [], { call_timeout_ms: 15000 }));
    // A server that cannot start: left out of every run, never in the way of the others.
    ids.broken = await createConfig({ name: 'broken', transport: 'stdio', command: '/nonexistent/mcp-server' });
  });
  after(async () => {
    await http?.stop();
    await sse?.stop();
    await closeMcp(t.ctx);
    await t.close();
  });

  it('a run calls a tool of server-everything over stdio and gets its real result', async (tc) => {
    const events = await run([call('mcp__everything__echo', { message: 'hi' }), call('mcp__everything__echo', { message: 'again' }), call('mcp__everything__get-structured-content', { location: 'Chicago' }), { text: 'done' }]);
    const callEvent = events.find((e) => e.type === 'tool.call').data;
    assert.equal(callEvent.tool_name, 'mcp__everything__echo');
    assert.equal(callEvent.source, 'mcp');
    const [echo, again, structured] = results(events);
    assert.equal(echo.result, 'Echo: hi');
    assert.equal(echo.error, null);
    assert.equal(again.result, 'Echo: again');
    assert.deepEqual(Object.keys(structured.result).sort(), ['conditions', 'humidity', 'temperature']);
    assert.equal(structured.error, null);
    tc.diagnostic(`stdio tool.call → tool.result: first call ${echo.duration_ms} ms, second (warm) ${again.duration_ms} ms`);
    // Another account's runs are not offered this account's tools.
    const theirs = results(await run([call('mcp__everything__echo', { message: 'hi' }), { text: 'done' }], other));
    assert.equal(theirs[0].error_class, 'policy.tool_denied');
  });

  it('a run calls a tool of server-everything over streamable HTTP', async () => {
    http = await startEverythingHttp();
    await createConfig({ name: 'remote', transport: 'streamable_http', url: http.url });
    const [echo] = results(await run([call('mcp__remote__echo', { message: 'over http' }), { text: 'done' }]));
    assert.equal(echo.result, 'Echo: over http');
    assert.equal(echo.error, null);
    // The session is reused by the next run.
    const [again] = results(await run([call('mcp__remote__echo', { message: 'twice' }), { text: 'done' }]));
    assert.equal(again.result, 'Echo: twice');
  });

  it('a run calls a tool of server-everything over HTTP with SSE (http_sse)', async () => {
    sse = await startEverythingHttp('sse');
    await createConfig({ name: 'legacy', transport: 'http_sse', url: sse.url });
    const [echo] = results(await run([call('mcp__legacy__echo', { message: 'over sse' }), { text: 'done' }]));
    assert.equal(echo.result, 'Echo: over sse');
    assert.equal(echo.error, null);
  });

  it('each failure comes back as its mcp.* class in tool.result, never failing the run', async () => {
    const events = await run([
      call('mcp__test__echo', { text: 'ok' }),
      call('mcp__test__fail'),
      call('mcp__test__rpc_error'),
      call('mcp__test__malformed'),
      call('mcp__test__hang'),
      call('mcp__test__structured'),
      call('mcp__test__stderr_flood'),
      call('mcp__flood__stdout_flood'),
      call('mcp__flood__echo', { text: 'still here' }),
      { text: 'done' },
    ]);
    const [echo, fail, rpc, malformed, hang, structured, flood, stdoutFlood, afterFlood] = results(events);
    assert.equal(echo.result, 'echo: ok');
    assert.equal(fail.error.error_class, 'mcp.tool_error');
    assert.match(fail.error.message, /it failed on purpose/);
    assert.equal(fail.result, 'it failed on purpose', 'the isError content is passed along');
    assert.equal(rpc.error.error_class, 'mcp.rpc_error');
    assert.match(rpc.error.message, /broke on purpose/);
    assert.equal(malformed.error.error_class, 'mcp.protocol_error');
    assert.equal(hang.error.error_class, 'mcp.timeout');
    assert.ok(hang.duration_ms >= 900 && hang.duration_ms < 5000, `hang took ${hang.duration_ms} ms`);
    assert.deepEqual(structured.result, { answer: 42 });
    assert.equal(flood.result, 'flooded', 'a server flooding stderr still answers');
    assert.equal(stdoutFlood.error.error_class, 'mcp.disconnected', 'a message over the size limit closes the connection');
    assert.equal(afterFlood.result, 'echo: still here', 'and the server is started again');
    assert.ok(events.some((e) => e.type === 'run.completed'));
  });

  it('a stdio server gets only its configured env, unless inherit_parent_env', async () => {
    const [env] = results(await run([call('mcp__test__env'), { text: 'done' }]));
    const vars = JSON.parse(env.result);
    assert.equal(vars.ONLY_THIS, 'yes');
    for (const name of ['PATH', 'HOME', 'USER', 'ARKLOOP_FEATURE_MCP_REMOTE_ENABLED']) assert.ok(!(name in vars), `${name} leaked into the server's env`);
    const id = await createConfig(stdioConfig('inherit', TEST_SERVER_BIN, [], { env: { EXTRA: '1' }, inherit_parent_env: true }));
    const [inherited] = results(await run([call('mcp__inherit__env'), { text: 'done' }]));
    const all = JSON.parse(inherited.result);
    assert.equal(all.EXTRA, '1');
    assert.equal(all.PATH, process.env.PATH);
    await t.del(`/v1/mcp-configs/${id}`, { token: root.token });
  });

  it('a server that exits mid-call answers mcp.disconnected and is restarted on next use', async (tc) => {
    const events = await run([call('mcp__test__pid'), call('mcp__test__exit'), call('mcp__test__pid'), call('mcp__test__pid'), { text: 'done' }]);
    const [before, exit, after, warm] = results(events);
    assert.equal(exit.error.error_class, 'mcp.disconnected');
    const [pid1, pid2] = [Number(before.result), Number(after.result)];
    assert.ok(pid1 > 0 && pid2 > 0);
    assert.notEqual(pid1, pid2, 'a new process answers');
    assert.equal(Number(warm.result), pid2, 'and is reused');
    assert.ok(!isAlive(pid1));
    tc.diagnostic(`stdio tool.call → tool.result: cold (process restarted in the call) ${after.duration_ms} ms, warm ${warm.duration_ms} ms`);
  });

  it('stdio servers are pooled across runs', async () => {
    const [a] = results(await run([call('mcp__test__pid'), { text: 'done' }]));
    const [b] = results(await run([call('mcp__test__pid'), { text: 'done' }]));
    assert.equal(a.result, b.result);
    assert.equal(await mcpServerPid(t.ctx, ids.test), Number(a.result));
  });

  it('a config edited between two runs: the next run uses the new tool list (and a new process)', async () => {
    const id = await createConfig(stdioConfig('switch', TEST_SERVER_BIN, [], { env: { MCP_TEST_TOOLS: 'echo,pid' } }));
    const first = results(await run([call('mcp__switch__pid'), call('mcp__switch__structured'), { text: 'done' }]));
    assert.equal(first[1].error_class, 'policy.tool_denied');
    const pid1 = Number(first[0].result);
    const res = await t.patch(`/v1/mcp-configs/${id}`, { env: { MCP_TEST_TOOLS: 'structured,pid' } }, { token: root.token });
    assert.equal(res.status, 200, res.text);
    assert.ok(await waitGone(pid1), 'the old process is stopped');
    const second = results(await run([call('mcp__switch__structured'), call('mcp__switch__echo', { text: 'x' }), call('mcp__switch__pid'), { text: 'done' }]));
    assert.deepEqual(second[0].result, { answer: 42 });
    assert.equal(second[1].error_class, 'policy.tool_denied');
    assert.notEqual(Number(second[2].result), pid1);
    // Deactivated: no longer offered.
    await t.patch(`/v1/mcp-configs/${id}`, { is_active: false }, { token: root.token });
    const third = results(await run([call('mcp__switch__pid'), { text: 'done' }]));
    assert.equal(third[0].error_class, 'policy.tool_denied');
  });

  it('a deleted config: its process is gone, its tools no longer offered', async () => {
    const id = await createConfig(stdioConfig('doomed', TEST_SERVER_BIN));
    const [p] = results(await run([call('mcp__doomed__pid'), { text: 'done' }]));
    const pid = Number(p.result);
    assert.ok(isAlive(pid));
    assert.equal((await t.del(`/v1/mcp-configs/${id}`, { token: root.token })).status, 204);
    assert.ok(await waitGone(pid), `process ${pid} still running after its config was deleted`);
    assert.equal(await mcpServerPid(t.ctx, id), null);
    const [denied] = results(await run([call('mcp__doomed__pid'), { text: 'done' }]));
    assert.equal(denied.error_class, 'policy.tool_denied');
  });

  it('another process drops its cached tools and stops its server when a config changes (NOTIFY)', async () => {
    // In a workspace of its own, so the other process discovers only this server.
    const ws = (await createWorkspace(t, root)).id;
    const id = await createConfig(stdioConfig('shared', TEST_SERVER_BIN, [], { env: { MCP_TEST_TOOLS: 'pid' } }), root, { 'x-account-id': ws });
    // On PostgreSQL the other process has connections of its own (its own LISTEN); the embedded
    // database is one instance, shared.
    const database = t.db.url ? await openDatabase({ databaseUrl: t.db.url, dataDir: null, poolSize: 2 }) : t.db.database;
    const second = await startTestApp(ENV, { database });
    try {
      const log = pino({ level: 'silent' });
      const tools = await mcpTools(second.ctx, ws, log);
      const pidTool = tools.find((x) => x.name === 'mcp__shared__pid');
      assert.ok(pidTool, tools.map((x) => x.name).join(','));
      assert.ok(!tools.some((x) => x.name === 'mcp__shared__echo'));
      const pid = await mcpServerPid(second.ctx, id);
      assert.ok(pid && isAlive(pid));
      const res = await t.patch(`/v1/mcp-configs/${id}`, { env: { MCP_TEST_TOOLS: 'pid,echo' } }, { token: root.token, headers: { 'x-account-id': ws } });
      assert.equal(res.status, 200);
      assert.ok(await waitGone(pid!), 'the other process stopped its server');
      const after = await mcpTools(second.ctx, ws, log);
      assert.ok(after.some((x) => x.name === 'mcp__shared__echo'), 'the other process discovers the new tool list');
    } finally {
      await closeMcp(second.ctx);
      await second.close();
      if (database !== t.db.database) await database.close();
    }
  });

  it('names: lowercased config part, other characters → _, cut to 64 with a hash suffix', () => {
    assert.equal(mcpToolName('My GitHub!', 'create_issue'), 'mcp__my_github___create_issue');
    assert.equal(mcpToolName('a', 'do.it/now'), 'mcp__a__do_it_now');
    const long = mcpToolName('x'.repeat(100), 'tool');
    assert.equal(long.length, 64);
    assert.match(long, /^mcp__x+_[0-9a-f]{8}$/);
    assert.notEqual(mcpToolName('x'.repeat(100), 'tool'), mcpToolName('x'.repeat(100), 'tool2'));
    assert.equal(mcpToolName('x'.repeat(100), 'tool'), long, 'stable');
  });
});
