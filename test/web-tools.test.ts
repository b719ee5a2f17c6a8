// The web_search and web_fetch tools (api.md §27.5) against local servers speaking the real
// Tavily, SearXNG, Jina Reader and Firecrawl wire formats and a page server: what the product
// sends and what the tool returns, backend resolution (org → platform → settings →
// tool.not_configured), the limits of web_fetch.basic, the SSRF guard (§27.6), cancel, and a
// stub-scripted run whose tool.result events carry the real results.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { registerUser, startTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { deleteSetting, setSetting } from './helpers/identity-app.js';
import { fakeFirecrawl, fakeJina, fakePages, fakeSearxng, fakeTavily, type FakeServer } from './helpers/fake-web.js';
import { isBlockedAddress } from '../src/lib/ssrf.js';
import { newId } from '../src/lib/ids.js';
import { runToolWithTimeout } from '../src/tools/policy.js';
import { ToolError, type Tool } from '../src/tools/types.js';
import { webTools, type WebToolOptions } from '../src/tools/web/index.js';
import { WEB_DEFAULTS } from '../src/tools/web/options.js';
import { toolProvidersChanged } from '../src/modules/tool-providers/store.js';
import { ALL_KEYS } from '../src/db/shared-cache.js';

const TAVILY_KEY = 'tvly-test-0123456789abcdef';
const JINA_KEY = 'jina_test_0123456789abcdef';
const FC_KEY = 'fc-test-0123456789abcdef';

const SETTING_KEYS = ['web_search.provider', 'web_search.tavily_api_key', 'web_search.searxng_base_url', 'web_fetch.provider', 'web_fetch.jina_api_key', 'web_fetch.firecrawl_api_key', 'web_fetch.firecrawl_base_url'];

type Outcome = { result?: any; error?: ToolError; ms: number };

