// Personas through HTTP (api.md §10): CRUD in account and platform scope, validation of every
// field, tenancy and platform visibility, audit rows, the selectable list resolved
// org > platform > built-in, and runs that execute with a stored persona's fields (prompt,
// role override, tools, budgets, model selector, preferred credential) on a local upstream.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { auditRows, createWorkspace, inAccount, joinAccount, NIL_UUID } from './helpers/accounts-fixtures.js';
import { expectError, expectFieldError } from './helpers/assert.js';
import { chatTextStream, startFakeLlm, type FakeLlm } from './helpers/fake-llm.js';

const base = { display_name: 'Helper', prompt_md: 'You help.' };

describe('personas API', () => {
  let t: TestApp;
  let padmin: TestUser;
  let owner: TestUser;
  let member: TestUser;
  let stranger: TestUser;
  let ws: string;
  let openai: FakeLlm;

  before(async () => {
    openai = await startFakeLlm();
    t = await startTestApp({}, { worker: true });
    padmin = await registerUser(t);
    [owner, member, stranger] = [await registerUser(t), await registerUser(t), await registerUser(t)];
    ws = (await createWorkspace(t, owner)).id;
    await joinAccount(t, owner, ws, member, 'member');
  });
  after(async () => {
    await t.close();
    await openai.close();
  });

  const asOwner = () => inAccount(owner, ws);
  const asMember = () => inAccount(member, ws);
  async function ok(res: { status: number; text: string; body: any }, status = 201) {
    assert.equal(res.status, status, res.text);
    return res.body;
  }
  const create = (body: Record<string, unknown>, opts = asOwner()) => t.post('/v1/personas', { ...base, ...body }, opts);

  it('creates an account persona with the contract defaults and audits it', async () => {
    const p = await ok(await create({ persona_key: 'writer', description: 'Writes.' }));
    assert.deepEqual(
      { ...p, id: undefined, created_at: undefined, updated_at: undefined },
      {
        id: undefined, org_id: ws, scope: 'org', persona_key: 'writer', version: '1', display_name: 'Helper', description: 'Writes.', prompt_md: 'You help.',
        tool_allowlist: null, tool_denylist: [], tool_approval: [],
        budgets: { max_iterations: null, max_output_tokens: null, temperature: null, top_p: null, tool_continuation_budget: null, per_tool_soft_limits: {} },
        model: null, preferred_credential: null, reasoning_mode: null, stream_thinking: true, prompt_cache_control: null,
        executor_type: 'agent.simple', roles: {}, is_active: true, created_at: undefined, updated_at: undefined,
      },
    );
    const rows = await auditRows(t, 'persona.create', ws);
    assert.equal(rows.at(-1)!.target_id, p.id);
    const got = await ok(await t.get(`/v1/personas/${p.id}`, asMember()), 200);
    assert.equal(got.persona_key, 'writer');
  });

  it('a key and version are unique per scope and account: 409 personas.exists; another version or account is fine', async () => {
    await ok(await create({ persona_key: 'dup' }));
    expectError(await create({ persona_key: 'dup' }), 409, 'personas.exists');
    await ok(await create({ persona_key: 'dup', version: '2' }));
    await ok(await create({ persona_key: 'dup' }, { token: stranger.token, headers: {} }));
    await ok(await create({ scope: 'platform', persona_key: 'dup' }, { token: padmin.token, headers: {} }));
  });

  it('validates every field with a 400 naming it', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ persona_key: 'Bad Key' }, 'persona_key'],
      [{ persona_key: '-x' }, 'persona_key'],
      [{ persona_key: 'ok', version: 'a b' }, 'version'],
      [{ persona_key: 'ok', display_name: '  ' }, 'display_name'],
      [{ persona_key: 'ok', prompt_md: 'x'.repeat(64 * 1024 + 1) }, 'prompt_md'],
      [{ persona_key: 'ok', prompt_md: 'é'.repeat(33 * 1024) }, 'prompt_md'],
      [{ persona_key: 'ok', model: 'a^b^c' }, 'model'],
      [{ persona_key: 'ok', model: 'prov^' }, 'model'],
      [{ persona_key: 'ok', tool_allowlist: ['we*b'] }, 'tool_allowlist[0]'],
      [{ persona_key: 'ok', tool_denylist: 'echo' }, 'tool_denylist'],
      [{ persona_key: 'ok', tool_approval: [''] }, 'tool_approval.0'],
      [{ persona_key: 'ok', budgets: { max_iterations: 0 } }, 'budgets.max_iterations'],
      [{ persona_key: 'ok', budgets: { temperature: 3 } }, 'budgets.temperature'],
      [{ persona_key: 'ok', budgets: { max_iterations: 2, reasoning_iterations: 3 } }, 'budgets.reasoning_iterations'],
      [{ persona_key: 'ok', budgets: { bogus: 1 } }, 'budgets'],
      [{ persona_key: 'ok', reasoning_mode: 'max' }, 'reasoning_mode'],
      [{ persona_key: 'ok', prompt_cache_control: 'always' }, 'prompt_cache_control'],
      [{ persona_key: 'ok', executor_type: 'agent.graph' }, 'executor_type'],
      [{ persona_key: 'ok', roles: { guest: {} } }, 'roles'],
      [{ persona_key: 'ok', roles: { member: { model: 'a^^b' } } }, 'roles.member.model'],
      [{ persona_key: 'ok', stream_thinking: 'yes' }, 'stream_thinking'],
      [{ persona_key: 'ok', scope: 'global' }, 'scope'],
    ];
    for (const [body, field] of cases) {
      const res = await create(body);
      assert.equal(res.status, 400, `${JSON.stringify(body).slice(0, 80)} → ${res.status} ${res.text.slice(0, 200)}`);
      assert.equal(res.body.code, 'validation.error');
      const fields = (res.body.details?.fields ?? []).map((f: { field: string }) => f.field).join(',');
      assert.ok(fields.startsWith(field) || fields.includes(field), `${JSON.stringify(body).slice(0, 60)}: expected ${field}, got ${fields}`);
    }
    expectFieldError(await t.post('/v1/personas', { persona_key: 'ok' }, asOwner()), 'display_name');
  });

  it('the alias reasoning_iterations sets max_iterations; role overrides keep only what they set', async () => {
    const p = await ok(await create({
      persona_key: 'aliased', budgets: { reasoning_iterations: 4 },
      roles: { member: { prompt_append: 'Be brief.', tool_allowlist: null, budgets: { max_output_tokens: 50 } } },
    }));
    assert.equal(p.budgets.max_iterations, 4);
    assert.deepEqual(p.roles, { member: { prompt_append: 'Be brief.', tool_allowlist: null, budgets: { max_output_tokens: 50 } } });
  });

  it('members read but do not manage; platform personas are for platform admins only', async () => {
    expectError(await create({ persona_key: 'nope' }, asMember()), 403, 'auth.forbidden');
    expectError(await create({ scope: 'platform', persona_key: 'nope' }), 403, 'auth.forbidden');
    expectError(await t.get('/v1/personas?scope=platform', asOwner()), 403, 'auth.forbidden');
    const plat = await ok(await create({ scope: 'platform', persona_key: 'plat-only' }, { token: padmin.token, headers: {} }));
    assert.equal(plat.org_id, null);
    assert.equal(plat.scope, 'platform');
    for (const [m, body] of [['get', undefined], ['patch', { display_name: 'x' }], ['del', undefined]] as const) {
      const res = m === 'patch' ? await t.patch(`/v1/personas/${plat.id}`, body, asOwner()) : await t[m](`/v1/personas/${plat.id}`, asOwner());
      expectError(res, 404, 'personas.not_found');
    }
    const list = await ok(await t.get('/v1/personas?scope=platform', { token: padmin.token }), 200);
    assert.ok(list.some((p: { id: string }) => p.id === plat.id));
    assert.ok(list.every((p: { scope: string }) => p.scope === 'platform'));
    await ok(await t.patch(`/v1/personas/${plat.id}`, { description: 'by admin' }, { token: padmin.token }), 200);
  });

  it('another account’s persona answers 404; a malformed id too', async () => {
    const theirs = await ok(await create({ persona_key: 'theirs' }, { token: stranger.token, headers: {} }));
    expectError(await t.get(`/v1/personas/${theirs.id}`, asOwner()), 404, 'personas.not_found');
    expectError(await t.patch(`/v1/personas/${theirs.id}`, { display_name: 'x' }, asOwner()), 404, 'personas.not_found');
    expectError(await t.del(`/v1/personas/${theirs.id}`, asOwner()), 404, 'personas.not_found');
    expectError(await t.get(`/v1/personas/${NIL_UUID}`, asOwner()), 404, 'personas.not_found');
    expectError(await t.get('/v1/personas/not-a-uuid', asOwner()), 404, 'personas.not_found');
    const mine = await ok(await t.get('/v1/personas', asOwner()), 200);
    assert.ok(!mine.some((p: { id: string }) => p.id === theirs.id));
  });

  it('lists every version by key then newest first, filtered by key and activity', async () => {
    await ok(await create({ persona_key: 'lst', version: '1' }));
    await ok(await create({ persona_key: 'lst', version: '2', is_active: false }));
    await ok(await create({ persona_key: 'lst', version: '10' }));
    const all = await ok(await t.get('/v1/personas?persona_key=lst', asMember()), 200);
    assert.deepEqual(all.map((p: { version: string }) => p.version), ['10', '2', '1']);
    const active = await ok(await t.get('/v1/personas?persona_key=lst&include_inactive=false', asMember()), 200);
    assert.deepEqual(active.map((p: { version: string }) => p.version), ['10', '1']);
    const whole = await ok(await t.get('/v1/personas', asMember()), 200);
    const keys = whole.map((p: { persona_key: string }) => p.persona_key);
    assert.deepEqual(keys, [...keys].sort());
    expectFieldError(await t.get('/v1/personas?include_inactive=maybe', asMember()), 'include_inactive');
  });

  it('PATCH edits in place, keeps absent fields, cannot change identity, audits before/after', async () => {
    const p = await ok(await create({ persona_key: 'editable', budgets: { max_iterations: 3 }, tool_denylist: ['echo'] }));
    const after = await ok(await t.patch(`/v1/personas/${p.id}`, { prompt_md: 'New prompt.', tool_approval: ['noop'], is_active: false }, asOwner()), 200);
    assert.equal(after.prompt_md, 'New prompt.');
    assert.deepEqual(after.tool_approval, ['noop']);
    assert.deepEqual(after.tool_denylist, ['echo']);
    assert.equal(after.budgets.max_iterations, 3);
    assert.equal(after.is_active, false);
    assert.ok(after.updated_at >= p.updated_at);
    for (const body of [{ persona_key: 'other' }, { version: '9' }, { scope: 'platform' }]) {
      const res = await t.patch(`/v1/personas/${p.id}`, body, asOwner());
      assert.equal(res.status, 400, res.text);
    }
    expectFieldError(await t.patch(`/v1/personas/${p.id}`, { model: '^x' }, asOwner()), 'model');
    expectError(await t.patch(`/v1/personas/${p.id}`, { prompt_md: 'x' }, asMember()), 403, 'auth.forbidden');
    const rows = await auditRows(t, 'persona.update', ws);
    const row = rows.at(-1)!;
    assert.equal(row.target_id, p.id);
    assert.equal((row.before_state as any).prompt_md, 'You help.');
    assert.equal((row.after_state as any).prompt_md, 'New prompt.');
  });

  it('DELETE removes the version, audits it, and answers 404 afterwards', async () => {
    const p = await ok(await create({ persona_key: 'gone' }));
    expectError(await t.del(`/v1/personas/${p.id}`, asMember()), 403, 'auth.forbidden');
    await ok(await t.del(`/v1/personas/${p.id}`, asOwner()), 204);
    expectError(await t.get(`/v1/personas/${p.id}`, asOwner()), 404, 'personas.not_found');
    expectError(await t.del(`/v1/personas/${p.id}`, asOwner()), 404, 'personas.not_found');
    assert.equal((await auditRows(t, 'persona.delete', ws)).at(-1)!.target_id, p.id);
  });

  it('selectable personas: one per key, org > platform > built-in, latest active version, default first', async () => {
    const fresh = await registerUser(t);
    const builtin = await ok(await t.get('/v1/me/selectable-personas', { token: fresh.token }), 200);
    assert.equal(builtin[0].persona_id, 'default@1');
    assert.equal(builtin[0].is_default, true);
    // Platform personas of earlier tests are selectable too; the built-ins fill every other key.
    const scopes = Object.fromEntries(builtin.map((p: { persona_key: string; scope: string }) => [p.persona_key, p.scope]));
    for (const key of ['default', 'lite', 'pro', 'search']) assert.equal(scopes[key], 'builtin', key);
    assert.equal(scopes['plat-only'], 'platform');
    assert.equal(scopes.writer, undefined, 'another account’s persona is not selectable');

    await ok(await create({ scope: 'platform', persona_key: 'lite', version: 'p1', display_name: 'Platform lite' }, { token: padmin.token, headers: {} }));
    const opts = { token: fresh.token, headers: {} };
    await ok(await create({ persona_key: 'pro', version: 'a', display_name: 'Own pro' }, opts));
    await ok(await create({ persona_key: 'pro', version: 'b', display_name: 'Own pro B' }, opts));
    await ok(await create({ persona_key: 'pro', version: 'c', display_name: 'Own pro C', is_active: false }, opts));
    await ok(await create({ persona_key: 'zeta', display_name: 'A first by name' }, opts));
    const list = await ok(await t.get('/v1/me/selectable-personas', opts), 200);
    const by = Object.fromEntries(list.map((p: { persona_key: string }) => [p.persona_key, p]));
    assert.deepEqual([by.lite.scope, by.lite.persona_id], ['platform', 'lite@p1']);
    assert.deepEqual([by.pro.scope, by.pro.persona_id, by.pro.display_name], ['org', 'pro@b', 'Own pro B']);
    assert.equal(by.search.scope, 'builtin');
    assert.equal(list[0].persona_key, 'default');
    const names = list.slice(1).map((p: { display_name: string }) => p.display_name);
    assert.deepEqual(names, [...names].sort((a: string, b: string) => a.localeCompare(b)));
    // An account persona keyed `default` replaces the built-in default.
    await ok(await create({ persona_key: 'default', version: 'mine', display_name: 'My default' }, opts));
    const again = await ok(await t.get('/v1/me/selectable-personas', opts), 200);
    assert.deepEqual([again[0].persona_id, again[0].scope, again[0].is_default], ['default@mine', 'org', true]);
  });

  describe('runs execute with stored personas', () => {
    let runner: TestUser;
    let team: string;
    let teammate: TestUser;

    before(async () => {
      const p = await ok(await t.post('/v1/llm-providers', { scope: 'platform', name: 'upstream', provider: 'openai', api_key: 'sk-persona', base_url: openai.baseUrl }, { token: padmin.token }));
      await ok(await t.post(`/v1/llm-providers/${p.id}/models`, { model: 'chain-head', is_default: true }, { token: padmin.token }));
      runner = await registerUser(t);
      teammate = await registerUser(t);
      team = (await createWorkspace(t, runner)).id;
      await joinAccount(t, runner, team, teammate, 'member');
    });

    async function runIn(user: TestUser, body: Record<string, unknown>) {
      const opts = inAccount(user, team);
      const th = await t.post('/v1/threads', {}, opts);
      await t.post(`/v1/threads/${th.body.id}/messages`, { content: 'hello' }, opts);
      const created = await t.post(`/v1/threads/${th.body.id}/runs`, body, opts);
      if (created.status !== 201) return { created, events: [] as any[] };
      const sse = await t.get(`/v1/runs/${created.body.run_id}/events`, opts);
      const events = sse.text.split('\n\n').filter((f) => f.startsWith('id: ')).map((f) => JSON.parse(f.split('\n')[1].slice(6)));
      const run = await t.get(`/v1/runs/${created.body.run_id}`, opts);
      return { created, events, run: run.body };
    }

    it('a key resolves to its latest active version in the highest layer and is stored as key@version; unknown → 404', async () => {
      const opts = inAccount(runner, team);
      await ok(await t.post('/v1/personas', { ...base, persona_key: 'coder', version: '1', prompt_md: 'Old coder.' }, opts));
      await ok(await t.post('/v1/personas', {
        ...base, persona_key: 'coder', version: '2', prompt_md: 'You write code.',
        tool_allowlist: ['echo', 'no*'], budgets: { max_output_tokens: 321, temperature: 0.25 }, model: 'upstream^persona-model',
        roles: { member: { prompt_append: 'Members get short answers.', tool_allowlist: ['echo'], budgets: { max_output_tokens: 99 } } },
      }, opts));
      openai.reply({ sse: chatTextStream(['ok']) });
      const r = await runIn(runner, { persona_id: 'coder' });
      assert.equal(r.events.at(-1).type, 'run.completed', JSON.stringify(r.events.at(-1)));
      assert.equal(r.run.persona_id, 'coder@2');
      const sent = openai.requests.at(-1)!.body;
      assert.equal(sent.model, 'persona-model');
      assert.deepEqual(sent.messages[0], { role: 'system', content: 'You write code.' });
      assert.deepEqual(sent.tools.map((x: any) => x.function.name).sort(), ['echo', 'noop']);
      assert.equal(sent.max_tokens ?? sent.max_completion_tokens, 321);
      assert.equal(sent.temperature, 0.25);

      // The member's role override: prompt_append, its own allowlist, its budgets key by key.
      openai.reply({ sse: chatTextStream(['ok']) });
      const m = await runIn(teammate, { persona_id: 'coder@2' });
      assert.equal(m.events.at(-1).type, 'run.completed');
      const msent = openai.requests.at(-1)!.body;
      assert.equal(msent.messages[0].content, 'You write code.\n\nMembers get short answers.');
      assert.deepEqual(msent.tools.map((x: any) => x.function.name), ['echo']);
      assert.equal(msent.max_tokens ?? msent.max_completion_tokens, 99);
      assert.equal(msent.temperature, 0.25);

      openai.reply({ sse: chatTextStream(['ok']) });
      const old = await runIn(runner, { persona_id: 'coder@1' });
      assert.equal(old.run.persona_id, 'coder@1');
      assert.equal(openai.requests.at(-1)!.body.messages[0].content, 'Old coder.');

      expectError((await runIn(runner, { persona_id: 'coder@9' })).created, 404, 'personas.not_found');
      expectError((await runIn(runner, { persona_id: 'nobody' })).created, 404, 'personas.not_found');
      expectError((await runIn(runner, { persona_id: 'Bad Key' })).created, 404, 'personas.not_found');
    });

    it('an account `default` persona is used when a run names none (persona_id stays null)', async () => {
      const opts = inAccount(runner, team);
      await ok(await t.post('/v1/personas', { ...base, persona_key: 'default', version: 'team', prompt_md: 'Team default prompt.' }, opts));
      openai.reply({ sse: chatTextStream(['ok']) });
      const r = await runIn(runner, {});
      assert.equal(r.events.at(-1).type, 'run.completed');
      assert.equal(r.run.persona_id, null);
      assert.equal(openai.requests.at(-1)!.body.messages[0].content, 'Team default prompt.');
    });

    it('preferred_credential routes to that provider (§27.3 rule 3); an unknown one falls to the default chain', async () => {
      const other = await ok(await t.post('/v1/llm-providers', { scope: 'platform', name: 'second', provider: 'openai', api_key: 'sk-second', base_url: openai.baseUrl + '/second' }, { token: padmin.token }));
      await ok(await t.post(`/v1/llm-providers/${other.id}/models`, { model: 'second-low', priority: 1 }, { token: padmin.token }));
      await ok(await t.post(`/v1/llm-providers/${other.id}/models`, { model: 'second-best', priority: 5 }, { token: padmin.token }));
      const opts = inAccount(runner, team);
      await ok(await t.post('/v1/personas', { ...base, persona_key: 'pinned', preferred_credential: 'second' }, opts));
      openai.reply({ sse: chatTextStream(['ok']) });
      const r = await runIn(runner, { persona_id: 'pinned' });
      assert.equal(r.events.at(-1).type, 'run.completed', JSON.stringify(r.events.at(-1)));
      const route = r.events.find((e) => e.type === 'run.route.selected').data;
      assert.deepEqual([route.provider_name, route.model, route.source], ['second', 'second-best', 'preferred_credential']);
      assert.equal(openai.requests.at(-1)!.path, '/second/chat/completions');
      assert.equal(openai.requests.at(-1)!.headers.authorization, 'Bearer sk-second');
    });
  });
});
