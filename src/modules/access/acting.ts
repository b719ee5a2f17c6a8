// A platform admin may act in an account they do not belong to (api.md §1.2); what they do
// there is marked in its audit rows.
import type { FastifyRequest } from 'fastify';

/** Audit metadata marking a platform admin acting in an account they do not belong to (§1.2). */
export function actingMeta(req: Pick<FastifyRequest, 'account'>): Record<string, unknown> {
  return req.account && !req.account.isMember ? { acting_as_platform_admin: true } : {};
}