describe('web tools', () => {
  let t: TestApp;
  let root: TestUser;
  let a: TestUser;
  let b: TestUser;
  const tavily = fakeTavily(TAVILY_KEY);
  const searx = fakeSearxng();
  const searx2 = fakeSearxng();
  const jina = fakeJina(JINA_KEY);
  const fire = fakeFirecrawl(FC_KEY);
  const pages = fakePages();
  const servers: FakeServer[] = [tavily, searx, searx2, jina, fire, pages];

  function toolsOf(opts: WebToolOptions = {}): Map<string, Tool> {
    return new Map(webTools(t.ctx, opts).map((x) => [x.name, x]));
  }

  /** One call the way the agent loop makes it (argument check, timeout, error mapping). */
  async function call(name: string, args: unknown, user: TestUser, opts: WebToolOptions = {}, signal = new AbortController().signal): Promise<Outcome> {
    const started = Date.now();
    try {
      const result = await runToolWithTimeout(toolsOf(opts).get(name)!, args, { runId: newId(), orgId: user.personalAccountId, userId: user.id, signal, log: t.ctx.log });
      return { result, ms: Date.now() - started };
    } catch (err) {
      assert.ok(err instanceof ToolError, `expected a ToolError, got ${String(err)}`);
      return { error: err, ms: Date.now() - started };
    }
  }
  const ok = (o: Outcome) => {
    assert.equal(o.error, undefined, o.error && `${o.error.errorClass}: ${o.error.message}`);
    return o.result;
  };
  const fails = (o: Outcome, errorClass: string, message?: RegExp) => {
    assert.ok(o.error, `expected ${errorClass}, got ${JSON.stringify(o.result)?.slice(0, 300)}`);
    assert.equal(o.error.errorClass, errorClass, o.error.message);
    if (message) assert.match(o.error.message, message);
  };

  /** Tool-provider writes through the API: credential, then activate. */
  async function provide(user: TestUser, scope: 'org' | 'platform', group: string, provider: string, credential?: Record<string, string>) {
    if (credential) {
      const res = await t.put(`/v1/tool-providers/${group}/${provider}/credential?scope=${scope}`, credential, { token: user.token });
      assert.equal(res.status, 204, res.text);
    }
    const res = await t.put(`/v1/tool-providers/${group}/${provider}/activate?scope=${scope}`, undefined, { token: user.token });
    assert.equal(res.status, 204, res.text);
  }
  async function deactivate(user: TestUser, scope: 'org' | 'platform', group: string, provider: string) {
    const res = await t.put(`/v1/tool-providers/${group}/${provider}/deactivate?scope=${scope}`, undefined, { token: user.token });
    assert.equal(res.status, 204, res.text);
  }

  before(async () => {
    await Promise.all(servers.map((s) => s.start()));
    t = await startTestApp({ ARKLOOP_LLM_RETRY_BASE_DELAY_MS: '10' }, { worker: true });
    root = await registerUser(t);
    a = await registerUser(t);
    b = await registerUser(t);
  });
  after(async () => {
    await t?.close();
    await Promise.all(servers.map((s) => s.close()));
  });
  beforeEach(async () => {
    // Every test states the configuration it needs; the local servers need private targets.
    await t.ctx.db.deleteFrom('tool_provider_configs').execute();
    await toolProvidersChanged(t.ctx, ALL_KEYS);
    for (const k of SETTING_KEYS) await deleteSetting(t, k);
    await setSetting(t, 'security.ssrf_allow_private', true);
  });

  it('both tools are offered with the §27.5 argument schemas and limits', () => {
    const tools = toolsOf();
    assert.deepEqual([...tools.keys()], ['web_search', 'web_fetch']);
    for (const tool of tools.values()) assert.equal(tool.source, 'provider');
    const s = tools.get('web_search')!.inputSchema as any;
    assert.deepEqual(s.required, ['query']);
    assert.deepEqual([s.properties.query.minLength, s.properties.query.maxLength], [1, 400]);
    assert.deepEqual([s.properties.max_results.minimum, s.properties.max_results.maximum, s.properties.max_results.default], [1, 10, 5]);
    const f = tools.get('web_fetch')!.inputSchema as any;
    assert.deepEqual(f.required, ['url']);
    assert.deepEqual([f.properties.max_chars.minimum, f.properties.max_chars.maximum, f.properties.max_chars.default], [1000, 100000, 20000]);
    assert.equal(WEB_DEFAULTS.basicTimeoutMs, 15_000);
    assert.equal(WEB_DEFAULTS.basicMaxBytes, 2 * 1024 * 1024);
    assert.equal(WEB_DEFAULTS.basicMaxRedirects, 5);
  });

  it('refuses bad arguments with tool.invalid_arguments, through the loop and when run directly', async () => {
    for (const args of [{}, { query: '' }, { query: 'x'.repeat(401) }, { query: 'ok', max_results: 0 }, { query: 'ok', max_results: 11 }, { query: 'ok', max_results: 2.5 }, { query: 7 }, []]) {
      fails(await call('web_search', args, a), 'tool.invalid_arguments');
    }
    for (const args of [{}, { url: '' }, { url: 'not a url' }, { url: 'https://example.com', max_chars: 999 }, { url: 'https://example.com', max_chars: 100001 }, { url: 42 }]) {
      fails(await call('web_fetch', args, a), 'tool.invalid_arguments');
    }
    const ctx = { runId: newId(), orgId: a.personalAccountId, userId: a.id, signal: new AbortController().signal, log: t.ctx.log };
    await assert.rejects(toolsOf().get('web_search')!.run({ query: '   ' }, ctx), (e: unknown) => e instanceof ToolError && e.errorClass === 'tool.invalid_arguments');
    await assert.rejects(toolsOf().get('web_fetch')!.run({ url: 'nope' }, ctx), (e: unknown) => e instanceof ToolError && e.errorClass === 'tool.invalid_arguments');
  });

  describe('backend resolution: org → platform → settings → tool.not_configured', () => {
    it('web_search', async () => {
      fails(await call('web_search', { query: 'q' }, a), 'tool.not_configured');

      await setSetting(t, 'web_search.provider', 'tavily'); // without its key: still nothing
      fails(await call('web_search', { query: 'q' }, a), 'tool.not_configured');
      await setSetting(t, 'web_search.provider', 'searxng');
      await setSetting(t, 'web_search.searxng_base_url', searx.url);
      assert.match(ok(await call('web_search', { query: 'from settings' }, a)).results[0].title, /^SearX 1: from settings$/);

      await provide(root, 'platform', 'web_search', 'web_search.tavily', { api_key: TAVILY_KEY, base_url: tavily.url });
      assert.equal(ok(await call('web_search', { query: 'from platform' }, a)).results[0].title, 'Tavily 1 for from platform');

      // An org provider that is configured but not active changes nothing.
      const r = await t.put(`/v1/tool-providers/web_search/web_search.searxng/credential?scope=org`, { base_url: searx2.url }, { token: a.token });
      assert.equal(r.status, 204, r.text);
      assert.equal(ok(await call('web_search', { query: 'still platform' }, a)).results[0].title, 'Tavily 1 for still platform');
      const before2 = searx2.requests.length;
      await provide(a, 'org', 'web_search', 'web_search.searxng');
      assert.equal(ok(await call('web_search', { query: 'from org' }, a)).results[0].title, 'SearX 1: from org');
      assert.equal(searx2.requests.length, before2 + 1, "the account's own SearXNG answered");
      // Another account is not affected by A's provider.
      assert.equal(ok(await call('web_search', { query: 'b' }, b)).results[0].title, 'Tavily 1 for b');

      await deactivate(a, 'org', 'web_search', 'web_search.searxng');
      assert.equal(ok(await call('web_search', { query: 'back' }, a)).results[0].title, 'Tavily 1 for back');
      await deactivate(root, 'platform', 'web_search', 'web_search.tavily');
      assert.equal(ok(await call('web_search', { query: 'settings again' }, a)).results[0].title, 'SearX 1: settings again');
    });

    it('web_fetch (the settings default is basic)', async () => {
      const page = `${pages.url}/plain`;
      assert.equal(ok(await call('web_fetch', { url: page }, a)).content_type, 'text/plain', 'basic by default');
      await setSetting(t, 'web_fetch.provider', 'jina'); // without its key
      fails(await call('web_fetch', { url: page }, a), 'tool.not_configured');
      await setSetting(t, 'web_fetch.provider', 'firecrawl');
      await setSetting(t, 'web_fetch.firecrawl_api_key', FC_KEY);
      await setSetting(t, 'web_fetch.firecrawl_base_url', fire.url);
      assert.equal(ok(await call('web_fetch', { url: page }, a)).title, 'Firecrawl page');

      await provide(root, 'platform', 'web_fetch', 'web_fetch.jina', { api_key: JINA_KEY, base_url: jina.url });
      assert.equal(ok(await call('web_fetch', { url: page }, a)).title, 'Jina page');
      await provide(a, 'org', 'web_fetch', 'web_fetch.basic');
      const mine = ok(await call('web_fetch', { url: page }, a));
      assert.equal(mine.content, 'line one\n  line two <b>not html</b>\n');
      assert.equal(ok(await call('web_fetch', { url: page }, b)).title, 'Jina page');
    });
  });

  describe('wire formats', () => {
    it('Tavily: POST /search with the Bearer key and a JSON body; results mapped to {title, url, snippet}', async () => {
      await provide(root, 'platform', 'web_search', 'web_search.tavily', { api_key: TAVILY_KEY, base_url: `${tavily.url}/` });
      const out = ok(await call('web_search', { query: 'otters & rivers', max_results: 3 }, a));
      const req = tavily.last();
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/search');
      assert.equal(req.headers.authorization, `Bearer ${TAVILY_KEY}`);
      assert.match(String(req.headers['content-type']), /^application\/json/);
      assert.deepEqual(req.json, { query: 'otters & rivers', max_results: 3, search_depth: 'basic' });
      assert.deepEqual(out, {
        results: [1, 2, 3].map((i) => ({ title: `Tavily ${i} for otters & rivers`, url: `https://tavily.example/${i}`, snippet: `Snippet ${i} about otters & rivers` })),
      });
      assert.equal(ok(await call('web_search', { query: 'default count' }, a)).results.length, 5);
      assert.equal(tavily.last().json.max_results, 5);
      // A refused key is a tool failure naming the upstream status, never the key.
      await provide(root, 'platform', 'web_search', 'web_search.tavily', { api_key: 'tvly-wrong-key-000000' });
      const bad = await call('web_search', { query: 'x' }, a);
      fails(bad, 'tool.execution_failed', /Tavily answered HTTP 401/);
      assert.ok(!bad.error!.message.includes('tvly-wrong'));
    });

    it('SearXNG: GET /search?q=…&format=json; results cut to max_results, malformed entries skipped', async () => {
      await setSetting(t, 'web_search.provider', 'searxng');
      await setSetting(t, 'web_search.searxng_base_url', `${searx.url}/searx`);
      const query = 'Fischotter & Biber über 100% "quoted"';
      const out = ok(await call('web_search', { query, max_results: 4 }, a));
      const req = searx.last();
      assert.equal(req.method, 'GET');
      const u = new URL(req.url, 'http://x');
      assert.equal(u.pathname, '/searx/search');
      assert.equal(u.searchParams.get('q'), query);
      assert.equal(u.searchParams.get('format'), 'json');
      assert.equal(req.headers.authorization, undefined);
      assert.deepEqual(out.results.map((r: any) => r.url), [1, 2, 3, 4].map((i) => `https://searx.example/${i}`));
      assert.deepEqual(out.results[0], { title: `SearX 1: ${query}`, url: 'https://searx.example/1', snippet: `Content 1 for ${query}` });
      assert.equal(ok(await call('web_search', { query: 'ten', max_results: 10 }, a)).results.length, 10);
      // An instance without the json format answers 403 HTML: a tool failure, not a crash.
      searx.use((_r, res) => {
        res.writeHead(403, { 'content-type': 'text/html' });
        res.end('<html>Forbidden</html>');
      });
      try {
        fails(await call('web_search', { query: 'x' }, a), 'tool.execution_failed', /SearXNG answered HTTP 403/);
      } finally {
        searx.reset();
      }
    });

    it('Jina Reader: GET <base>/<url> with the Bearer key and Accept: application/json', async () => {
      await provide(a, 'org', 'web_fetch', 'web_fetch.jina', { api_key: JINA_KEY, base_url: jina.url });
      const target = 'https://pages.example/article?x=1&y=2';
      const out = ok(await call('web_fetch', { url: target }, a));
      const req = jina.last();
      assert.equal(req.method, 'GET');
      assert.equal(req.url, `/${target}`);
      assert.equal(req.headers.authorization, `Bearer ${JINA_KEY}`);
      assert.equal(req.headers.accept, 'application/json');
      assert.deepEqual(out, { url: target, final_url: `${target}#final`, status: 200, content_type: 'text/markdown', title: 'Jina page', content: '# Jina page\n\nRead by Jina.', truncated: false });
    });

    it('Jina and Firecrawl content is cut to max_chars', async () => {
      const longJina = fakeJina(JINA_KEY, 'j'.repeat(5000));
      const longFire = fakeFirecrawl(FC_KEY, 'f'.repeat(5000));
      await Promise.all([longJina.start(), longFire.start()]);
      try {
        await provide(root, 'platform', 'web_fetch', 'web_fetch.jina', { api_key: JINA_KEY, base_url: longJina.url });
        const j = ok(await call('web_fetch', { url: 'https://example.com/', max_chars: 1000 }, a));
        assert.deepEqual([j.content.length, j.truncated], [1000, true]);
        await provide(root, 'platform', 'web_fetch', 'web_fetch.firecrawl', { api_key: FC_KEY, base_url: longFire.url });
        const f = ok(await call('web_fetch', { url: 'https://example.com/', max_chars: 4000 }, a));
        assert.deepEqual([f.content.length, f.truncated], [4000, true]);
        assert.equal(ok(await call('web_fetch', { url: 'https://example.com/' }, a)).truncated, false);
      } finally {
        await Promise.all([longJina.close(), longFire.close()]);
      }
    });

    it('Firecrawl: POST /v1/scrape with the Bearer key and {url, formats: ["markdown"]}; a failed scrape is a tool failure', async () => {
      await setSetting(t, 'web_fetch.provider', 'firecrawl');
      await setSetting(t, 'web_fetch.firecrawl_api_key', FC_KEY);
      await setSetting(t, 'web_fetch.firecrawl_base_url', fire.url);
      const target = 'https://pages.example/otters';
      const out = ok(await call('web_fetch', { url: target }, a));
      const req = fire.last();
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/v1/scrape');
      assert.equal(req.headers.authorization, `Bearer ${FC_KEY}`);
      assert.deepEqual(req.json, { url: target, formats: ['markdown'], onlyMainContent: true });
      assert.deepEqual(out, { url: target, final_url: `${target}?final=1`, status: 200, content_type: 'text/html', title: 'Firecrawl page', content: '# Firecrawl page\n\nScraped by Firecrawl.', truncated: false });
      fails(await call('web_fetch', { url: 'https://pages.example/unscrapable' }, a), 'tool.execution_failed', /All scraping engines failed/);
      await setSetting(t, 'web_fetch.firecrawl_api_key', 'fc-wrong');
      fails(await call('web_fetch', { url: target }, a), 'tool.execution_failed', /HTTP 401/);
    });
  });

  describe('web_fetch.basic', () => {
    it('reduces an HTML page to its readable text and title', async () => {
      const url = `${pages.url}/article`;
      const out = ok(await call('web_fetch', { url }, a));
      assert.deepEqual(Object.keys(out).sort(), ['content', 'content_type', 'final_url', 'status', 'title', 'truncated', 'url']);
      assert.equal(out.url, url);
      assert.equal(out.final_url, url);
      assert.equal(out.status, 200);
      assert.equal(out.content_type, 'text/html');
      assert.equal(out.title, 'Otters of the River');
      assert.equal(out.truncated, false);
      assert.match(out.content, /River otters are semiaquatic mammals\./);
      assert.match(out.content, /Their dens are called holts/);
      assert.match(out.content, /^- Fish$/m);
      assert.match(out.content, /\n\n/, 'paragraphs stay apart');
      for (const hidden of ['do-not-show', 'color:red', '<p>', '<li>']) assert.ok(!out.content.includes(hidden), hidden);
      assert.equal(pages.last().headers['user-agent'], 'Arkloop-web_fetch/1.0');
    });

    it('reads a page too big for Readability as a whole, still as text', async () => {
      const out = ok(await call('web_fetch', { url: `${pages.url}/big-html?n=2000`, max_chars: 100000 }, a));
      assert.equal(out.title, 'Big table');
      assert.match(out.content, /^### Row 0\n\nCell 0 more\n\n### Row 1\n/);
      assert.match(out.content, /### Row 1999\n\nCell 1999 more$/);
      for (const hidden of ['<div', '<span', 'var hidden']) assert.ok(!out.content.includes(hidden), hidden);
    });

    it('passes other text through and decodes its charset; refuses binary content', async () => {
      assert.equal(ok(await call('web_fetch', { url: `${pages.url}/plain` }, a)).content, 'line one\n  line two <b>not html</b>\n');
      const j = ok(await call('web_fetch', { url: `${pages.url}/json` }, a));
      assert.deepEqual([j.content_type, j.content, j.title], ['application/json', '{"a": 1, "b": [true, null]}', null]);
      assert.equal(ok(await call('web_fetch', { url: `${pages.url}/latin1` }, a)).content, 'café');
      fails(await call('web_fetch', { url: `${pages.url}/png` }, a), 'tool.execution_failed', /image\/png/);
      const missing = ok(await call('web_fetch', { url: `${pages.url}/missing` }, a));
      assert.deepEqual([missing.status, missing.title, missing.content], [404, 'Not here', 'No such page.']);
    });

    it('cuts content to max_chars (20000 by default)', async () => {
      const long = ok(await call('web_fetch', { url: `${pages.url}/long?n=50000` }, a));
      assert.deepEqual([long.content.length, long.truncated], [20000, true]);
      const short = ok(await call('web_fetch', { url: `${pages.url}/long?n=50000`, max_chars: 1000 }, a));
      assert.deepEqual([short.content.length, short.truncated], [1000, true]);
      const whole = ok(await call('web_fetch', { url: `${pages.url}/long?n=1500`, max_chars: 1500 }, a));
      assert.deepEqual([whole.content.length, whole.truncated], [1500, false]);
    });

    it('follows at most 5 redirects and reports the final URL', async () => {
      const five = ok(await call('web_fetch', { url: `${pages.url}/chain/5` }, a));
      assert.equal(five.final_url, `${pages.url}/plain`);
      assert.equal(five.url, `${pages.url}/chain/5`);
      fails(await call('web_fetch', { url: `${pages.url}/chain/6` }, a), 'tool.execution_failed', /more than 5 redirects/);
    });

    it('stops reading a body beyond the byte limit (2 MiB by default)', async () => {
      const endless = ok(await call('web_fetch', { url: `${pages.url}/endless`, max_chars: 100000 }, a));
      assert.deepEqual([endless.content.length, endless.truncated], [100000, true]);
      assert.ok(pages.endlessBytes() >= WEB_DEFAULTS.basicMaxBytes, 'the server wrote at least the limit');
      const capped = ok(await call('web_fetch', { url: `${pages.url}/endless`, max_chars: 100000 }, a, { basicMaxBytes: 10_000 }));
      assert.deepEqual([capped.content.length, capped.truncated], [10_000, true]);
    });

    it('a page that does not answer in time is tool.timeout', async () => {
      for (const path of ['/stall', '/stall-body']) {
        const o = await call('web_fetch', { url: `${pages.url}${path}` }, a, { basicTimeoutMs: 300 });
        fails(o, 'tool.timeout', /300 ms/);
        assert.ok(o.ms < 5000, `took ${o.ms} ms`);
      }
    });

    it('stops at once when the run is cancelled', async () => {
      const ac = new AbortController();
      const tool = toolsOf().get('web_fetch')!;
      const started = Date.now();
      setTimeout(() => ac.abort(new Error('cancelled')), 150);
      await assert.rejects(
        tool.run({ url: `${pages.url}/stall` }, { runId: newId(), orgId: a.personalAccountId, userId: a.id, signal: ac.signal, log: t.ctx.log }),
        (e: unknown) => e instanceof ToolError && e.errorClass === 'tool.execution_failed' && /cancelled/.test(e.message),
      );
      assert.ok(Date.now() - started < 3000);
    });
  });

  describe('SSRF guard (security.ssrf_allow_private false)', () => {
    // 127.0.0.2 stands in for a public server: the guard's address rule lets exactly it through.
    const PUBLIC = '127.0.0.2';
    const isBlocked = (addr: string) => addr !== PUBLIC && isBlockedAddress(addr);
    const resolver = async (host: string): Promise<LookupAddress[]> => {
      if (host === 'evil.test') return [{ address: '127.0.0.1', family: 4 }];
      if (host === 'public.test') return [{ address: PUBLIC, family: 4 }];
      throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    };
    const knobs: WebToolOptions = { guard: { isBlocked, resolver } };
    const hop = fakePages(PUBLIC);

    before(async () => {
      await hop.start();
    });
    after(async () => {
      await hop.close();
    });
    beforeEach(async () => {
      await setSetting(t, 'security.ssrf_allow_private', false);
    });

    it('refuses loopback and private targets before any connection', async () => {
      const hits = pages.requests.length;
      for (const url of [`${pages.url}/plain`, `http://localhost:${pages.port}/plain`, 'http://10.0.0.1/', 'http://[::1]/', 'http://169.254.169.254/latest/meta-data/', 'file:///etc/passwd', 'http://user:pw@example.com/']) {
        fails(await call('web_fetch', { url }, a), 'policy.ssrf_blocked');
      }
      fails(await call('web_fetch', { url: `http://evil.test:${pages.port}/plain` }, a, knobs), 'policy.ssrf_blocked', /resolves to 127\.0\.0\.1/);
      assert.equal(pages.requests.length, hits, 'the private server was never reached');
    });

    it('checks every redirect hop: a redirect to loopback is refused', async () => {
      const via = (to: string) => `http://public.test:${hop.port}/r?to=${encodeURIComponent(to)}`;
      const hits = pages.requests.length;
      fails(await call('web_fetch', { url: via(`${pages.url}/plain`) }, a, knobs), 'policy.ssrf_blocked');
      fails(await call('web_fetch', { url: via(`http://evil.test:${pages.port}/plain`) }, a, knobs), 'policy.ssrf_blocked');
      fails(await call('web_fetch', { url: via('file:///etc/passwd') }, a, knobs), 'policy.ssrf_blocked');
      assert.equal(pages.requests.length, hits, 'the loopback server was never reached');
      const fine = ok(await call('web_fetch', { url: via(`http://${PUBLIC}:${hop.port}/plain`) }, a, knobs));
      assert.deepEqual([fine.status, fine.final_url], [200, `http://${PUBLIC}:${hop.port}/plain`]);
    });

    it('every backend refuses a private URL argument, and org-scope backends go through the guard while platform ones are trusted', async () => {
      await provide(root, 'platform', 'web_fetch', 'web_fetch.jina', { api_key: JINA_KEY, base_url: jina.url });
      const sent = jina.requests.length;
      fails(await call('web_fetch', { url: 'http://10.0.0.1/admin' }, a), 'policy.ssrf_blocked');
      assert.equal(jina.requests.length, sent, 'Jina was not asked');
      assert.equal(ok(await call('web_fetch', { url: 'https://example.com/' }, a)).title, 'Jina page', 'a platform backend on loopback is trusted');

      // An org backend stored while private targets were allowed is refused once they are not.
      await setSetting(t, 'security.ssrf_allow_private', true);
      await provide(a, 'org', 'web_search', 'web_search.searxng', { base_url: searx2.url });
      await provide(a, 'org', 'web_fetch', 'web_fetch.firecrawl', { api_key: FC_KEY, base_url: fire.url });
      await setSetting(t, 'security.ssrf_allow_private', false);
      const before2 = [searx2.requests.length, fire.requests.length];
      fails(await call('web_search', { query: 'x' }, a), 'policy.ssrf_blocked');
      fails(await call('web_fetch', { url: 'https://example.com/' }, a), 'policy.ssrf_blocked');
      assert.deepEqual([searx2.requests.length, fire.requests.length], before2);
      // The same org backends behind a name that resolves to a public address are reached through the guard.
      await setSetting(t, 'security.ssrf_allow_private', true);
      const alias = await fakeSearxng(PUBLIC).start();
      try {
        await provide(a, 'org', 'web_search', 'web_search.searxng', { base_url: `http://public.test:${alias.port}` });
        await setSetting(t, 'security.ssrf_allow_private', false);
        assert.equal(ok(await call('web_search', { query: 'guarded' }, a, knobs)).results[0].title, 'SearX 1: guarded');
      } finally {
        await alias.close();
      }
    });
  });

  it('a stub-scripted run: tool.call / tool.result events carry the real results', async () => {
    await provide(a, 'org', 'web_search', 'web_search.searxng', { base_url: searx2.url });
    const page = `${pages.url}/article`;
    const script = {
      stub: {
        steps: [
          { tool_call: { name: 'web_search', arguments: { query: 'river otters', max_results: 2 } } },
          { tool_call: { name: 'web_fetch', arguments: { url: page, max_chars: 1000 } } },
          { text: 'done' },
        ],
      },
    };
    const events = await runScript(a, script);
    assert.equal(events.at(-1).type, 'run.completed', JSON.stringify(events.at(-1)));
    const calls = events.filter((e) => e.type === 'tool.call').map((e) => e.data);
    assert.deepEqual(calls.map((c) => [c.tool_name, c.source]), [['web_search', 'provider'], ['web_fetch', 'provider']]);
    const results = events.filter((e) => e.type === 'tool.result').map((e) => e.data);
    assert.equal(results[0].error, null);
    assert.deepEqual(results[0].result, {
      results: [
        { title: 'SearX 1: river otters', url: 'https://searx.example/1', snippet: 'Content 1 for river otters' },
        { title: 'SearX 2: river otters', url: 'https://searx.example/2', snippet: 'Content 2 for river otters' },
      ],
    });
    assert.equal(new URL(searx2.last().url, 'http://x').searchParams.get('q'), 'river otters');
    assert.equal(results[1].error, null);
    assert.equal(results[1].result.title, 'Otters of the River');
    assert.equal(results[1].result.status, 200);
    assert.equal(results[1].result.content.length, 1000);
    assert.equal(results[1].result.truncated, true);

    // Account B has no search backend: the call fails as a tool result, the run goes on.
    const other = await runScript(b, { stub: { steps: [{ tool_call: { name: 'web_search', arguments: { query: 'x' } } }, { text: 'done' }] } });
    const failed = other.find((e) => e.type === 'tool.result').data;
    assert.equal(failed.result, null);
    assert.equal(failed.error.error_class, 'tool.not_configured');
    assert.equal(other.at(-1).type, 'run.completed');
  });

  async function runScript(user: TestUser, script: unknown): Promise<any[]> {
    const th = await t.post('/v1/threads', {}, { token: user.token });
    assert.equal(th.status, 201, th.text);
    const msg = await t.post(`/v1/threads/${th.body.id}/messages`, { content: JSON.stringify(script) }, { token: user.token });
    assert.equal(msg.status, 201, msg.text);
    const run = await t.post(`/v1/threads/${th.body.id}/runs`, {}, { token: user.token });
    assert.equal(run.status, 201, run.text);
    const sse = await t.get(`/v1/runs/${run.body.run_id}/events`, { token: user.token });
    return sse.text
      .split('\n\n')
      .filter((f) => f.startsWith('id: '))
      .map((f) => JSON.parse(f.split('\n')[1].slice(6)));
  }
});
