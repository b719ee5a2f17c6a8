import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BuiltinPersonaSource,
  PersonaFileError,
  builtinPersonaSource,
  defaultPersona,
  loadBuiltinPersonas,
  resolveDefaultPersona,
  resolvePersona,
  resolvePersonaId,
  resolveRunPersona,
  type Persona,
  type PersonaSource,
} from '../src/modules/personas/builtin.js';
import { effectiveRunConfig } from '../src/modules/personas/effective.js';
import { parsePersonaDefinition, PersonaValidationError } from '../src/modules/personas/validate.js';

const SETTINGS = { agentReasoningIterations: 0, toolContinuationBudget: 32 };

function withPersonaDir(files: Record<string, string>, fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'arkloop-personas-'));
  try {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function persona(over: Partial<Persona> = {}): Persona {
  return {
    ...parsePersonaDefinition({ persona_key: 'p', display_name: 'P', prompt_md: 'Base prompt.' }),
    id: '00000000-0000-7000-8000-000000000001',
    org_id: null,
    scope: 'platform',
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
    ...over,
  };
}

describe('built-in personas', () => {
  it('ship default@1, lite@1, pro@1 and search@1 as in the §10 table', () => {
    const all = builtinPersonaSource().list();
    const byId = Object.fromEntries(all.map((p) => [`${p.persona_key}@${p.version}`, p]));
    assert.deepEqual(Object.keys(byId).sort(), ['default@1', 'lite@1', 'pro@1', 'search@1']);

    assert.equal(byId['default@1'].tool_allowlist, null);
    assert.equal(byId['default@1'].budgets.max_iterations, 10);
    assert.deepEqual(byId['lite@1'].tool_allowlist, []);
    assert.equal(byId['lite@1'].budgets.max_iterations, 1);
    assert.equal(byId['lite@1'].budgets.max_output_tokens, 1024);
    assert.equal(byId['pro@1'].tool_allowlist, null);
    assert.equal(byId['pro@1'].budgets.max_iterations, 25);
    assert.deepEqual(byId['search@1'].tool_allowlist, ['web_search', 'web_fetch']);
    assert.equal(byId['search@1'].budgets.max_iterations, 10);

    for (const p of all) {
      assert.equal(p.scope, 'builtin');
      assert.equal(p.org_id, null);
      assert.equal(p.executor_type, 'agent.simple');
      assert.equal(p.is_active, true);
      assert.equal(p.stream_thinking, true);
      assert.deepEqual(p.tool_denylist, []);
      assert.match(p.id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.ok(p.display_name.length > 0 && p.description && p.prompt_md.length > 50);
      assert.equal(p.prompt_md, p.prompt_md.trim());
    }
    assert.equal(new Set(all.map((p) => p.id)).size, all.length);
  });

  it('are loaded once, with stable ids, and read-only', () => {
    assert.equal(builtinPersonaSource(), builtinPersonaSource());
    const again = loadBuiltinPersonas();
    assert.deepEqual(
      again.map((p) => p.id),
      builtinPersonaSource().list().map((p) => p.id),
    );
    const d = defaultPersona();
    assert.throws(() => {
      (d.budgets as { max_iterations: number }).max_iterations = 99;
    }, TypeError);
    assert.equal(defaultPersona().budgets.max_iterations, 10);
  });

  it('resolve `key` to the latest version, `key@version` exactly, anything else to null', () => {
    assert.equal(resolvePersonaId('lite')?.persona_id, 'lite@1');
    assert.equal(resolvePersonaId('search@1')?.persona.persona_key, 'search');
    assert.equal(resolvePersonaId('default')?.persona, defaultPersona());
    assert.equal(defaultPersona().persona_key, 'default');
    for (const bad of ['nope', 'lite@2', 'lite@', '@1', 'Lite', 'lite@1@1', '', 'lite@bad version']) {
      assert.equal(resolvePersonaId(bad), null, bad);
    }
  });

  it('pick the newest version for a bare key, skipping inactive ones', () => {
    const base = { display_name: 'X', prompt_md: 'x' };
    const mk = (version: string, is_active = true) =>
      ({
        ...parsePersonaDefinition({ ...base, persona_key: 'x', version, is_active }),
        id: `id-${version}`,
        org_id: null,
        scope: 'builtin',
        created_at: '1970-01-01T00:00:00.000Z',
        updated_at: '1970-01-01T00:00:00.000Z',
      }) as const;
    const src = new BuiltinPersonaSource([mk('2'), mk('10', false), mk('9'), mk('1')]);
    assert.equal(src.find('x', null)?.version, '9');
    assert.equal(src.find('x', '2')?.version, '2');
    assert.equal(src.find('x', '10'), null);
  });
});

describe('built-in persona files', () => {
  const good = {
    'a/persona.yaml': 'persona_key: a\ndisplay_name: A\n',
    'a/prompt.md': '\nHello.\n\n',
  };

  it('load from a directory; version defaults to "1"; the prompt is trimmed', () => {
    withPersonaDir(good, (dir) => {
      const [a] = loadBuiltinPersonas(dir);
      assert.equal(a.version, '1');
      assert.equal(a.prompt_md, 'Hello.');
      assert.equal(a.tool_allowlist, null);
      assert.deepEqual(a.budgets.per_tool_soft_limits, {});
    });
  });

  const broken: Array<[string, Record<string, string>, string, RegExp]> = [
    ['a missing prompt.md', { 'a/persona.yaml': 'persona_key: a\ndisplay_name: A\n' }, 'a/prompt.md', /missing/],
    ['invalid YAML', { ...good, 'a/persona.yaml': 'persona_key: [a\n' }, 'a/persona.yaml', /invalid YAML/],
    ['a bad persona_key', { ...good, 'a/persona.yaml': 'persona_key: A!\ndisplay_name: A\n' }, 'a/persona.yaml', /persona_key must match/],
    ['a bad version', { ...good, 'a/persona.yaml': 'persona_key: a\nversion: "1 0"\ndisplay_name: A\n' }, 'a/persona.yaml', /version/],
    ['a key not matching its directory', { ...good, 'a/persona.yaml': 'persona_key: b\ndisplay_name: A\n' }, 'a/persona.yaml', /directory/],
    [
      'max_iterations out of range',
      { ...good, 'a/persona.yaml': 'persona_key: a\ndisplay_name: A\nbudgets:\n  max_iterations: 101\n' },
      'a/persona.yaml',
      /budgets\.max_iterations must be an integer from 1 to 100/,
    ],
    [
      'temperature out of range',
      { ...good, 'a/persona.yaml': 'persona_key: a\ndisplay_name: A\nbudgets:\n  temperature: 2.5\n' },
      'a/persona.yaml',
      /budgets\.temperature/,
    ],
    [
      'an unknown reasoning_mode',
      { ...good, 'a/persona.yaml': 'persona_key: a\ndisplay_name: A\nreasoning_mode: extreme\n' },
      'a/persona.yaml',
      /reasoning_mode must be one of/,
    ],
    [
      'another executor_type',
      { ...good, 'a/persona.yaml': 'persona_key: a\ndisplay_name: A\nexecutor_type: agent.fancy\n' },
      'a/persona.yaml',
      /executor_type/,
    ],
    ['an unknown field', { ...good, 'a/persona.yaml': 'persona_key: a\ndisplay_name: A\ntools: []\n' }, 'a/persona.yaml', /tools is not a known field/],
    ['prompt_md in the YAML', { ...good, 'a/persona.yaml': 'persona_key: a\ndisplay_name: A\nprompt_md: hi\n' }, 'a/persona.yaml', /prompt\.md/],
    ['a prompt over 64 KiB', { ...good, 'a/prompt.md': 'é'.repeat(32 * 1024 + 1) }, 'a/prompt.md', /65536 bytes/],
    ['an empty prompt', { ...good, 'a/prompt.md': '  \n' }, 'a/prompt.md', /empty/],
    [
      'a bad role key',
      { ...good, 'a/persona.yaml': 'persona_key: a\ndisplay_name: A\nroles:\n  guest: {}\n' },
      'a/persona.yaml',
      /roles\.guest/,
    ],
    [
      'a bad model selector',
      { ...good, 'a/persona.yaml': 'persona_key: a\ndisplay_name: A\nmodel: "a^b^c"\n' },
      'a/persona.yaml',
      /model/,
    ],
    [
      'a star inside a tool pattern',
      { ...good, 'a/persona.yaml': 'persona_key: a\ndisplay_name: A\ntool_denylist: ["we*b"]\n' },
      'a/persona.yaml',
      /tool_denylist\[0\]/,
    ],
    [
      'a duplicate key@version',
      { ...good, 'a@1/persona.yaml': 'persona_key: a\ndisplay_name: A\n', 'a@1/prompt.md': 'x' },
      'a@1/persona.yaml',
      /a@1 is defined twice/,
    ],
  ];
  for (const [what, files, file, reason] of broken) {
    it(`fail loudly, naming the file, on ${what}`, () => {
      withPersonaDir(files, (dir) => {
        assert.throws(
          () => loadBuiltinPersonas(dir),
          (err: unknown) => {
            assert.ok(err instanceof PersonaFileError, String(err));
            assert.equal(err.file, join(dir, file));
            assert.ok(err.message.includes(join(dir, file)), err.message);
            assert.match(err.message, reason);
            return true;
          },
        );
      });
    });
  }
});

describe('persona validation', () => {
  it('accepts every §2.5 field, with the reasoning_iterations alias', () => {
    const p = parsePersonaDefinition({
      persona_key: 'full_1',
      version: 'v1.2-b',
      display_name: '  Full  ',
      description: null,
      prompt_md: 'p',
      tool_allowlist: ['web_*', 'echo'],
      tool_denylist: ['mcp__*'],
      budgets: {
        reasoning_iterations: 7,
        max_output_tokens: 200000,
        temperature: 0,
        top_p: 1,
        tool_continuation_budget: 0,
        per_tool_soft_limits: { web_search: 3 },
      },
      model: 'openai^gpt-4o',
      preferred_credential: 'openai',
      reasoning_mode: 'high',
      stream_thinking: false,
      prompt_cache_control: 'auto',
      executor_type: 'agent.simple',
      roles: { member: { prompt_append: 'Be brief.', budgets: { max_iterations: 2 }, tool_allowlist: null } },
      is_active: false,
    });
    assert.equal(p.display_name, 'Full');
    assert.equal(p.budgets.max_iterations, 7);
    assert.equal(p.budgets.top_p, 1);
    assert.deepEqual(p.roles.member, { prompt_append: 'Be brief.', budgets: { max_iterations: 2 }, tool_allowlist: null });
    assert.equal(p.is_active, false);
  });

  it('rejects out-of-range budgets with the field name', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ max_iterations: 0 }, 'budgets.max_iterations'],
      [{ max_iterations: 1.5 }, 'budgets.max_iterations'],
      [{ max_output_tokens: 200001 }, 'budgets.max_output_tokens'],
      [{ top_p: -0.1 }, 'budgets.top_p'],
      [{ tool_continuation_budget: 1001 }, 'budgets.tool_continuation_budget'],
      [{ per_tool_soft_limits: { echo: -1 } }, 'budgets.per_tool_soft_limits.echo'],
      [{ per_tool_soft_limits: [] }, 'budgets.per_tool_soft_limits'],
      [{ max_iterations: 3, reasoning_iterations: 3 }, 'budgets.reasoning_iterations'],
      [{ max_turns: 3 }, 'budgets.max_turns'],
    ];
    for (const [budgets, field] of cases) {
      assert.throws(
        () => parsePersonaDefinition({ persona_key: 'a', display_name: 'A', prompt_md: 'x', budgets }),
        (err: unknown) => err instanceof PersonaValidationError && err.field === field,
        JSON.stringify(budgets),
      );
    }
  });
});

