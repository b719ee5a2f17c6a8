// The `arkloop` client verbs (issue 11 §1) as real child processes (src/cli/run.ts bundled once by
// helpers/cli-build.ts, so each start is Node's start-up) against a real API with a worker, listening
// on a socket, on the stub model: login and silent refresh, chat --once streaming, an approval
// answered on stdin, stream-json, a connection cut mid-stream through a TCP proxy, errors,
// threads/runs lists, runs watch, Ctrl-C and --help.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { buildCli, type CliBuild } from './helpers/cli-build.js';
import { exitWithin, freePort } from './helpers/processes.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

interface Cli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** stdout as the chunks arrived, each with its arrival time. */
  chunks: Array<{ at: number; text: string }>;
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  done(timeoutMs?: number): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

let build: CliBuild;

function cli(args: string[], env: Record<string, string>, stdin?: string): Cli {
  const child = spawn(process.execPath, [...build.entry, ...args], {
    env: { ...process.env, ARKLOOP_TOKEN: '', ARKLOOP_SERVER: '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const chunks: Cli['chunks'] = [];
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    out += d;
    chunks.push({ at: Date.now(), text: d.toString() });
    for (const w of waiters) w();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d;
    for (const w of waiters) w();
  });
  child.once('exit', () => {
    for (const w of waiters) w();
  });
  if (stdin !== undefined) child.stdin!.end(stdin);
  return {
    child,
    chunks,
    stdout: () => out,
    stderr: () => err,
    waitFor: (re, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (re.test(out + err)) finish(null);
          else if (child.exitCode !== null) finish(new Error(`exited (${child.exitCode}) before ${re}: ${out}\n${err}`));
        };
        const t = setTimeout(() => finish(new Error(`timed out waiting for ${re}: ${out}\n${err}`)), timeoutMs);
        const finish = (e: Error | null) => {
          clearTimeout(t);
          waiters.delete(check);
          if (e) reject(e);
          else resolve();
        };
        waiters.add(check);
        check();
      }),
    done: async (timeoutMs = 30_000) => {
      const code = await exitWithin(child, timeoutMs);
      return { code, stdout: out, stderr: err };
    },
  };
}

