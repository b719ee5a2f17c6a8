// The `webhook.deliver` job (api.md §20.2): one attempt per lease. It POSTs the stored event
// body, signed afresh, through the SSRF guard (every resolved address checked, the connection
// made to the address checked, redirects not followed), then records the attempt on the
// delivery row and, in the same transaction, schedules the next attempt on the job itself.
//
// At least once: a worker killed after the receiver's 2xx but before the row is updated leaves
// the job leased; when the lease expires another worker sends it again, with the same
// `webhook-id` / `X-Arkloop-Delivery` and event id, which receivers dedupe. Once a success is
// recorded (in the statement that also deletes the job) the row is no longer pending, and a
// job that somehow runs again for it sends nothing.
import type { Logger } from 'pino';
import type { AppContext } from '../../app-context.js';
import { sql } from 'kysely';
import { completeJobSql, rescheduleJob, rescheduleJobSql, type JobRow } from '../../engine/jobs.js';
import { decryptSecret } from '../../lib/crypto.js';
import { SsrfBlockedError, guardedFetch } from '../../lib/ssrf.js';
import { signDelivery } from './signing.js';
import { recordAudit } from '../audit/store.js';
import { dropPendingDeliveries, failPendingDeliveries, shapeEndpoint } from './store.js';
import { webhooksChanged } from './outbox.js';

const MAX_RETRY_AFTER_MS = 3_600_000;
const RESPONSE_BODY_CHARS = 1024;
const USER_AGENT = 'Arkloop-Webhook/1.0';

/** The delay before attempt `attempt + 1`: base × 2^(attempt−1), or a longer Retry-After, at most 1 h. */
export function retryDelayMs(baseMs: number, attempt: number, retryAfterMs: number | null): number {
  const exponential = baseMs * 2 ** Math.max(0, attempt - 1);
  return Math.min(Math.max(exponential, retryAfterMs ?? 0), MAX_RETRY_AFTER_MS);
}

