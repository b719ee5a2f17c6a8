// Platform usage for platform admins (api.md §16.5–16.7), shaped as the account views are.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { registerRoute } from '../../http/route.js';
import { T } from '../../http/schemas.js';
import { DailyQuery, UsageDaySchema, UsageSummarySchema, UsageModelSchema, UsageQuery, dayRange, monthOf } from '../me/usage.js';
import { platformUsageByModel, platformUsageDaily, platformUsageSummary } from './platform.js';

export function usageAdminRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['usage'];

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/usage/daily',
    caller: 'padmin',
    summary: 'Platform usage per UTC day, ascending, days with records only',
    tags,
    query: DailyQuery,
    response: T.Array(UsageDaySchema),
    handler: async (req) => {
      const { start, end } = dayRange(req.query);
      return platformUsageDaily(ctx.db, start, end);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/usage/summary',
    caller: 'padmin',
    summary: 'Platform usage of a UTC month, with the number of accounts that used it',
    tags,
    query: UsageQuery,
    response: T.Composite([T.Omit(UsageSummarySchema, ['org_id']), T.Object({ active_orgs: T.Integer() })]),
    handler: async (req) => {
      const { year, month } = monthOf(req.query);
      return platformUsageSummary(ctx.db, year, month);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/usage/by-model',
    caller: 'padmin',
    summary: 'Platform usage of a UTC month per model, by cost',
    tags,
    query: UsageQuery,
    response: T.Array(UsageModelSchema),
    handler: async (req) => {
      const { year, month } = monthOf(req.query);
      return platformUsageByModel(ctx.db, year, month);
    },
  });
}