describe('arkloop client verbs', () => {
  let t: TestApp;
  let u: TestUser;
  let base: string;
  let configDir: string;
  /** Environment of a CLI signed in with the user's access token. */
  let asUser: Record<string, string>;

  before(async () => {
    build = await buildCli();
    t = await startTestApp({}, { worker: true });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
    await registerUser(t); // the platform admin
    u = await registerUser(t);
    configDir = mkdtempSync(join(tmpdir(), 'arkloop-cli-'));
    asUser = { ARKLOOP_SERVER: base, ARKLOOP_TOKEN: u.token, ARKLOOP_CONFIG_DIR: configDir };
    // A stub provider that streams slowly (chunk_delay_ms), so chunks arrive apart in time.
    const prov = await t.post('/v1/llm-providers', { name: 'slow', provider: 'stub', advanced_json: { chunk_delay_ms: 60 } }, { token: u.token });
    assert.equal(prov.status, 201, prov.text);
    const model = await t.post(`/v1/llm-providers/${prov.body.id}/models`, { model: 'stub' }, { token: u.token });
    assert.equal(model.status, 201, model.text);
    const persona = await t.post('/v1/personas', { persona_key: 'careful', display_name: 'Careful', prompt_md: 'Ask first.', tool_approval: ['echo'] }, { token: u.token });
    assert.equal(persona.status, 201, persona.text);
  });
  after(async () => {
    build?.remove();
    await t?.close();
    rmSync(configDir, { recursive: true, force: true });
  });

  async function eventsOf(runId: string): Promise<any[]> {
    const res = await t.get(`/v1/runs/${runId}/events?follow=false&limit=1000`, { token: u.token, headers: { accept: 'application/json' } });
    assert.equal(res.status, 200, res.text);
    return res.body.data;
  }
  async function latestRun(): Promise<any> {
    const res = await t.get('/v1/runs?limit=1', { token: u.token });
    return res.body[0];
  }

  it('--help on every verb, and the top-level help lists them', async () => {
    const top = await cli(['help'], {}).done();
    assert.equal(top.code, 0);
    for (const verb of ['login', 'logout', 'chat', 'threads', 'runs']) assert.match(top.stdout, new RegExp(`\\n  ${verb} `));
    const helps = await Promise.all(['login', 'logout', 'chat', 'threads', 'runs'].map((v) => cli([v, '--help'], {}).done()));
    for (const [i, verb] of ['login', 'logout', 'chat', 'threads', 'runs'].entries()) {
      assert.equal(helps[i].code, 0, verb);
      assert.match(helps[i].stdout, new RegExp(`^usage: arkloop ${verb}`), verb);
    }
    const bad = await cli(['chat', '--output', 'xml'], asUser).done();
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--output must be text or stream-json/);
  });

  it('login stores the session with mode 0600, refreshes silently, logout ends it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arkloop-login-'));
    const env = { ARKLOOP_CONFIG_DIR: dir };
    try {
      const wrong = await cli(['login', '--server', base, '--login', u.login, '--password-stdin'], env, 'not the password\n').done();
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /auth\.invalid_credentials/);

      const ok = await cli(['login', '--server', base, '--login', u.login, '--password-stdin'], env, `${u.password}\n`).done();
      assert.equal(ok.code, 0, ok.stderr);
      const file = join(dir, 'credentials.json');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const first = JSON.parse(readFileSync(file, 'utf8'));
      assert.equal(first.server, base);
      assert.ok(first.refresh_token.length > 20);

      // The stored login serves later commands (no --server, no token in the environment).
      const list = await cli(['threads', 'list', '--json'], env).done();
      assert.equal(list.code, 0, list.stderr);
      assert.ok(Array.isArray(JSON.parse(list.stdout)));

      // An expired access token is replaced through POST /v1/auth/refresh; the rotated refresh token is kept.
      writeFileSync(file, JSON.stringify({ ...first, access_expires_at: 0 }), { mode: 0o600 });
      assert.equal((await cli(['runs', 'list'], env).done()).code, 0);
      const second = JSON.parse(readFileSync(file, 'utf8'));
      assert.notEqual(second.refresh_token, first.refresh_token);
      assert.ok(second.access_expires_at > Date.now(), 'a fresh access token is stored'); // (a JWT issued in the same second may equal the old one)
      assert.equal(statSync(file).mode & 0o777, 0o600);
      // A token the API refuses (here: garbage) is refreshed once and the request retried.
      writeFileSync(file, JSON.stringify({ ...second, access_token: 'garbage' }), { mode: 0o600 });
      assert.equal((await cli(['threads', 'list'], env).done()).code, 0);
      const third = JSON.parse(readFileSync(file, 'utf8'));
      assert.notEqual(third.refresh_token, second.refresh_token);

      // Several processes refreshing at once: one rotates, the others use its result (a second
      // use of the old refresh token would revoke the whole session).
      writeFileSync(file, JSON.stringify({ ...third, access_expires_at: 0 }), { mode: 0o600 });
      const together = await Promise.all([1, 2, 3].map(() => cli(['threads', 'list'], env).done()));
      assert.deepEqual(together.map((r) => r.code), [0, 0, 0], together.map((r) => r.stderr).join('\n'));
      const fourth = JSON.parse(readFileSync(file, 'utf8'));
      assert.notEqual(fourth.refresh_token, third.refresh_token);

      const out = await cli(['logout'], env).done();
      assert.equal(out.code, 0, out.stderr);
      assert.throws(() => statSync(file));
      const refresh = await t.post('/v1/auth/refresh', { refresh_token: fourth.refresh_token });
      assert.equal(refresh.status, 401);
      const after = await cli(['threads', 'list'], env).done();
      assert.equal(after.code, 1);
      assert.match(after.stderr, /not signed in/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('chat --once streams the answer as it arrives', async () => {
    const p = cli(['chat', '--once', 'one two three four five six', '--model', 'slow^stub'], asUser);
    const res = await p.done();
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, '[stub] one two three four five six\n');
    const withText = p.chunks.filter((c) => c.text.trim());
    assert.ok(withText.length >= 3, `chunks: ${JSON.stringify(p.chunks)}`);
    assert.ok(withText.at(-1)!.at - withText[0].at >= 120, 'the chunks arrived over time');
  });

  it('asks a tool approval and an input request inline and sends the answers read from stdin', async () => {
    const steps = [{ tool_call: { name: 'echo', arguments: { text: 'hi there' } } }, { ask_input: 'your name?' }, { text: 'all done' }];
    const p = cli(['chat', '--once', JSON.stringify({ stub: { steps } }), '--persona', 'careful', '--model', 'stub'], asUser);
    await p.waitFor(/approve echo\(\{"text":"hi there"\}\)\? \[y\/n\] $/);
    p.child.stdin!.write('maybe\n'); // not an answer: asked again
    await p.waitFor(/maybe\napprove echo\(\{"text":"hi there"\}\)\? \[y\/n\] $/);
    p.child.stdin!.write('y\n');
    await p.waitFor(/your name\?\n> $/);
    p.child.stdin!.write('Bob\n');
    const res = await p.done();
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /⚙ echo\(\{"text":"hi there"\}\)\n/);
    assert.match(res.stdout, /↳ \{"text":"hi there"\}\nyour name\?\n> Bob\nall done\n$/);
    const events = await eventsOf((await latestRun()).run_id);
    const provided = events.filter((e) => e.type === 'run.input_provided').map((e) => e.data.decision ?? e.data.content);
    assert.deepEqual(provided, ['approve', 'Bob']);
    assert.equal(events.at(-1).type, 'run.completed');
  });

  it('an interactive session (lines from stdin) keeps one thread; a denied tool is reported', async () => {
    const deny = JSON.stringify({ stub: { steps: [{ tool_call: { name: 'echo', arguments: { text: 'no' } } }, { text: 'ok then' }] } });
    const res = await cli(['chat', '--persona', 'careful', '--model', 'stub'], asUser, `first message\n${deny}\nn\n/exit\n`).done();
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^you> first message\n\[stub\] first message\nyou> \{"stub"/);
    assert.match(res.stdout, /\[y\/n\] n\n  ✗ echo not run: .*\nok then\nyou> \/exit\n$/);
    const threadId = /\(thread ([0-9a-f-]{36})\)/.exec(res.stderr)![1];
    const messages = await t.get(`/v1/threads/${threadId}/messages`, { token: u.token });
    assert.deepEqual(
      messages.body.map((m: any) => m.role),
      ['user', 'assistant', 'user', 'assistant'],
    );
  });

  it('--output stream-json prints one event per line, seqs from 1 without gaps', async () => {
    const script = JSON.stringify({ stub: { steps: [{ tool_call: { name: 'echo', arguments: { text: 'x' } } }, { text: 'finished' }] } });
    const res = await cli(['chat', '--once', script, '--output', 'stream-json'], asUser).done();
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trimEnd().split('\n');
    const events = lines.map((l) => JSON.parse(l));
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
    );
    assert.equal(events[0].type, 'run.started');
    assert.equal(events.at(-1).type, 'run.completed');
    assert.ok(events.some((e) => e.type === 'tool.result' && e.data.tool_name === 'echo'));
    assert.deepEqual(events, await eventsOf(events[0].run_id));
  });

  it('an al_ API key in ARKLOOP_TOKEN works for scripts', async () => {
    const key = await t.post('/v1/api-keys', { name: 'cli script' }, { token: u.token });
    assert.equal(key.status, 201, key.text);
    const res = await cli(['chat', '--once', 'from a script', '--output', 'stream-json'], { ...asUser, ARKLOOP_TOKEN: key.body.key }).done();
    assert.equal(res.code, 0, res.stderr);
    const events = res.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.equal(events.filter((e) => e.type === 'message.delta').map((e) => e.data.content_delta).join(''), '[stub] from a script');
    const revoked = await t.del(`/v1/api-keys/${key.body.id}`, { token: u.token });
    assert.ok(revoked.status < 300, revoked.text);
    const refused = await cli(['runs', 'list'], { ...asUser, ARKLOOP_TOKEN: key.body.key }).done();
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /\(auth\.unauthorized, HTTP 401\)/);
  });

  it('resumes a cut connection with Last-Event-ID: no repeated or missing text', async () => {
    const port = Number(new URL(base).port);
    const proxy = new TcpProxy('127.0.0.1', port);
    await proxy.start();
    try {
      const words = Array.from({ length: 16 }, (_, i) => `w${i}`).join(' ');
      const p = cli(['chat', '--once', words, '--model', 'slow^stub'], { ...asUser, ARKLOOP_SERVER: `http://127.0.0.1:${proxy.port}` });
      await p.waitFor(/\[stub\] w0 w1 /);
      await proxy.cut();
      await new Promise((r) => setTimeout(r, 250));
      await proxy.restore();
      const res = await p.done();
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout, `[stub] ${words}\n`);
      assert.match(res.stderr, /connection lost: .*resuming/);
    } finally {
      await proxy.close();
    }
  });

  it('errors: the API message and code, and a non-zero exit', async () => {
    const badToken = await cli(['threads', 'list'], { ...asUser, ARKLOOP_TOKEN: 'not-a-token' }).done();
    assert.equal(badToken.code, 1);
    assert.match(badToken.stderr, /\(auth\.unauthorized, HTTP 401\)/);
    const noThread = await cli(['chat', '--once', 'hi', '--thread', '01900000-0000-7000-8000-000000000000'], asUser).done();
    assert.equal(noThread.code, 1);
    assert.match(noThread.stderr, /thread not found \(threads\.not_found, HTTP 404\)/);
    const failed = await cli(['chat', '--once', JSON.stringify({ stub: { steps: [{ error: { status: 400, message: 'bad request upstream' } }] } })], asUser).done();
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /run failed: .*\(provider\./);
    const unreachable = await cli(['runs', 'list'], { ...asUser, ARKLOOP_SERVER: `http://127.0.0.1:${await freePort()}` }).done();
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach the server: ECONNREFUSED/);
  });

  it('threads list, runs list, and runs watch of a run started elsewhere', async () => {
    const th = await t.post('/v1/threads', { title: 'watched thread' }, { token: u.token });
    const script = { stub: { steps: [{ ask_input: 'go on?' }, { text: 'alpha beta gamma delta' }] } };
    await t.post(`/v1/threads/${th.body.id}/messages`, { content: JSON.stringify(script) }, { token: u.token });
    const run = await t.post(`/v1/threads/${th.body.id}/runs`, { model: 'slow^stub' }, { token: u.token });
    assert.equal(run.status, 201, run.text);
    const runId = run.body.run_id;

    // The run waits for input; watch follows it live (stdin is no terminal: it only shows the wait).
    const watch = cli(['runs', 'watch', runId], asUser);
    await watch.waitFor(/\(waiting for input: go on\?\)/);
    const input = await t.post(`/v1/runs/${runId}/input`, { content: 'yes' }, { token: u.token });
    assert.equal(input.status, 200, input.text);
    const watched = await watch.done();
    assert.equal(watched.code, 0, watched.stderr);
    assert.equal(watched.stdout, 'alpha beta gamma delta\n');

    const threads = await cli(['threads', 'list'], asUser).done();
    assert.equal(threads.code, 0, threads.stderr);
    assert.match(threads.stdout.split('\n')[1], new RegExp(`^${th.body.id} .* watched thread$`));
    const runs = await cli(['runs', 'list', '--thread', th.body.id, '--json'], asUser).done();
    assert.equal(runs.code, 0, runs.stderr);
    assert.deepEqual(
      JSON.parse(runs.stdout).map((r: any) => [r.run_id, r.status]),
      [[runId, 'completed']],
    );
    const table = await cli(['runs', 'list', '--status', 'completed', '--limit', '2'], asUser).done();
    assert.match(table.stdout, /^RUN +STATUS/);
    assert.equal(table.stdout.trimEnd().split('\n').length, 3);
    const missing = await cli(['runs', 'watch', '01900000-0000-7000-8000-000000000000'], asUser).done();
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /runs\.not_found/);
  });

  it('Ctrl-C cancels the run through the API', async () => {
    const words = Array.from({ length: 40 }, (_, i) => `c${i}`).join(' ');
    const p = cli(['chat', '--once', words, '--model', 'slow^stub'], asUser);
    await p.waitFor(/c1 /);
    p.child.kill('SIGINT');
    const res = await p.done();
    assert.equal(res.code, 130, res.stderr);
    assert.match(res.stderr, /cancelling the run/);
    const run = await latestRun();
    assert.equal(run.status, 'cancelled');
    assert.ok(!res.stdout.includes('c39'));

    // At an approval question: the question is dropped and the run cancelled.
    const script = JSON.stringify({ stub: { steps: [{ tool_call: { name: 'echo', arguments: { text: 'x' } } }, { text: 'never' }] } });
    const q = cli(['chat', '--once', script, '--persona', 'careful', '--model', 'stub'], asUser);
    await q.waitFor(/\[y\/n\] $/);
    q.child.kill('SIGINT');
    const asked = await q.done();
    assert.equal(asked.code, 130, asked.stderr);
    assert.match(asked.stderr, /\(run cancelled\)/);
    assert.equal((await latestRun()).status, 'cancelled');
  });
});
