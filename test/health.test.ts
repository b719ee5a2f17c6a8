import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { startTestApp, TEST_PG_URL, TEST_SECRETS, type TestApp } from './helpers/app.js';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/database.js';
import { buildApp } from '../src/http/app.js';
import { createContext } from '../src/server.js';
import { expectedSchemaVersion } from '../src/db/migrator.js';

describe('health and system', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp(); });
  after(async () => { await t.close(); });

  it('GET /healthz answers ok with a trace id', async () => {
    const res = await t.get('/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ok' });
    assert.match(String(res.headers['x-trace-id']), /^[0-9a-f]{32}$/);
  });

  it('GET /readyz reports the schema version', async () => {
    const res = await t.get('/readyz');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ok', schema_version: expectedSchemaVersion() });
    assert.match(res.body.schema_version, /^\d{4}$/);
  });

  it('unknown routes answer the 404 envelope', async () => {
    const res = await t.get('/v1/no-such-thing');
    assert.equal(res.status, 404);
    assert.equal(res.body.code, 'not_found');
    assert.equal(res.body.error, 'not_found');
    assert.equal(res.body.trace_id, res.headers['x-trace-id']);
    assert.deepEqual(res.body.details, {});
    const m = await t.request('PATCH', '/healthz');
    assert.equal(m.status, 404);
    assert.equal(m.body.code, 'not_found');
  });

  it('GET /metrics serves Prometheus text with request counts by route and status', async () => {
    await t.get('/healthz');
    const res = await t.get('/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /text\/plain/);
    assert.match(res.text, /arkloop_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
    assert.match(res.text, /arkloop_http_request_duration_seconds_bucket/);
    assert.match(res.text, /# TYPE arkloop_runs gauge/);
    assert.match(res.text, /# TYPE arkloop_job_queue_depth gauge/);
    assert.match(res.text, /arkloop_sse_streams \d+/);
  });

  it('serves the OpenAPI document and the docs page', async () => {
    const res = await t.get('/openapi.json');
    assert.equal(res.status, 200);
    assert.equal(res.body.openapi, '3.1.0');
    assert.ok(res.body.paths['/v1/auth/register']);
    assert.ok(res.body.paths['/v1/me']);
    const docs = await t.get('/docs');
    assert.ok([200, 302].includes(docs.status));
    const page = docs.status === 302 ? await t.get(String(docs.headers.location).startsWith('/') ? String(docs.headers.location) : '/docs/') : docs;
    assert.equal(page.status, 200);
    assert.match(page.text, /<html/i);
  });

  it('readyz answers 503 when the database is unreachable', async () => {
    // PostgreSQL: a server address where nothing listens. PGlite: a closed database.
    const database = TEST_PG_URL
      ? await openDatabase({ databaseUrl: 'postgres://root@127.0.0.1:1/none', dataDir: null })
      : await openDatabase({ databaseUrl: null, dataDir: null });
    if (!TEST_PG_URL) await database.close();
    const config = loadConfig({ ARKLOOP_LOG_LEVEL: 'silent' });
    const ctx = await createContext({ config, database, secrets: TEST_SECRETS, log: pino({ level: 'silent' }) });
    const app = await buildApp(ctx);
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(res.statusCode, 503);
    const body = JSON.parse(res.body);
    assert.equal(body.status, 'unavailable');
    assert.match(body.reason, /database/);
    await app.close();
    await database.close().catch(() => undefined);
  });
});
