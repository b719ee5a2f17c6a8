// How many credits a run costs (§27.7): its weighted USD cost × `credit.per_usd`, times the
// multiplier of the first tier of `credit.deduction_policy` its token count falls in.
import type { AppContext } from '../../app-context.js';

interface DeductionTier {
  up_to_tokens?: number;
  multiplier: number;
}

export interface CreditPolicy {
  policy: { tiers?: DeductionTier[] };
  perUsd: number;
}

/**
 * Read before the terminal transaction, never inside it: settings go through ctx.db, and on
 * the embedded engine (one connection) a query outside the open transaction waits for it to
 * end — a deadlock whenever the settings cache is cold.
 */
export async function creditPolicy(ctx: AppContext): Promise<CreditPolicy> {
  const policy = (await ctx.settings.get<{ tiers?: DeductionTier[] }>('credit.deduction_policy')) ?? {};
  const perUsd = await ctx.settings.int('credit.per_usd');
  return { policy, perUsd };
}

export function creditsFor({ policy, perUsd }: CreditPolicy, tokens: number, weightedCostUsd: number): number {
  const tier = (policy.tiers ?? []).find((t) => t.up_to_tokens === undefined || t.up_to_tokens >= tokens);
  const m = tier ? tier.multiplier : 1;
  return Math.ceil(weightedCostUsd * perUsd * m);
}