describe('persona layers', () => {
  function memorySource(scope: 'org' | 'platform', personas: Persona[]): PersonaSource {
    return {
      scope,
      async find(key, version) {
        const hits = personas.filter((p) => p.persona_key === key && p.is_active && (version === null || p.version === version));
        return hits.sort((a, b) => (a.created_at < b.created_at ? 1 : -1))[0] ?? null;
      },
    };
  }

  it('resolve org > platform > builtin, and an account `default` replaces the built-in one', async () => {
    const org = memorySource('org', [persona({ scope: 'org', persona_key: 'default', version: '7', org_id: 'o' })]);
    const platform = memorySource('platform', [
      persona({ persona_key: 'lite', version: '2' }),
      persona({ persona_key: 'default', version: '3' }),
    ]);
    const layers = [org, platform, builtinPersonaSource()];

    assert.equal((await resolveDefaultPersona(layers))?.persona_id, 'default@7');
    assert.equal((await resolveDefaultPersona([platform, builtinPersonaSource()]))?.persona_id, 'default@3');
    assert.equal((await resolveDefaultPersona([builtinPersonaSource()]))?.persona, defaultPersona());
    assert.equal((await resolvePersona(layers, 'lite'))?.persona_id, 'lite@2');
    assert.equal((await resolvePersona(layers, 'lite@1'))?.persona.scope, 'builtin');
    assert.equal((await resolvePersona(layers, 'pro'))?.persona_id, 'pro@1');
    assert.equal(await resolvePersona(layers, 'nope'), null);
    assert.equal(await resolvePersona(layers, 'BAD KEY'), null);
    assert.equal((await resolveRunPersona(layers, null))?.persona_id, 'default@7');
    assert.equal((await resolveRunPersona([builtinPersonaSource()], null))?.persona_id, 'default@1');
    assert.equal((await resolveRunPersona(layers, 'search@1'))?.persona_id, 'search@1');
    assert.equal(await resolveRunPersona(layers, 'gone@4'), null);
  });

  it('skip inactive versions and fall through to the next layer', async () => {
    const org = memorySource('org', [persona({ persona_key: 'lite', version: '1', is_active: false, display_name: 'Org lite' })]);
    const hit = await resolvePersona([org, builtinPersonaSource()], 'lite@1');
    assert.equal(hit?.persona.scope, 'builtin');
  });
});

