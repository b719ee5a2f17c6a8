// Redeeming a code for credits (api.md §4.9).
import type { FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import type { AppContext } from '../../app-context.js';
import type { CurrentAccount, Principal } from '../../http/request.js';
import { AppError, notFound, rateLimited } from '../../http/errors.js';
import { newId } from '../../lib/ids.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { changeCredits } from '../credits/store.js';
import { normaliseCode } from '../referrals/store.js';

export async function redeemCode(ctx: AppContext, req: FastifyRequest, principal: Principal, account: CurrentAccount, raw: string) {
  const w = await ctx.counters.incr(`redeem:user:${principal.user.id}`, 60);
  if (w.count > 10) throw rateLimited(w.resetIn);
  const code = normaliseCode(raw);
  return auditedWrite(ctx.db, auditOrigin(req), async (trx) => {
    const row = await trx
      .selectFrom('redemption_codes')
      .selectAll()
      .where(sql`upper(replace(replace(code, '-', ''), ' ', ''))`, '=', code)
      .where('is_active', '=', true)
      .forUpdate()
      .executeTakeFirst();
    if (!row) throw notFound('redemption_codes.not_found', 'redemption code');
    if (row.expires_at && row.expires_at.getTime() <= Date.now()) throw new AppError('redemption_codes.expired', 'code has expired');
    if (row.use_count >= row.max_uses) throw new AppError('redemption_codes.exhausted', 'code has no uses left');
    const inserted = await trx
      .insertInto('redemptions')
      .values({ id: newId(), redemption_code_id: row.id, user_id: principal.user.id, org_id: account.id })
      .onConflict((oc) => oc.columns(['redemption_code_id', 'user_id']).doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!inserted) throw new AppError('redemption_codes.already_redeemed', 'you have already redeemed this code');
    await trx.updateTable('redemption_codes').set({ use_count: sql`use_count + 1` }).where('id', '=', row.id).execute();
    const amount = Number.parseInt(row.value, 10);
    const balance = await changeCredits(trx, {
      orgId: account.id,
      amount: Number.isFinite(amount) ? amount : 0,
      referenceType: 'redemption',
      referenceId: row.id,
    });
    return {
      result: { code: row.code, type: row.type, value: row.value, balance },
      audit: {
        orgId: account.id,
        actorUserId: principal.user.id,
        action: 'redemption_code.redeem',
        targetType: 'redemption_code',
        targetId: row.id,
        metadata: { value: row.value },
      },
    };
  });
}
