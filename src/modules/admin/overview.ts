// The platform at a glance and any run in detail, for platform admins (api.md §21.1, §21.6).
// Dashboard figures come from daily rollups (runs: modules/runs/activity.ts, usage:
// modules/usage/platform.ts) plus the current days read over indexes, not from a scan of every
// run or usage record. "The last 30 days" are the current UTC day and the 29 before it.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { DateTime, Nullable, T, iso } from '../../http/schemas.js';
import { RunDetailSchema } from '../runs/schemas.js';
import { rollUpRunActivity, runActivity, runCreatorsSinceSql } from '../runs/activity.js';
import { findRunForAdmin, shapeRunDetail } from '../runs/store.js';
import { platformUsageTotals } from '../usage/platform.js';
import { runUsageRecords } from '../usage/store.js';
import { userFigures } from '../users/store.js';

const DAY_MS = 86_400_000;

const DashboardSchema = T.Object({
  total_users: T.Integer(),
  active_users_30d: T.Integer(),
  total_runs: T.Integer(),
  runs_today: T.Integer(),
  total_input_tokens: T.Integer(),
  total_output_tokens: T.Integer(),
  total_cost_usd: T.Number(),
  active_orgs: T.Integer(),
});

const ProviderKind = Nullable(T.Union([T.Literal('openai'), T.Literal('anthropic'), T.Literal('stub')]));

const AdminRunDetailSchema = T.Object({
  ...RunDetailSchema.properties,
  provider_kind: ProviderKind,
  credential_name: Nullable(T.String()),
  persona_model: Nullable(T.String()),
  usage_records: T.Array(
    T.Object({
      provider_name: Nullable(T.String()),
      provider_kind: Nullable(T.String()),
      model: T.String(),
      input_tokens: T.Integer(),
      output_tokens: T.Integer(),
      cache_read_tokens: T.Integer(),
      cache_write_tokens: T.Integer(),
      cost_usd: T.Number(),
      created_at: DateTime(),
    }),
  ),
});

export function adminOverviewRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['admin'];

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/dashboard',
    caller: 'padmin',
    summary: 'Platform figures: users, runs, tokens, cost, active accounts',
    tags,
    response: DashboardSchema,
    handler: async () => {
      const now = new Date(ctx.clock.nowMs());
      const dayStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
      const since = new Date(dayStart - 29 * DAY_MS);
      const [today, sinceDay] = [new Date(dayStart).toISOString().slice(0, 10), since.toISOString().slice(0, 10)];
      await rollUpRunActivity(ctx.db);
      const [users, runs, usage] = await Promise.all([
        userFigures(ctx.db, since, runCreatorsSinceSql(sinceDay)),
        runActivity(ctx.db, today, sinceDay),
        platformUsageTotals(ctx.db, now),
      ]);
      return {
        total_users: users.total,
        active_users_30d: users.active,
        total_runs: runs.totalRuns,
        runs_today: runs.runsToday,
        total_input_tokens: usage.input_tokens,
        total_output_tokens: usage.output_tokens,
        total_cost_usd: usage.cost_usd,
        active_orgs: runs.activeOrgs,
      };
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/runs/:run_id',
    caller: 'padmin',
    ids: { run_id: 'runs.not_found' },
    summary: 'Any run in detail, with its model calls (also runs of deleted threads)',
    tags,
    params: T.Object({ run_id: T.String() }),
    response: AdminRunDetailSchema,
    handler: async (req) => {
      const run = await findRunForAdmin(ctx.db, req.params.run_id);
      if (!run) throw notFound('runs.not_found', 'run');
      const records = await runUsageRecords(ctx.db, run.id);
      return {
        ...shapeRunDetail(run),
        provider_kind: (run.provider_kind ?? null) as 'openai' | 'anthropic' | 'stub' | null,
        credential_name: run.credential_name,
        persona_model: run.persona_model,
        usage_records: records.map((u) => ({
          provider_name: u.provider_name,
          provider_kind: u.provider_kind,
          model: u.model,
          input_tokens: Number(u.input_tokens),
          output_tokens: Number(u.output_tokens),
          cache_read_tokens: Number(u.cache_read_tokens),
          cache_write_tokens: Number(u.cache_write_tokens),
          cost_usd: Number(u.cost_usd),
          created_at: iso(u.created_at),
        })),
      };
    },
  });
}
