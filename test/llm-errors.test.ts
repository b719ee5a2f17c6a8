import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { classifyStatus, connectionError, httpError, isContextOverflowMessage, parseRetryAfter } from '../src/llm/errors.js';

describe('llm error mapping', () => {
  it('parses Retry-After as seconds, HTTP date and retry-after-ms', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfter({ 'Retry-After': '12' }, now), 12_000);
    assert.equal(parseRetryAfter({ 'retry-after': '1.5' }, now), 1500);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:30 GMT' }), now), 30_000);
    assert.equal(parseRetryAfter({ 'retry-after': 'Tue, 31 Dec 2024 23:00:00 GMT' }, now), 0);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' }), now), 250);
    assert.equal(parseRetryAfter({ 'retry-after': 'soon' }, now), null);
    assert.equal(parseRetryAfter({}, now), null);
    assert.equal(parseRetryAfter(null, now), null);
  });

  it('maps statuses per §27.4', () => {
    const table: Array<[number, string, boolean]> = [
      [401, 'provider.auth_failed', false],
      [403, 'provider.auth_failed', false],
      [400, 'provider.bad_request', false],
      [404, 'provider.bad_request', false],
      [413, 'provider.bad_request', false],
      [422, 'provider.bad_request', false],
      [429, 'provider.rate_limited', true],
      [500, 'provider.unavailable', false],
      [504, 'provider.unavailable', false],
      [502, 'provider.unavailable', true],
      [503, 'provider.unavailable', true],
    ];
    for (const [status, cls, retryable] of table) assert.deepEqual(classifyStatus(status, 'x'), { errorClass: cls, retryable }, String(status));
    assert.equal(classifyStatus(400, 'prompt is too long: 208310 tokens > 200000 maximum').errorClass, 'provider.context_length_exceeded');
    assert.equal(classifyStatus(400, 'x', 'context_length_exceeded').errorClass, 'provider.context_length_exceeded');
    assert.ok(isContextOverflowMessage("This model's maximum context length is 4096 tokens"));
    assert.ok(!isContextOverflowMessage('Invalid value for temperature'));
    const e = httpError(429, 'slow', { 'retry-after': '3' });
    assert.equal(e.opts.retryAfterMs, 3000);
    assert.equal(e.name, 'LlmError');
  });

  it('connection failures are retryable before output and stream_interrupted after', () => {
    assert.equal(connectionError('x', { timedOut: true, outputStarted: false }).errorClass, 'provider.timeout');
    assert.equal(connectionError('x', { timedOut: false, outputStarted: false }).errorClass, 'provider.unavailable');
    const after = connectionError('x', { timedOut: false, outputStarted: true });
    assert.equal(after.errorClass, 'provider.stream_interrupted');
    assert.equal(after.opts.retryable, false);
  });
});
