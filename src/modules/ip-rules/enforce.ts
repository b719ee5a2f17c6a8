// Enforcement of an account's IP rules (api.md §23), called by registerRoute for every `user` /
// `user+key` request acting in an account, after account selection and before the handler.
// The rules of an account are compiled once into an IpMatcher and cached (ctx.caches); every
// write of the rules calls ipRulesChanged, which drops the matcher here and, by NOTIFY, in
// every other process, so a change decides the next request. The TTL only bounds a lost
// notification. An account without rules costs one cache hit.
import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError } from '../../http/errors.js';
import { auditOrigin } from '../audit/store.js';
import { IpMatcher, NO_RULES, canonicalClientIp, type IpVerdict } from './cidr.js';
import { DENIAL_WINDOW_MS, listRules, pruneDenialMarks, recordDenial } from './store.js';

const CACHE = 'ip_rules';
const TTL_MS = 30_000;
const matcherCache = (ctx: AppContext) => ctx.caches.cache<IpMatcher>(CACHE, TTL_MS);

/** The compiled rules of an account. */
export function ipMatcherOf(ctx: AppContext, orgId: string): Promise<IpMatcher> {
  return matcherCache(ctx).get(orgId, async () => {
    const rows = await listRules(ctx.db, orgId);
    return rows.length ? new IpMatcher(rows) : NO_RULES;
  });
}

/** Call after a change of an account's rules committed. */
export function ipRulesChanged(ctx: AppContext, orgId: string): Promise<void> {
  return matcherCache(ctx).invalidate(orgId);
}

const MESSAGES: Record<IpVerdict, string> = {
  'policy.ip_blocked': 'your IP address is blocked in this account',
  'policy.ip_not_allowed': "your IP address is not on this account's allowlist",
};

/** Refuses the request (403) when the current account's rules refuse its client IP. */
export async function enforceIpRules(ctx: AppContext, req: FastifyRequest): Promise<void> {
  const account = req.account;
  if (!account) return;
  const verdict = (await ipMatcherOf(ctx, account.id)).check(req.clientIp);
  if (!verdict) return;
  await auditDenial(ctx, req, account.id, verdict);
  throw new AppError(verdict, MESSAGES[verdict], { ip: req.clientIp });
}

interface DenialMemo {
  /** (account, IP) → when this process wrote its last denial row. */
  written: Map<string, number>;
  lastPrune: number;
}
const memos = new WeakMap<AppContext, DenialMemo>();

/**
 * The `ip_rule.denied` row, at most once per IP per account per minute across processes
 * (recordDenial's conditional upsert decides). What this process wrote itself is remembered
 * so a flood of refused requests does not cost a statement each; the memo only ever skips
 * a write the database would refuse anyway.
 */
async function auditDenial(ctx: AppContext, req: FastifyRequest, orgId: string, verdict: IpVerdict): Promise<void> {
  let memo = memos.get(ctx);
  if (!memo) memos.set(ctx, (memo = { written: new Map(), lastPrune: 0 }));
  const now = ctx.clock.nowMs();
  const ip = canonicalClientIp(req.clientIp).slice(0, 100);
  const key = `${orgId}\n${ip}`;
  const last = memo.written.get(key);
  if (last !== undefined && now - last < DENIAL_WINDOW_MS) return;
  const principal = req.principal!;
  try {
    const wrote = await recordDenial(ctx.db, auditOrigin(req), {
      orgId,
      ip,
      nowMs: now,
      actorUserId: principal.user.id,
      metadata: {
        reason: verdict,
        method: req.method,
        path: req.routeOptions.url ?? null,
        // `key_id`: a field named like `api_key…` is redacted as a secret.
        ...(principal.apiKeyId ? { key_id: principal.apiKeyId } : {}),
      },
    });
    if (!wrote) return;
    if (memo.written.size >= 10_000) memo.written.clear();
    memo.written.set(key, now);
    if (now - memo.lastPrune >= DENIAL_WINDOW_MS) {
      memo.lastPrune = now;
      await pruneDenialMarks(ctx.db, now);
    }
  } catch (err) {
    // The refusal stands without its record.
    req.log.warn({ err: (err as Error).message }, 'ip rules: denial not audited');
  }
}
