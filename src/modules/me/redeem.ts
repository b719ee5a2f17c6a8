// Redeeming a code for credits (api.md §4.9).
import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import type { CurrentAccount, Principal } from '../../http/request.js';
import { AppError, notFound, rateLimited } from '../../http/errors.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { changeCredits } from '../credits/store.js';
import { normaliseCode } from '../referrals/store.js';
import { countRedemptionUse, insertRedemption, lockActiveCodeByText } from '../redemption-codes/store.js';

export async function redeemCode(ctx: AppContext, req: FastifyRequest, principal: Principal, account: CurrentAccount, raw: string) {
  const w = await ctx.counters.incr(`redeem:user:${principal.user.id}`, 60);
  if (w.count > 10) throw rateLimited(w.resetIn);
  const code = normaliseCode(raw);
  return auditedWrite(ctx.db, auditOrigin(req), async (trx) => {
    const row = await lockActiveCodeByText(trx, code);
    if (!row) throw notFound('redemption_codes.not_found', 'redemption code');
    if (row.expires_at && row.expires_at.getTime() <= ctx.clock.nowMs()) throw new AppError('redemption_codes.expired', 'code has expired');
    // "Already redeemed" is told before "exhausted": it says more to the user who asks twice.
    // An error rolls the redemption row back with everything else.
    if (!(await insertRedemption(trx, { codeId: row.id, userId: principal.user.id, orgId: account.id }))) {
      throw new AppError('redemption_codes.already_redeemed', 'you have already redeemed this code');
    }
    if (row.use_count >= row.max_uses) throw new AppError('redemption_codes.exhausted', 'code has no uses left');
    await countRedemptionUse(trx, row.id);
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
