// Gateways for tests: started in this process on a free port in front of real upstreams (a
// test API listening on a port, or small node:http servers), with settings a test can change.
import http from 'node:http';
import pino, { type Logger } from 'pino';
import { Writable } from 'node:stream';
import assert from 'node:assert/strict';
import type { TestApp, TestUser } from './app.js';
import { TEST_SECRETS } from './app.js';
import { buildGateway, type Gateway } from '../../src/gateway/server.js';
import { MemoryAccessLog, type AccessLogStore } from '../../src/gateway/access-log.js';
import { MemoryBucketStore, type BucketStore } from '../../src/gateway/buckets.js';
import type { SettingReader } from '../../src/gateway/settings.js';
import { SETTINGS, type SettingValue } from '../../src/modules/settings/registry.js';

export interface TestGateway {
  gateway: Gateway;
  base: string;
  port: number;
  /** gateway.* settings of this gateway (when it does not read an app's); applied by `set`. */
  set(values: Record<string, SettingValue>): Promise<void>;
  /** Log lines the gateway wrote. */
  logs: string[];
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  buckets?: BucketStore;
  accessLog?: AccessLogStore;
  readSetting?: SettingReader;
  trustIncomingTraceId?: boolean;
  configRefreshMs?: number;
  probeIntervalMs?: number;
  failCooldownMs?: number;
  settings?: Record<string, SettingValue>;
  /** Hand requests to this app's router in this process, as `arkloop serve` does with its gateway. */
  local?: TestApp;
}

/** A pino logger whose lines are kept in `lines`. */
export function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

export async function startTestGateway(upstreams: string[], opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const values = new Map<string, SettingValue>(Object.entries(opts.settings ?? {}));
  const { log, lines } = capturingLogger();
  const gateway = await buildGateway({
    log,
    upstreams,
    jwtKey: new TextEncoder().encode(TEST_SECRETS.jwtSecret),
    trustIncomingTraceId: opts.trustIncomingTraceId ?? false,
    readSetting: opts.readSetting ?? (async (key) => values.get(key) ?? SETTINGS.get(key)!.default),
    configRefreshMs: opts.configRefreshMs ?? 10_000,
    buckets: opts.buckets ?? new MemoryBucketStore(),
    accessLog: opts.accessLog ?? new MemoryAccessLog(),
    upstream: { probeIntervalMs: opts.probeIntervalMs ?? 0, ...(opts.failCooldownMs !== undefined ? { failCooldownMs: opts.failCooldownMs } : {}) },
    ...(opts.local ? { local: opts.local.app.routing } : {}),
  });
  await gateway.app.listen({ host: '127.0.0.1', port: 0 });
  const port = (gateway.app.server.address() as { port: number }).port;
  return {
    gateway,
    base: `http://127.0.0.1:${port}`,
    port,
    logs: lines,
    set: async (v) => {
      for (const [k, x] of Object.entries(v)) values.set(k, x);
      await gateway.reloadConfig();
    },
    close: () => gateway.close(),
  };
}

/** An access-log entry of a request the API answered for `user` in their personal account. */
export function assertLoggedAs(entry: { identity_type: string; user_id: string | null; org_id: string | null; username: string | null }, user: TestUser): void {
  assert.equal(entry.identity_type, 'user');
  assert.equal(entry.user_id, user.id);
  assert.equal(entry.org_id, user.personalAccountId);
  assert.equal(entry.username, user.login);
}

/** POST /v1/asr/transcribe with an audio file of `bytes` bytes. */
export async function uploadAudio(base: string, token: string, bytes: number): Promise<{ status: number; body: any; text: string }> {
  const form = new FormData();
  form.set('file', new Blob([Buffer.alloc(bytes, 1)], { type: 'audio/wav' }), 'audio.wav');
  const res = await fetch(`${base}/v1/asr/transcribe`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'user-agent': 'curl/8' }, body: form });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
}

/** The test app listening on a free port (its inject helpers keep working). */
export async function listenTestApp(t: TestApp): Promise<string> {
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
}

/** One request with full control of the headers and the local address (127.0.0.x is a distinct peer). */
export function rawRequest(
  base: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method: opts.method ?? 'GET', headers: opts.headers, localAddress: opts.localAddress, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A node:http upstream answering every request with what it received (`name` tells which one). */
export async function startEchoUpstream(name: string, handle?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean): Promise<{ base: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (handle?.(req, res)) return;
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const out = JSON.stringify({ upstream: name, method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json', 'x-arkloop-identity-type': 'user', 'x-arkloop-user-id': 'echo-user', 'keep-alive': 'timeout=5', 'x-drop-me': '1', connection: 'x-drop-me' });
      res.end(out);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