describe('effective run config', () => {
  it('for the built-in default: its prompt, every tool, 10 iterations, the settings tool budget', () => {
    const c = effectiveRunConfig(defaultPersona(), 'member', SETTINGS);
    assert.equal(c.personaId, 'default@1');
    assert.equal(c.systemPrompt, defaultPersona().prompt_md);
    assert.equal(c.toolAllowlist, null);
    assert.deepEqual(c.toolDenylist, []);
    assert.equal(c.maxIterations, 10);
    assert.equal(c.maxOutputTokens, null);
    assert.equal(c.temperature, null);
    assert.equal(c.topP, null);
    assert.equal(c.toolContinuationBudget, 32);
    assert.deepEqual(c.perToolSoftLimits, {});
    assert.equal(c.model, null);
    assert.equal(c.preferredCredential, null);
    assert.equal(c.reasoningMode, null);
    assert.equal(c.reasoningEffort, undefined);
    assert.equal(c.streamThinking, true);
    assert.equal(c.promptCacheControl, null);
  });

  it('lite: no tools, one iteration, 1024 output tokens', () => {
    const c = effectiveRunConfig(resolvePersonaId('lite')!.persona, 'owner', SETTINGS);
    assert.deepEqual(c.toolAllowlist, []);
    assert.equal(c.maxIterations, 1);
    assert.equal(c.maxOutputTokens, 1024);
  });

  it('max_iterations defaults to 10 and is clamped by limit.agent_reasoning_iterations when > 0', () => {
    const none = persona();
    assert.equal(effectiveRunConfig(none, 'member', SETTINGS).maxIterations, 10);
    assert.equal(effectiveRunConfig(none, 'member', { ...SETTINGS, agentReasoningIterations: 4 }).maxIterations, 4);
    assert.equal(effectiveRunConfig(none, 'member', { ...SETTINGS, agentReasoningIterations: 50 }).maxIterations, 10);
    const pro = resolvePersonaId('pro')!.persona;
    assert.equal(effectiveRunConfig(pro, 'member', SETTINGS).maxIterations, 25);
    assert.equal(effectiveRunConfig(pro, 'member', { ...SETTINGS, agentReasoningIterations: 12 }).maxIterations, 12);
    const withOverride = persona({ roles: { admin: { budgets: { max_iterations: 40 } } } });
    assert.equal(effectiveRunConfig(withOverride, 'admin', { ...SETTINGS, agentReasoningIterations: 30 }).maxIterations, 30);
  });

  it('tool_continuation_budget: role override, then persona, then the setting (0 is a value)', () => {
    const p = persona({
      budgets: { ...persona().budgets, tool_continuation_budget: 5 },
      roles: { owner: { budgets: { tool_continuation_budget: 0 } } },
    });
    assert.equal(effectiveRunConfig(p, 'owner', SETTINGS).toolContinuationBudget, 0);
    assert.equal(effectiveRunConfig(p, 'member', SETTINGS).toolContinuationBudget, 5);
    assert.equal(effectiveRunConfig(persona(), 'member', { ...SETTINGS, toolContinuationBudget: 7 }).toolContinuationBudget, 7);
  });

  it('applies the creator role override: prompt_append after a blank line, budgets key by key, policy and model', () => {
    const p = persona({
      prompt_md: 'You help.\n',
      tool_allowlist: ['web_*'],
      tool_denylist: ['web_fetch'],
      budgets: {
        max_iterations: 8,
        max_output_tokens: 2000,
        temperature: 0.2,
        top_p: null,
        tool_continuation_budget: null,
        per_tool_soft_limits: { web_search: 3, echo: 1 },
      },
      model: 'openai^gpt-4o',
      preferred_credential: 'openai',
      reasoning_mode: 'low',
      prompt_cache_control: 'none',
      roles: {
        member: {
          prompt_append: '  Keep answers short.  ',
          tool_allowlist: null,
          tool_denylist: ['mcp__*'],
          budgets: { max_output_tokens: 500, top_p: 0.9, per_tool_soft_limits: { web_search: 1, noop: 2 } },
          model: 'anthropic^claude',
          reasoning_mode: 'none',
          stream_thinking: false,
          prompt_cache_control: 'auto',
        },
        admin: { tool_allowlist: [] },
      },
    });

    const m = effectiveRunConfig(p, 'member', SETTINGS);
    assert.equal(m.systemPrompt, 'You help.\n\nKeep answers short.');
    assert.equal(m.toolAllowlist, null);
    assert.deepEqual(m.toolDenylist, ['mcp__*']);
    assert.equal(m.maxIterations, 8);
    assert.equal(m.maxOutputTokens, 500);
    assert.equal(m.temperature, 0.2);
    assert.equal(m.topP, 0.9);
    assert.deepEqual(m.perToolSoftLimits, { web_search: 1, echo: 1, noop: 2 });
    assert.equal(m.model, 'anthropic^claude');
    assert.equal(m.preferredCredential, 'openai');
    assert.equal(m.reasoningMode, 'none');
    assert.equal(m.reasoningEffort, undefined);
    assert.equal(m.streamThinking, false);
    assert.equal(m.promptCacheControl, 'auto');

    const a = effectiveRunConfig(p, 'admin', SETTINGS);
    assert.equal(a.systemPrompt, 'You help.');
    assert.deepEqual(a.toolAllowlist, []);
    assert.deepEqual(a.toolDenylist, ['web_fetch']);

    const o = effectiveRunConfig(p, 'owner', SETTINGS);
    assert.deepEqual(o.toolAllowlist, ['web_*']);
    assert.equal(o.model, 'openai^gpt-4o');
    assert.equal(o.reasoningEffort, 'low');
    assert.equal(o.streamThinking, true);
    assert.equal(o.promptCacheControl, 'none');
    assert.deepEqual(o.perToolSoftLimits, { web_search: 3, echo: 1 });
  });

  it('does not modify the persona it reads', () => {
    const p = persona({ roles: { member: { budgets: { per_tool_soft_limits: { a: 1 } } } } });
    const before = structuredClone(p);
    const c = effectiveRunConfig(p, 'member', SETTINGS);
    c.perToolSoftLimits.b = 2;
    c.toolDenylist.push('x');
    assert.deepEqual(p, before);
  });
});
