// The SSRF guard (api.md §27.6) with real sockets: a table of refused targets, name resolution
// checked on every connection (rebinding fails), every redirect hop checked again.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { SsrfBlockedError, checkUrl, guardedFetch, isBlockedAddress, type Resolver } from '../src/lib/ssrf.js';

const STRICT = { allowPrivate: false };

function listen(host: string, handler: (url: string, res: import('node:http').ServerResponse) => void): Promise<{ server: Server; port: number; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req.url ?? '', res);
  });
  return new Promise((resolve) => server.listen(0, host, () => resolve({ server, port: (server.address() as AddressInfo).port, hits })));
}

/** A resolver answering from a table (each name's answers in turn, the last one repeating). */
function tableResolver(table: Record<string, string[][]>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const seen = new Map<string, number>();
  const fn = async (hostname: string): Promise<LookupAddress[]> => {
    calls.push(hostname);
    const answers = table[hostname];
    if (!answers) throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    const n = seen.get(hostname) ?? 0;
    seen.set(hostname, n + 1);
    return answers[Math.min(n, answers.length - 1)].map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(fn, { calls });
}

async function refusal(p: Promise<unknown>): Promise<SsrfBlockedError> {
  const err = await p.then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SsrfBlockedError, `expected SsrfBlockedError, got ${String(err)}`);
  assert.equal((err as SsrfBlockedError).code, 'policy.ssrf_blocked');
  return err as SsrfBlockedError;
}

