// Idempotent creation (api.md §1.8a): the first 2xx answer to an `Idempotency-Key` is kept
// for 24 h, keyed by (caller, account, key); a repeat with the same method, path and body
// replays it, anything else with that key is a 409.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { createHash } from 'node:crypto';
import { AppError, validationError } from './errors.js';
import type { AppContext } from '../app-context.js';
import { isConnectionError, untilAvailable } from '../db/connection-errors.js';

const TTL_MS = 24 * 3600 * 1000;
/** An `in_progress` row older than this belongs to a request that died; it may be taken over. */
const ABANDONED_MS = 60_000;

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson((value as Record<string, unknown>)[k])).join(',') + '}';
  }
  return JSON.stringify(value ?? null);
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

interface Outcome {
  status: number;
  body: unknown;
}

export async function runIdempotent(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  run: () => Promise<Outcome>,
): Promise<Outcome> {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return run();
  const key = Array.isArray(raw) ? raw.join(',') : raw;
  if (key.length < 1 || key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
    throw validationError([{ field: 'Idempotency-Key', reason: 'must be 1-255 visible ASCII characters' }]);
  }
  const caller = req.principal!.apiKeyId ? `key:${req.principal!.apiKeyId}` : `user:${req.principal!.user.id}`;
  const scopeHash = sha256(JSON.stringify([caller, req.account?.id ?? null, key]));
  const path = req.url.split('?')[0];
  const requestHash = sha256(`${req.method} ${path}\n${canonicalJson(req.body ?? {})}`);

  const claim = async (): Promise<boolean> => {
    const res = await sql<{ scope_hash: string }>`
      INSERT INTO idempotency_keys (scope_hash, request_hash, state, expires_at)
      VALUES (${scopeHash}, ${requestHash}, 'in_progress', ${new Date(Date.now() + TTL_MS)})
      ON CONFLICT (scope_hash) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, state = 'in_progress', response_status = NULL,
            response_body = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
        WHERE idempotency_keys.expires_at < now()
           OR (idempotency_keys.state = 'in_progress'
               AND idempotency_keys.created_at < now() - make_interval(secs => ${ABANDONED_MS / 1000})
               AND idempotency_keys.request_hash = EXCLUDED.request_hash)
      RETURNING scope_hash`.execute(ctx.db);
    return res.rows.length === 1;
  };

  if (!(await claim())) {
    const row = await ctx.db
      .selectFrom('idempotency_keys')
      .select(['request_hash', 'state', 'response_status', 'response_body'])
      .where('scope_hash', '=', scopeHash)
      .executeTakeFirst();
    if (row) {
      if (row.request_hash !== requestHash) {
        throw new AppError('idempotency.key_reused', 'Idempotency-Key was already used with a different request');
      }
      if (row.state === 'in_progress') {
        throw new AppError('idempotency.in_progress', 'a request with this Idempotency-Key is still being processed', {}, {
          headers: { 'retry-after': '1' },
        });
      }
      reply.header('idempotent-replayed', 'true');
      return { status: row.response_status ?? 200, body: row.response_body };
    }
    // The row vanished between the two statements (its request failed): claim again.
    if (!(await claim())) throw new AppError('idempotency.in_progress', 'retry', {}, { headers: { 'retry-after': '1' } });
  }

  let outcome: Outcome;
  try {
    outcome = await run();
  } catch (err) {
    // The key is free again. When the database is away, it is freed as soon as it is back
    // (not only when the in-progress claim is abandoned), so the client's retry goes through.
    const release = () => ctx.db.deleteFrom('idempotency_keys').where('scope_hash', '=', scopeHash).execute();
    await release().catch((e: unknown) => {
      if (isConnectionError(e)) void untilAvailable(release, { maxMs: ABANDONED_MS }).catch(() => undefined);
    });
    throw err;
  }
  if (outcome.status >= 200 && outcome.status < 300) {
    await ctx.db
      .updateTable('idempotency_keys')
      .set({ state: 'done', response_status: outcome.status, response_body: JSON.stringify(outcome.body ?? null) })
      .where('scope_hash', '=', scopeHash)
      .execute();
  } else {
    await ctx.db.deleteFrom('idempotency_keys').where('scope_hash', '=', scopeHash).execute();
  }
  return outcome;
}