/** `Retry-After` as milliseconds from `nowMs` (delta-seconds or an HTTP date); null when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (!value) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

function causeText(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: string; code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    const piece = e.code ?? e.message;
    if (piece && !parts.includes(piece)) parts.push(piece);
  }
  return parts.join(': ') || 'unknown error';
}

interface Attempt {
  statusCode: number | null;
  error: string | null;
  body: string | null;
  retryAfterMs: number | null;
}

async function readSome(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length < RESPONSE_BODY_CHARS) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return text.slice(0, RESPONSE_BODY_CHARS);
}

export async function deliverWebhook(ctx: AppContext, job: JobRow, signal: AbortSignal, log: Logger): Promise<boolean> {
  const deliveryId = String((job.payload as { delivery_id?: unknown }).delivery_id ?? '');
  const row = await ctx.db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhook_endpoints as e', 'e.id', 'd.endpoint_id')
    .select(['d.id', 'd.org_id', 'd.status', 'd.attempts', 'd.payload', 'd.event_type', 'd.next_attempt_at', 'e.id as endpoint_id', 'e.url', 'e.enabled', 'e.deleted_at', 'e.secret_enc'])
    .where('d.id', '=', deliveryId)
    .executeTakeFirst();
  if (!row || row.status !== 'pending') return false; // done already (or dropped): the worker deletes the job
  if (row.deleted_at) {
    await dropPendingDeliveries(ctx.db, row.endpoint_id);
    return false;
  }
  if (!row.enabled) {
    await failPendingDeliveries(ctx.db, row.endpoint_id);
    return false;
  }
  // A worker that died after scheduling the next attempt but before requeueing its job.
  if (row.next_attempt_at && row.next_attempt_at.getTime() > ctx.clock.nowMs() + 1000) {
    await rescheduleJob(ctx.db, job.leased_by ?? '', job.id, row.next_attempt_at);
    return true;
  }

  const [timeoutMs, maxAttempts, baseDelayMs, allowPrivate] = await Promise.all([
    ctx.settings.int('webhook.timeout_ms'),
    ctx.settings.int('webhook.max_attempts'),
    ctx.settings.int('webhook.retry_base_delay_ms'),
    ctx.settings.bool('security.ssrf_allow_private'),
  ]);
  const p = row.payload as Record<string, unknown>;
  // The stored jsonb reorders keys; the body is sent in the contract's order, the same bytes on every attempt.
  const body = JSON.stringify({ id: p.id, type: p.type, created_at: p.created_at, org_id: p.org_id, data: p.data });
  const secret = decryptSecret(row.secret_enc, ctx.secrets.encryptionKey);
  const t = Math.floor(Date.now() / 1000);
  const attemptNo = row.attempts + 1;

  const deadline = AbortSignal.timeout(timeoutMs);
  const attempt: Attempt = { statusCode: null, error: null, body: null, retryAfterMs: null };
  try {
    const res = await guardedFetch({ allowPrivate, followRedirects: false })(row.url, {
      method: 'POST',
      body,
      signal: AbortSignal.any([signal, deadline]),
      headers: {
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
        'x-arkloop-event': row.event_type,
        'x-arkloop-delivery': row.id,
        ...signDelivery(secret, row.id, t, body),
      },
    });
    attempt.statusCode = res.status;
    attempt.retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), Date.now());
    attempt.body = await readSome(res).catch(() => null);
    if (res.status < 200 || res.status > 299) attempt.error = `HTTP ${res.status}`;
  } catch (err) {
    // Stopped by the worker (shutdown, lost lease): nothing is recorded; the job runs again.
    if (signal.aborted) throw err;
    attempt.error =
      err instanceof SsrfBlockedError
        ? `policy.ssrf_blocked: ${err.reason}`
        : deadline.aborted
          ? `timeout: no answer within ${timeoutMs} ms`
          : `request failed: ${causeText(err)}`;
  }

  const ok = attempt.error === null;
  const gone = attempt.statusCode === 410;
  const giveUp = !ok && (gone || attemptNo >= maxAttempts);
  const nextAt = ok || giveUp ? null : new Date(ctx.clock.nowMs() + retryDelayMs(baseDelayMs, attemptNo, attempt.retryAfterMs));
  const worker = job.leased_by ?? '';
  const record = sql<{ recorded: number }>`
    WITH d AS (
      UPDATE webhook_deliveries SET status = ${ok ? 'succeeded' : giveUp ? 'failed' : 'pending'}, attempts = ${attemptNo},
             last_status_code = ${attempt.statusCode}, last_error = ${attempt.error}, response_body = ${attempt.body},
             next_attempt_at = ${nextAt}, delivered_at = ${ok ? sql`now()` : null}, updated_at = now()
       WHERE id = ${row.id} AND status = 'pending' AND attempts = ${row.attempts}
      RETURNING id
    ),
    j AS (${nextAt ? rescheduleJobSql(worker, job.id, nextAt) : completeJobSql(worker, job.id)} AND EXISTS (SELECT 1 FROM d))
    SELECT count(*)::int AS recorded FROM d`;
  // The attempt, its log row and the job's next state in one statement; a 410 also disables the endpoint.
  const recorded = gone
    ? await ctx.db.transaction().execute(async (trx) => {
        if ((await record.execute(trx)).rows[0].recorded === 0) return false;
        const before = await trx.selectFrom('webhook_endpoints').selectAll().where('id', '=', row.endpoint_id).executeTakeFirst();
        const after = await trx.updateTable('webhook_endpoints').set({ enabled: false, updated_at: new Date() }).where('id', '=', row.endpoint_id).returningAll().executeTakeFirst();
        await failPendingDeliveries(trx, row.endpoint_id);
        // The platform changed the endpoint, not a person: no actor; the job's id stands as trace id.
        if (before && after && before.enabled) {
          await recordAudit(trx, { traceId: job.id, ip: null, userAgent: null }, {
            orgId: row.org_id,
            actorUserId: null,
            action: 'webhook_endpoint.update',
            targetType: 'webhook_endpoint',
            targetId: row.endpoint_id,
            metadata: { fields: ['enabled'], reason: 'receiver answered 410 Gone', delivery_id: row.id },
            before: shapeEndpoint(before),
            after: shapeEndpoint(after),
          });
        }
        return true;
      })
    : (await record.execute(ctx.db)).rows[0].recorded > 0;
  if (gone && recorded) {
    log.info({ endpoint_id: row.endpoint_id }, 'webhook endpoint answered 410 Gone: disabled');
    await webhooksChanged(ctx, row.org_id);
  }
  if (!ok) log.debug({ delivery_id: row.id, attempt: attemptNo, error: attempt.error }, 'webhook delivery attempt failed');
  // Recorded: the statement already deleted or requeued the job. Otherwise another attempt was
  // recorded meanwhile (this lease had lapsed); the worker lets go of the job.
  return recorded;
}
