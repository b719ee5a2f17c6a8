// Local stand-ins for what the web tools talk to, over real HTTP on loopback: the Tavily,
// SearXNG, Jina Reader and Firecrawl APIs in their own wire formats (each records what it was
// sent and refuses a wrong key the way the real one does), and a page server with articles,
// plain text, redirects, an endless body, a stalled answer and binary content.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  /** Path and query as sent. */
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  json: any;
}

export type Handler = (req: Recorded, res: ServerResponse) => unknown;

export class FakeServer {
  readonly requests: Recorded[] = [];
  private server!: Server;
  port = 0;
  private readonly initial: Handler;
  constructor(
    private handler: Handler,
    private readonly host = '127.0.0.1',
  ) {
    this.initial = handler;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: unknown = undefined;
        try {
          json = body ? JSON.parse(body) : undefined;
        } catch {
          /* not JSON */
        }
        const rec: Recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, json };
        this.requests.push(rec);
        Promise.resolve(this.handler(rec, res)).catch((err) => {
          res.statusCode = 500;
          res.end(String(err));
        });
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, this.host, resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** Replaces the handler (a test that wants a failure); `reset()` brings the original back. */
  use(handler: Handler): void {
    this.handler = handler;
  }

  reset(): void {
    this.handler = this.initial;
  }

