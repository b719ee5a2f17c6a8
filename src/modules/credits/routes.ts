// Credits administration (api.md §16.1–16.4): read any account's ledger, adjust one account,
// adjust every account, reset every balance. Every change goes through the ledger
// (credits/store.ts), so a balance is always the sum of its transaction rows.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { fieldError, notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { Limit, OptNull, T, Uuid, parseCursor } from '../../http/schemas.js';
import { findAccount } from '../accounts/store.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { adjustAllBalances, changeCredits, resetAllBalances } from './store.js';
import { CreditsViewSchema, creditsView } from './view.js';

const MAX_AMOUNT = 1_000_000_000_000;
const Amount = T.Integer({ minimum: -MAX_AMOUNT, maximum: MAX_AMOUNT, description: '≠ 0; positive adds, negative deducts' });
const Note = OptNull(T.String({ maxLength: 2000 }));

function nonZero(amount: number): number {
  if (amount === 0) throw fieldError('amount', 'must not be 0');
  return amount;
}

export function creditAdminRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['credits'];

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/credits',
    caller: 'padmin',
    summary: "An account's balance and transactions, newest first",
    tags,
    query: T.Object({ org_id: Uuid(), limit: T.Optional(Limit()), before: T.Optional(T.String({ maxLength: 100 })) }),
    response: CreditsViewSchema,
    handler: async (req) => {
      const orgId = req.query.org_id.toLowerCase();
      const cursor = parseCursor(req.query.before);
      if (!(await findAccount(ctx.db, orgId))) throw notFound('accounts.not_found', 'account');
      return creditsView(ctx.db, orgId, req.query.limit ?? 20, cursor);
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/admin/credits/adjust',
    caller: 'padmin',
    summary: "Add to or deduct from one account's credits (the balance may go below zero)",
    tags,
    body: T.Object({ org_id: Uuid(), amount: Amount, note: Note }),
    response: T.Object({ org_id: Uuid(), balance: T.Integer() }),
    handler: async (req) => {
      const amount = nonZero(req.body.amount);
      const orgId = req.body.org_id.toLowerCase();
      const note = req.body.note ?? null;
      return auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        if (!(await findAccount(trx, orgId))) throw notFound('accounts.not_found', 'account');
        const balance = Number(await changeCredits(trx, { orgId, amount, referenceType: 'admin_adjust', note }));
        return {
          result: { org_id: orgId, balance },
          audit: {
            orgId,
            actorUserId: req.principal!.user.id,
            action: 'credits.adjust',
            targetType: 'account',
            targetId: orgId,
            metadata: { amount, note },
            before: { balance: balance - amount },
            after: { balance },
          },
        };
      });
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/admin/credits/bulk-adjust',
    caller: 'padmin',
    summary: 'Add to or deduct from the credits of every account',
    tags,
    body: T.Object({ amount: Amount, note: Note }),
    response: T.Object({ affected: T.Integer() }),
    handler: async (req) => {
      const amount = nonZero(req.body.amount);
      const note = req.body.note ?? null;
      return auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const affected = await adjustAllBalances(trx, amount, 'admin_bulk_adjust', note);
        return { result: { affected }, audit: { orgId: null, actorUserId: req.principal!.user.id, action: 'credits.bulk_adjust', metadata: { amount, note, affected } } };
      });
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/admin/credits/reset-all',
    caller: 'padmin',
    summary: 'Set every balance to 0 (through a transaction of −balance each)',
    tags,
    body: T.Object({ note: Note }),
    response: T.Object({ affected: T.Integer() }),
    handler: async (req) => {
      const note = req.body.note ?? null;
      return auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const affected = await resetAllBalances(trx, 'admin_reset', note);
        return { result: { affected }, audit: { orgId: null, actorUserId: req.principal!.user.id, action: 'credits.reset_all', metadata: { note, affected } } };
      });
    },
  });
}
