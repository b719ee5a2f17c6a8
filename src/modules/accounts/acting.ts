// Small request helpers shared by the accounts route files.
import type { FastifyRequest } from 'fastify';
import { auditOrigin, type AuditOrigin } from '../audit/store.js';

type AnyReq = Pick<FastifyRequest, 'id' | 'clientIp' | 'headers' | 'account' | 'principal'>;

export function origin(req: AnyReq): AuditOrigin {
  return auditOrigin(req as FastifyRequest);
}

export function callerId(req: AnyReq): string {
  return req.principal!.user.id;
}
