// The CLI's HTTP requests, over node:http / node:https. Hand-written on purpose, and kept this
// thin: on Node 20 the first `fetch` loads undici and web streams, about 0.3 s of CPU per process
// (measured in bench/cli.ts), which is most of what a `chat --once` would otherwise cost; the
// built-in http client loads in a few milliseconds.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

export interface HttpResponse {
  status: number;
  ok: boolean;
  headers: IncomingHttpHeaders;
  /** The body as a stream of Buffers (async iterable). */
  body: IncomingMessage;
  text(): Promise<string>;
  json<T = any>(): Promise<T>;
  /** Discards the body. */
  discard(): void;
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

export async function httpRequest(url: string, opts: HttpOptions = {}): Promise<HttpResponse> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? await import('node:https') : await import('node:http');
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method: opts.method ?? 'GET', headers, signal: opts.signal }, (res) => {
      const status = res.statusCode ?? 0;
      const text = async () => {
        let s = '';
        res.setEncoding('utf8');
        for await (const chunk of res) s += chunk;
        return s;
      };
      resolve({
        status,
        ok: status >= 200 && status < 300,
        headers: res.headers,
        body: res,
        text,
        json: async () => JSON.parse(await text()),
        discard: () => void res.resume(),
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}