describe('the SSRF guard', () => {
  it('refuses these URLs without any lookup', () => {
    const refused = [
      'http://127.0.0.1/',
      'http://127.8.9.10:8080/x',
      'http://[::1]/',
      'http://10.1.2.3/',
      'http://172.16.0.1/',
      'http://172.31.255.255/',
      'http://192.168.1.1/',
      'http://169.254.169.254/latest/meta-data/',
      'http://100.64.0.1/',
      'http://0.0.0.0/',
      'http://224.0.0.1/',
      'http://255.255.255.255/',
      'http://[::ffff:127.0.0.1]/',
      'http://[::ffff:a9fe:a9fe]/',
      'http://[fc00::1]/',
      'http://[fe80::1]/',
      'http://[::]/',
      'http://0x7f.1/',
      'http://2130706433/',
      'http://0177.0.0.1/',
      'http://localhost:8080/',
      'http://LOCALHOST./',
      'http://api.localhost/',
      'http://metadata.google.internal/computeMetadata/v1/',
      'ftp://example.com/',
      'file:///etc/passwd',
      'gopher://example.com/',
      'http://user:pass@example.com/',
      'http://user@example.com/',
      'not a url',
    ];
    for (const url of refused) assert.throws(() => checkUrl(url, STRICT), SsrfBlockedError, url);
    for (const url of ['https://api.openai.com/v1', 'http://example.com:8080/x', 'http://172.32.0.1/', 'http://[2606:4700::1111]/', 'http://does-not-resolve.invalid/']) {
      assert.equal(checkUrl(url, STRICT).href.length > 0, true, url);
    }
  });

  it('with security.ssrf_allow_private, private targets pass but scheme and credentials rules stay', () => {
    const open = { allowPrivate: true };
    assert.equal(checkUrl('http://127.0.0.1:9/', open).hostname, '127.0.0.1');
    assert.equal(checkUrl('http://localhost/', open).hostname, 'localhost');
    assert.throws(() => checkUrl('ftp://127.0.0.1/', open), SsrfBlockedError);
    assert.throws(() => checkUrl('http://a:b@127.0.0.1/', open), SsrfBlockedError);
  });

  it('classifies addresses by the contract ranges, IPv4-mapped forms included', () => {
    for (const a of ['127.0.0.1', '10.0.0.1', '100.127.255.255', '169.254.0.1', '172.20.1.1', '192.168.0.1', '240.0.0.1', '::1', '::', '::ffff:10.0.0.1', 'fd12::1', 'fe80::2', 'ff02::1', 'garbage']) {
      assert.equal(isBlockedAddress(a), true, a);
    }
    for (const a of ['8.8.8.8', '100.128.0.1', '172.15.255.255', '203.0.113.7', '2001:db8::1', '::ffff:8.8.8.8']) {
      assert.equal(isBlockedAddress(a), false, a);
    }
  });

  describe('at call time', () => {
    let target: Awaited<ReturnType<typeof listen>>;
    let hop: Awaited<ReturnType<typeof listen>>;
    // 127.0.0.2 stands in for a public server: the tests' address rule lets exactly it through.
    const PUBLIC_STAND_IN = '127.0.0.2';
    const isBlocked = (a: string) => a !== PUBLIC_STAND_IN && isBlockedAddress(a);

    before(async () => {
      target = await listen('127.0.0.1', (_url, res) => res.end('internal secret'));
      hop = await listen(PUBLIC_STAND_IN, (url, res) => {
        const to = new URL(url, 'http://x').searchParams.get('to');
        if (to) {
          res.writeHead(302, { location: to });
          res.end();
        } else res.end('public page');
      });
    });
    after(() => {
      target.server.close();
      hop.server.close();
    });

    it('fetches an allowed target, connecting to the address its lookup checked', async () => {
      const resolver = tableResolver({ 'public.test': [[PUBLIC_STAND_IN]] });
      const f = guardedFetch({ allowPrivate: false, resolver, isBlocked });
      const res = await f(`http://public.test:${hop.port}/page`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'public page');
      assert.deepEqual(resolver.calls, ['public.test']);
    });

    it('refuses a name that resolves to loopback, or to one private address among public ones', async () => {
      const resolver = tableResolver({ 'evil.test': [['127.0.0.1']], 'mixed.test': [['203.0.113.7', '10.0.0.8']] });
      const f = guardedFetch({ allowPrivate: false, resolver });
      await refusal(f(`http://evil.test:${target.port}/`));
      await refusal(f(`http://mixed.test:${target.port}/`));
      assert.equal(target.hits.length, 0);
    });

    it('a DNS answer that changes between check and connect is never used (rebinding)', async () => {
      // First answer public (the stand-in's port is closed on it), every later one loopback.
      const resolver = tableResolver({ 'rebind.test': [['203.0.113.7'], ['127.0.0.1']] });
      const f = guardedFetch({ allowPrivate: false, resolver });
      const err = await f(`http://rebind.test:${target.port}/`, { signal: AbortSignal.timeout(1500) }).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err, 'the connection to the checked (unreachable) address fails');
      assert.equal(target.hits.length, 0, 'the loopback server was never reached');
      assert.deepEqual(resolver.calls, ['rebind.test'], 'one lookup per connection, no second resolution');
    });

    it('checks every redirect hop: to a loopback literal, to a name resolving to loopback, to another scheme', async () => {
      const resolver = tableResolver({ 'evil.test': [['127.0.0.1']] });
      const f = guardedFetch({ allowPrivate: false, resolver, isBlocked });
      const via = (to: string) => `http://${PUBLIC_STAND_IN}:${hop.port}/r?to=${encodeURIComponent(to)}`;
      await refusal(f(via(`http://127.0.0.1:${target.port}/`)));
      await refusal(f(via(`http://evil.test:${target.port}/`)));
      await refusal(f(via(`http://[::ffff:7f00:1]:${target.port}/`)));
      await refusal(f(via('file:///etc/passwd')));
      assert.equal(target.hits.length, 0);
      const ok = await f(via(`http://${PUBLIC_STAND_IN}:${hop.port}/final`));
      assert.equal(await ok.text(), 'public page');
    });

    it('stops after the redirect limit', async () => {
      const f = guardedFetch({ allowPrivate: false, isBlocked, maxRedirects: 2 });
      let url = `http://${PUBLIC_STAND_IN}:${hop.port}/end`;
      for (let i = 0; i < 3; i++) url = `http://${PUBLIC_STAND_IN}:${hop.port}/r?to=${encodeURIComponent(url)}`;
      await assert.rejects(f(url), /more than 2 redirects/);
    });

    it('with security.ssrf_allow_private the loopback server is reachable', async () => {
      const res = await guardedFetch({ allowPrivate: true })(`http://127.0.0.1:${target.port}/`);
      assert.equal(await res.text(), 'internal secret');
    });
  });
});
