// How the API serves the web console (issue 11), without a browser: the page and its strict
// CSP, client-side routes falling back to the page while /v1 keeps its JSON 404s, cache headers
// of the static files, the first-load byte budget, and the startup line pointing to it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { startTestApp, type TestApp } from './helpers/app.js';
import { startupLine } from '../src/cli/startup.js';
import { loadConfig } from '../src/config.js';

const HTML = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };

describe('web console serving', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => {
    await t.close();
  });

  it('answers / with the page under a strict Content-Security-Policy', async () => {
    const res = await t.get('/', { headers: HTML });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /connect-src 'self'/);
    assert.match(csp, /style-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    // The one inline script is the import map, allowed by its hash and nothing else.
    const inline = [...res.text.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    assert.equal(inline.length, 1);
    const hash = createHash('sha256').update(inline[0]).digest('base64');
    assert.equal(csp.match(/script-src ([^;]+)/)![1], `'self' 'sha256-${hash}'`);
    assert.doesNotMatch(res.text, /\sstyle=|\son[a-z]+=/i);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
  });

  it('falls back to the page for console routes, never for /v1 or non-HTML requests', async () => {
    for (const path of ['/t/0190d8f4-0000-7000-8000-000000000000', '/settings/api-keys', '/admin/users', '/signin?next=%2Fsettings']) {
      const res = await t.get(path, { headers: HTML });
      assert.equal(res.status, 200, path);
      assert.match(res.text, /<div id="app">/, path);
    }
    const api = await t.get('/v1/nope', { headers: HTML });
    assert.equal(api.status, 404);
    assert.equal(api.body.code, 'not_found');
    assert.equal((await t.get('/nope', { headers: { accept: 'application/json' } })).body.code, 'not_found');
    assert.equal((await t.post('/settings', {}, { headers: HTML })).status, 404);
    assert.equal((await t.get('/assets/app/nope.js', { headers: HTML })).body.code, 'not_found');
    // The system endpoints are untouched.
    assert.equal((await t.get('/healthz')).status, 200);
    assert.equal((await t.get('/openapi.json')).body.openapi, '3.1.0');
    assert.equal((await t.get('/docs/', { headers: HTML })).status, 200);
    assert.ok(!Object.keys((await t.get('/openapi.json')).body.paths).some((p) => p === '/' || p.startsWith('/assets')));
  });

  it('caches versioned library files for a year and revalidates the console modules', async () => {
    const page = (await t.get('/', { headers: HTML })).text;
    const vendor = [...page.matchAll(/"(\/assets\/vendor\/[^"]+)"/g)].map((m) => m[1]);
    assert.ok(vendor.length >= 5, vendor.join());
    for (const url of vendor) {
      const res = await t.get(url);
      assert.equal(res.status, 200, url);
      assert.match(String(res.headers['content-type']), /^text\/javascript/);
      assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
      assert.match(url, /@\d+\.\d+\.\d+/, 'the version is in the URL');
      const gz = await t.app.inject({ method: 'GET', url, headers: { 'accept-encoding': 'gzip' } });
      assert.equal(gz.headers['content-encoding'], 'gzip');
      assert.equal(gunzipSync(gz.rawPayload).toString(), res.text);
      const br = await t.app.inject({ method: 'GET', url, headers: { 'accept-encoding': 'gzip, deflate, br' } });
      assert.equal(br.headers['content-encoding'], 'br');
      assert.equal(brotliDecompressSync(br.rawPayload).toString(), res.text);
    }
    assert.equal((await t.get('/assets/vendor/preact@0.0.0-dist_preact.mjs')).status, 404);
    const main = await t.get('/assets/app/main.js');
    assert.equal(main.status, 200);
    assert.equal(main.headers['cache-control'], 'no-cache');
    const again = await t.get('/assets/app/main.js', { headers: { 'if-none-match': String(main.headers.etag) } });
    assert.equal(again.status, 304);
    assert.equal((await t.app.inject({ method: 'GET', url: '/assets/app/app.css', headers: { 'accept-encoding': 'gzip' } })).headers['content-encoding'], 'gzip');
    // The API's own answers are not compressed.
    const api = await t.app.inject({ method: 'GET', url: '/openapi.json', headers: { 'accept-encoding': 'gzip, br' } });
    assert.equal(api.headers['content-encoding'], undefined);
    assert.equal((await t.get('/assets/app/../package.json')).status, 404);
    assert.equal((await t.get('/assets/app/%2e%2e/package.json')).status, 404);
  });

  it('keeps the first load under 300 KB', async () => {
    // Everything the page loads (itself, its stylesheet, every module it preloads or imports), as
    // a browser asking for gzip receives it.
    const page = (await t.get('/', { headers: HTML })).text;
    const map: Record<string, string> = JSON.parse(/<script type="importmap">([^<]+)<\/script>/.exec(page)![1]).imports;
    const queue = [...page.matchAll(/(?:href|src)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
    const seen = new Set<string>();
    let bytes = Buffer.byteLength(page);
    while (queue.length) {
      const url = queue.shift()!;
      if (seen.has(url)) continue;
      seen.add(url);
      const res = await t.app.inject({ method: 'GET', url, headers: { 'accept-encoding': 'gzip' } });
      assert.equal(res.statusCode, 200, url);
      bytes += res.rawPayload.length;
      const text = res.headers['content-encoding'] === 'gzip' ? gunzipSync(res.rawPayload).toString() : res.body;
      if (!url.endsWith('.js') && !url.endsWith('.mjs')) continue;
      for (const m of text.matchAll(/(?:^|[;\s}])(?:import|export)\s*(?:[^'"]*?from\s*)?["']([^"']+)["']/g)) {
        const spec = m[1];
        queue.push(map[spec] ?? new URL(spec, `http://x${url}`).pathname);
      }
    }
    assert.ok(seen.size >= 15, `walked ${seen.size} files`);
    assert.ok(bytes < 300 * 1024, `first load is ${bytes} bytes`);
    console.log(`# first load: ${seen.size + 1} files, ${bytes} bytes`);
  });

  it('prints the startup line that points to the console', () => {
    const config = loadConfig({ ARKLOOP_DATA_DIR: '/srv/arkloop' });
    const [first, second] = startupLine('serve', config, { address: '127.0.0.1', family: 'IPv4', port: 19001 }).split('\n');
    assert.equal(first, 'Arkloop ready: console http://127.0.0.1:19001/ · API /v1 · docs /docs');
    assert.equal(second, 'arkloop serve: embedded PGlite, data in /srv/arkloop');
    const all = startupLine('api', loadConfig({ ARKLOOP_API_ADDR: '0.0.0.0:8080', ARKLOOP_DATABASE_URL: 'postgres://u:secret@db:5432/ark', ARKLOOP_AUTH_JWT_SECRET: 'x'.repeat(40), ARKLOOP_ENCRYPTION_KEY: 'a'.repeat(64) }), null);
    assert.match(all, /^Arkloop ready: console http:\/\/127\.0\.0\.1:8080\/ · API \/v1 · docs \/docs \(listening on all interfaces\)\narkloop api: PostgreSQL at db:5432\/ark$/);
    assert.doesNotMatch(all, /secret/);
  });
});
