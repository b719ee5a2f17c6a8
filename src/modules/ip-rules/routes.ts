// IP rules (api.md §23): create, list and delete the current account's allow- and blocklist
// CIDRs. Enforcement is in enforce.ts (called by registerRoute).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError, conflict, fieldError, notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Nullable, OptNull, T, Uuid } from '../../http/schemas.js';
import { actingMeta } from '../access/acting.js';
import { auditedWrite } from '../audit/audited-write.js';
import { auditOrigin } from '../audit/store.js';
import { IpMatcher, parseCidr } from './cidr.js';
import { ipRulesChanged } from './enforce.js';
import { MAX_RULES_PER_ACCOUNT, deleteRule, insertRule, listRules, lockAccountRules, shapeRule } from './store.js';

const RuleType = T.Union([T.Literal('allowlist'), T.Literal('blocklist')]);
const IpRuleSchema = T.Object({
  id: Uuid(),
  org_id: Uuid(),
  type: RuleType,
  cidr: T.String(),
  note: Nullable(T.String()),
  created_at: DateTime(),
});

const PERM = 'account.ip_rules.manage';
const exists = () => conflict('ip_rules.exists', 'a rule of this type and CIDR exists');

export function ipRuleRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['ip-rules'];

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/ip-rules',
    caller: 'user',
    perm: PERM,
    status: 201,
    summary: 'Add an allow- or blocklist CIDR to the current account',
    tags,
    body: T.Object({
      type: RuleType,
      cidr: T.String({ minLength: 1, maxLength: 100 }),
      note: OptNull(T.String({ maxLength: 200 })),
      force: OptNull(T.Boolean()),
    }),
    trim: ['cidr'],
    response: IpRuleSchema,
    handler: async (req) => {
      const { type, note } = req.body;
      const cidr = parseCidr(req.body.cidr);
      if (!cidr) throw fieldError('cidr', 'must be an IPv4 or IPv6 address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)');
      const orgId = req.account!.id;
      const userId = req.principal!.user.id;
      const row = await auditedWrite(
        ctx.db,
        auditOrigin(req as FastifyRequest),
        async (trx) => {
          await lockAccountRules(trx, orgId);
          const rules = await listRules(trx, orgId);
          if (rules.some((r) => r.type === type && r.cidr === cidr.text)) throw exists();
          if (rules.length >= MAX_RULES_PER_ACCOUNT) {
            throw conflict('ip_rules.limit_reached', `at most ${MAX_RULES_PER_ACCOUNT} IP rules per account`, { limit: MAX_RULES_PER_ACCOUNT });
          }
          // The rules as they would be must still let the caller in, unless they insist.
          if (req.body.force !== true && new IpMatcher([...rules, { type, cidr: cidr.text }]).check((req as FastifyRequest).clientIp)) {
            throw new AppError('ip_rules.would_lock_out', 'this rule would refuse your own IP address; send force: true to add it anyway', { ip: (req as FastifyRequest).clientIp });
          }
          const created = await insertRule(trx, { orgId, type, cidr: cidr.text, note: note ?? null });
          return {
            result: created,
            audit: {
              orgId,
              actorUserId: userId,
              action: 'ip_rule.create',
              targetType: 'ip_rule',
              targetId: created.id,
              metadata: { type, cidr: cidr.text, forced: req.body.force === true, ...actingMeta(req as FastifyRequest) },
              after: shapeRule(created),
            },
          };
        },
        { unique: exists },
      );
      await ipRulesChanged(ctx, orgId);
      return shapeRule(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/ip-rules',
    caller: 'user',
    perm: PERM,
    summary: "The current account's IP rules, oldest first",
    tags,
    response: T.Array(IpRuleSchema),
    handler: async (req) => (await listRules(ctx.db, req.account!.id)).map(shapeRule),
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/ip-rules/:rule_id',
    caller: 'user',
    perm: PERM,
    ids: { rule_id: 'ip_rules.not_found' },
    status: 204,
    summary: 'Remove an IP rule',
    tags,
    params: T.Object({ rule_id: T.String() }),
    handler: async (req) => {
      const orgId = req.account!.id;
      await auditedWrite(ctx.db, auditOrigin(req as FastifyRequest), async (trx) => {
        const gone = await deleteRule(trx, orgId, req.params.rule_id);
        if (!gone) throw notFound('ip_rules.not_found', 'IP rule');
        return {
          result: gone,
          audit: {
            orgId,
            actorUserId: req.principal!.user.id,
            action: 'ip_rule.delete',
            targetType: 'ip_rule',
            targetId: gone.id,
            metadata: { type: gone.type, cidr: gone.cidr, ...actingMeta(req as FastifyRequest) },
            before: shapeRule(gone),
          },
        };
      });
      await ipRulesChanged(ctx, orgId);
      return null;
    },
  });
}