  last(): Recorded {
    const r = this.requests.at(-1);
    if (!r) throw new Error('no request recorded');
    return r;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const bearer = (r: Recorded) => /^Bearer (.+)$/.exec(String(r.headers.authorization ?? ''))?.[1] ?? null;

/** Tavily `POST /search`: Bearer key, JSON {query, max_results, ...} → {query, results: [{title, url, content, score}], ...}. */
export function fakeTavily(key: string): FakeServer {
  return new FakeServer((r, res) => {
    if (r.method !== 'POST' || !r.url.startsWith('/search')) return json(res, 404, { detail: { error: 'Not Found' } });
    if (bearer(r) !== key) return json(res, 401, { detail: { error: 'Unauthorized: missing or invalid API key.' } });
    const q = String(r.json?.query ?? '');
    const n = Number(r.json?.max_results ?? 5);
    const results = Array.from({ length: n }, (_, i) => ({
      title: `Tavily ${i + 1} for ${q}`,
      url: `https://tavily.example/${i + 1}`,
      content: `Snippet ${i + 1} about ${q}`,
      score: 0.9 - i / 100,
      raw_content: null,
    }));
    json(res, 200, { query: q, follow_up_questions: null, answer: null, images: [], results, response_time: 0.42 });
  });
}

/** SearXNG `GET /search?q=…&format=json` → {query, number_of_results, results: [{title, url, content, engine, ...}], ...}; 20 results, HTML without format=json. */
export function fakeSearxng(host?: string): FakeServer {
  return new FakeServer((r, res) => {
    const u = new URL(r.url, 'http://x');
    if (r.method !== 'GET' || !u.pathname.endsWith('/search')) return json(res, 404, {});
    if (u.searchParams.get('format') !== 'json') {
      res.writeHead(403, { 'content-type': 'text/html' });
      return res.end('<html><body>403 Forbidden</body></html>');
    }
    const q = u.searchParams.get('q') ?? '';
    const results = Array.from({ length: 20 }, (_, i) => ({
      url: `https://searx.example/${i + 1}`,
      title: `SearX ${i + 1}: ${q}`,
      content: `Content ${i + 1} for ${q}`,
      engine: 'duckduckgo',
      engines: ['duckduckgo'],
      positions: [i + 1],
      score: 1 / (i + 1),
      category: 'general',
    }));
    results.splice(1, 0, { title: 'no url here' } as never); // malformed entries are skipped
    json(res, 200, { query: q, number_of_results: results.length, results, answers: [], corrections: [], infoboxes: [], suggestions: [], unresponsive_engines: [] });
  }, host);
}

/** Jina Reader `GET /<url>` with `Accept: application/json` → {code, status, data: {title, description, url, content, usage}}. */
export function fakeJina(key: string, content = '# Jina page\n\nRead by Jina.'): FakeServer {
  return new FakeServer((r, res) => {
    if (bearer(r) !== key) return json(res, 401, { data: null, code: 401, name: 'AuthenticationRequiredError', status: 40103, message: 'Invalid API key' });
    const target = r.url.slice(1);
    if (!String(r.headers.accept ?? '').includes('application/json')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end(`Title: Jina page\n\nURL Source: ${target}\n\nMarkdown Content:\n${content}`);
    }
    json(res, 200, { code: 200, status: 20000, data: { title: 'Jina page', description: 'desc', url: `${target}#final`, content, usage: { tokens: 12 } } });
  });
}

/** Firecrawl `POST /v1/scrape` {url, formats} → {success, data: {markdown, metadata: {title, sourceURL, url, statusCode, contentType}}}. */
export function fakeFirecrawl(key: string, markdown = '# Firecrawl page\n\nScraped by Firecrawl.'): FakeServer {
  return new FakeServer((r, res) => {
    if (r.method !== 'POST' || r.url !== '/v1/scrape') return json(res, 404, { success: false, error: 'Not found' });
    if (bearer(r) !== key) return json(res, 401, { success: false, error: 'Unauthorized: Invalid token' });
    const url = String(r.json?.url ?? '');
    if (url.includes('unscrapable')) return json(res, 200, { success: false, error: 'All scraping engines failed' });
    json(res, 200, {
      success: true,
      data: {
        markdown,
        metadata: { title: 'Firecrawl page', description: 'd', language: 'en', sourceURL: url, url: `${url}?final=1`, statusCode: 200, contentType: 'text/html; charset=utf-8', proxyUsed: 'basic', cacheState: 'miss' },
      },
    });
  });
}

export const ARTICLE_HTML = `<!doctype html>
<html><head><title>Otters of the River</title><style>.x{color:red}</style><script>window.secret = "do-not-show";</script></head>
<body>
<nav><a href="/">Home</a> <a href="/about">About</a></nav>
<article>
<h1>Otters of the River</h1>
<p>River otters are semiaquatic mammals. ${'They spend their days swimming, hunting fish and playing along the banks of rivers and lakes. '.repeat(6)}</p>
<p>Their dens are called holts, dug into the river bank. ${'Otters are social animals that communicate with whistles and chirps. '.repeat(6)}</p>
<ul><li>Fish</li><li>Crayfish</li></ul>
</article>
<footer>Copyright the river</footer>
</body></html>`;

/**
 * Pages: /article (HTML), /big-html?n=…, /plain, /json, /latin1, /png, /missing (404 HTML), /long?n=…,
 * /endless (never ends; counts what it managed to write), /stall (never answers),
 * /stall-body (headers, then nothing), /r?to=<url> (302), /chain/<n> (n redirects, then /plain).
 */
export function fakePages(host = '127.0.0.1'): FakeServer & { endlessBytes: () => number } {
  let endless = 0;
  const server = new FakeServer((r, res) => {
    const u = new URL(r.url, 'http://x');
    const p = u.pathname;
    if (p === '/article') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(ARTICLE_HTML);
    }
    if (p === '/plain') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      return res.end('line one\n  line two <b>not html</b>\n');
    }
    if (p === '/json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end('{"a": 1, "b": [true, null]}');
    }
    if (p === '/latin1') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=iso-8859-1' });
      return res.end(Buffer.from([0x63, 0x61, 0x66, 0xe9])); // "café"
    }
    if (p === '/png') {
      res.writeHead(200, { 'content-type': 'image/png' });
      return res.end(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]));
    }
    if (p === '/missing') {
      res.writeHead(404, { 'content-type': 'text/html' });
      return res.end('<html><head><title>Not here</title></head><body><p>No such page.</p></body></html>');
    }
    if (p === '/big-html') {
      // Far more elements than Readability is given: read whole.
      const blocks = Array.from({ length: Number(u.searchParams.get('n') ?? 2000) }, (_, i) => `<div class="row"><h3>Row ${i}</h3><p>Cell <span>${i}</span> <a href="/r${i}">more</a></p></div>`);
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end(`<html><head><title>Big table</title><script>var hidden = 1;</script></head><body>${blocks.join('')}</body></html>`);
    }
    if (p === '/long') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('x'.repeat(Number(u.searchParams.get('n') ?? 1000)));
    }
    if (p === '/endless') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(64 * 1024, 'a');
      let open = true;
      res.on('close', () => (open = false));
      const pump = () => {
        while (open) {
          endless += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      return pump();
    }
    if (p === '/stall') return; // never answers
    if (p === '/stall-body') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return void res.write('partial');
    }
    if (p === '/r') {
      res.writeHead(302, { location: u.searchParams.get('to') ?? '/plain' });
      return res.end();
    }
    const chain = /^\/chain\/(\d+)$/.exec(p);
    if (chain) {
      const n = Number(chain[1]);
      res.writeHead(302, { location: n > 1 ? `/chain/${n - 1}` : '/plain' });
      return res.end();
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('unknown page');
  }, host);
  return Object.assign(server, { endlessBytes: () => endless });
}
