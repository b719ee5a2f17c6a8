// Small request helpers shared by the accounts route files.
import type { FastifyRequest } from 'fastify';
import { auditOrigin, type AuditOrigin } from '../audit/store.js';

type AnyReq = Pick<FastifyRequest, 'id' | 'clientIp' | 'headers' | 'account' | 'principal'>;

export function origin(req: AnyReq): AuditOrigin {
  return auditOrigin(req as FastifyRequest);
}

/** Audit metadata marking a platform admin acting in an account they do not belong to (§1.2). */
export function actingMeta(req: AnyReq): Record<string, unknown> {
  return req.account && !req.account.isMember ? { acting_as_platform_admin: true } : {};
}

export function callerId(req: AnyReq): string {
  return req.principal!.user.id;
}
