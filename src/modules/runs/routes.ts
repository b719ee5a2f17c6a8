// Runs (api.md §8): create, list, read, cancel, and the event stream.
import { entitlementInt } from '../entitlements/resolve.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import type { AppContext } from '../../app-context.js';
import { auditOrigin } from '../audit/store.js';
import { AppError, fieldError, notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { Limit, OkResponse, QueryBool, T, badCursor, parseCursor, parseQueryBool } from '../../http/schemas.js';
import { newId, isUuid } from '../../lib/ids.js';
import { creditBalance } from '../credits/store.js';
import { monthTokens } from '../usage/store.js';
import { deleteNewestAssistantMessage, hasUserMessage } from '../messages/store.js';
import { resolveAccountPersona } from '../personas/store.js';
import { viewerOf } from '../access/visibility.js';
import { findVisibleThread, lockThreadForRun } from '../threads/store.js';
import { invalidState, requestRunCancel } from './cancel.js';
import { resolveRoutes } from './routing.js';
import { loadRouteCatalogue } from './route-catalogue.js';
import { MAX_HISTORY, newRunPreload } from './load.js';
import { CreateRunBody, RunCreatedSchema, RunDetailSchema, RunEventSchema, RunListItemSchema, RunStatusSchema } from './schemas.js';
import { streamRunEvents } from './sse.js';
import { TurnBatch } from '../../lib/shared-reads.js';
import type { RunEvent } from '../../engine/events.js';
import { findRun, findRunWithEvents, latestRunOfThread, provideRunInput, startRun, type RunAnswer, type RunStartCheck, listRuns, runCursor, shapeRunDetail, shapeRunListItem } from './store.js';

const READ = 'data.runs.read';
const MANAGE = 'data.runs.manage';
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
/** Seqs are int4. */
const MAX_SEQ = 2_147_483_647;

type AnyReq = Pick<FastifyRequest, 'account' | 'principal'>;
const readAll = (req: AnyReq) => req.account!.points.has('data.runs.read_all');

export interface RunOptions {
  routeId: string | null;
  personaId: string | null;
  model: string | null;
}

/**
 * Creates a run on a visible thread: run row, `run.started` and the `run.execute` job in one
 * statement (api.md §8.1, checks in its order). A retry, or an account under quotas or a
 * concurrent-run limit, first takes the thread's lock in a transaction for the checks that
 * need more than that statement.
 */
export async function createRun(ctx: AppContext, req: FastifyRequest, threadId: string, opts: RunOptions, retry = false) {
  const v = viewerOf(req);
  let personaId: string | null = null;
  if (opts.personaId) {
    const resolved = await resolveAccountPersona(ctx.db, v.accountId, opts.personaId);
    if (!resolved) throw notFound('personas.not_found', 'persona');
    personaId = resolved.persona_id;
  }
  const routes = resolveRoutes(ctx.config.env, { routeId: opts.routeId, requestedModel: opts.model, personaModel: null }, await loadRouteCatalogue(ctx, v.accountId));
  if (!routes.ok) {
    if (!(await findVisibleThread(ctx.db, v, threadId))) throw notFound('threads.not_found', 'thread');
    if (routes.errorClass === 'policy.byok_disabled') throw new AppError('policy.byok_disabled', 'the route belongs to an account provider while feature.byok_enabled is off');
    throw new AppError('policy.route_not_found', 'no model route matches the request');
  }
  const runId = newId();
  const traceId = req.id;
  const run = { id: runId, orgId: v.accountId, threadId, userId: v.userId, personaId, routeId: opts.routeId, requestedModel: opts.model, traceId };
  const started = { thread_id: threadId, persona_id: personaId, route_id: opts.routeId, model: opts.model, created_by_user_id: v.userId, trace_id: traceId };
  const job = { type: 'run.execute', payload: { v: 1, run_id: runId, trace_id: traceId }, maxAttempts: 3 };
  const limits = await runLimits(ctx, v.accountId);
  if (!retry && !limits.any) {
    // A worker of this process with a free slot takes the run at once, with what was read here.
    const r = await ctx.engine.writeJob(
      job,
      (lease) => startRun(ctx.db, v, run, started, job, ctx.engine.viaNotify, lease && { lease, historyLimit: MAX_HISTORY }),
      (w) =>
        w.started && w.local
          ? {
              jobId: w.local.jobId,
              at: w.local.createdAt,
              preload: newRunPreload({ ...run, createdAt: w.local.createdAt, role: w.local.role, balance: w.balance, history: w.local.history }),
            }
          : null,
    );
    throwStartFailure(r);
    return { run_id: runId, trace_id: traceId };
  }
  let reserved = false;
  try {
    await ctx.engine.transaction(ctx.db, async (tx) => {
      const thread = await lockThreadForRun(tx.db, v, threadId);
    if (!thread) throw notFound('threads.not_found', 'thread');
      if (thread.active_run_id) throw threadBusy(thread.active_run_id);
      // Retry (§8.8): the newest message goes if it is the assistant's; rolled back on any error.
      if (retry) await deleteNewestAssistantMessage(tx.db, threadId);
      if (!(await hasUserMessage(tx.db, threadId))) throw noUserMessage();
      if ((await creditBalance(tx.db, v.accountId)) <= 0) throw noCredits();
      reserved = await checkRunLimits(ctx, tx.db, v.accountId, runId, limits);
      const r = await startRun(tx.db, v, run, started, job, ctx.engine.viaNotify);
      throwStartFailure(r);
      tx.wrote(r.events, r.jobs);
    });
  } catch (err) {
    // The slot was taken for a run that never committed.
    if (reserved) ctx.runSlots?.release(v.accountId, runId);
    throw err;
  }
  return { run_id: runId, trace_id: traceId };
}

const threadBusy = (activeRunId: string) => new AppError('runs.thread_busy', 'the thread already has an active run', { active_run_id: activeRunId });
const noUserMessage = () => new AppError('runs.no_user_message', 'the thread has no user message');
const noCredits = () => new AppError('budget.insufficient_credits', 'the account has no credits left');

/** The first check a start statement failed, as its error (in §8.1 order). */
function throwStartFailure(r: RunStartCheck): void {
  if (r.started) return;
  if (!r.found) throw notFound('threads.not_found', 'thread');
  if (r.activeRunId) throw threadBusy(r.activeRunId);
  if (!r.hasUserMessage) throw noUserMessage();
  if (r.balance <= 0) throw noCredits();
  throw new Error('run start refused without a reason');
}

interface RunLimits {
  runsQuota: number;
  tokensQuota: number;
  concurrent: number;
  any: boolean;
}

/** The account's run limits, from the one entitlement resolution (§18). */
async function runLimits(ctx: AppContext, orgId: string): Promise<RunLimits> {
  const runsQuota = await entitlementInt(ctx, orgId, 'quota.runs_per_month');
  const tokensQuota = await entitlementInt(ctx, orgId, 'quota.tokens_per_month');
  const concurrent = await entitlementInt(ctx, orgId, 'limit.concurrent_runs');
  return { runsQuota, tokensQuota, concurrent, any: runsQuota > 0 || tokensQuota > 0 || concurrent > 0 };
}

/**
 * Monthly quotas (402) and the concurrent-run limit (429), in that order (§8.1). The slot is
 * reserved for `runId` in Redis when configured (slots.ts; true is returned, and the caller
 * releases it if the run does not commit); otherwise, or while Redis is unusable, the
 * account's active runs are counted under an advisory lock so two creates cannot both take
 * the last slot.
 */
async function checkRunLimits(ctx: AppContext, db: AppContext['db'], orgId: string, runId: string, { runsQuota, tokensQuota, concurrent }: RunLimits): Promise<boolean> {
  if (runsQuota > 0 || tokensQuota > 0) {
    const month = sql`date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`;
    if (runsQuota > 0) {
      const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM runs WHERE org_id = ${orgId} AND created_at >= ${month}`.execute(db);
      if (r.rows[0].n >= runsQuota) throw new AppError('budget.runs_quota_exceeded', 'the monthly run quota is used up', { limit: runsQuota });
    }
    if (tokensQuota > 0) {
      if ((await monthTokens(db, orgId)) >= tokensQuota) throw new AppError('budget.tokens_quota_exceeded', 'the monthly token quota is used up', { limit: tokensQuota });
    }
  }
  if (concurrent <= 0) return false;
  const slot = ctx.runSlots ? await ctx.runSlots.reserve(db, orgId, runId, concurrent) : null;
  if (slot?.taken) return true;
  let active = slot?.active;
  if (active === undefined) {
    await sql`SELECT pg_advisory_xact_lock(hashtext(${'runs:' + orgId}))`.execute(db);
    const r = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM runs WHERE org_id = ${orgId} AND status IN ('running', 'waiting_for_input')`.execute(db);
    if (r.rows[0].n < concurrent) return false;
    active = r.rows[0].n;
  }
  throw new AppError('limit.concurrent_runs', 'too many active runs in this account', { limit: concurrent, active }, { headers: { 'retry-after': '1' } });
}

export function runRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['runs'];

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/threads/:thread_id/runs',
    caller: 'user+key',
    perm: MANAGE,
    ids: { thread_id: 'threads.not_found' },
    idempotent: true,
    status: 201,
    summary: 'Start a run of the agent on a thread',
    tags,
    params: T.Object({ thread_id: T.String() }),
    body: CreateRunBody,
    trim: ['persona_id', 'model'],
    response: RunCreatedSchema,
    handler: async (req) =>
      createRun(ctx, req as FastifyRequest, req.params.thread_id, {
        routeId: req.body.route_id?.toLowerCase() ?? null,
        personaId: req.body.persona_id ?? null,
        model: req.body.model ?? null,
      }),
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/threads/:thread_id/runs',
    caller: 'user+key',
    perm: READ,
    ids: { thread_id: 'threads.not_found' },
    summary: 'Runs of a thread, newest first',
    tags,
    params: T.Object({ thread_id: T.String() }),
    query: T.Object({ limit: T.Optional(Limit()), before: T.Optional(T.String({ maxLength: 100 })) }),
    response: T.Array(RunListItemSchema),
    handler: async (req) => {
      const v = viewerOf(req);
      const before = parseCursor(req.query.before);
      if (!(await findVisibleThread(ctx.db, v, req.params.thread_id))) throw notFound('threads.not_found', 'thread');
      const cursor = before ? await runCursor(ctx.db, v.accountId, before) : null;
      if (before && (!cursor || cursor.thread_id !== req.params.thread_id)) throw badCursor();
      const rows = await listRuns(ctx.db, v, false, { threadId: req.params.thread_id, before: cursor, limit: req.query.limit ?? 20 });
      return rows.map(shapeRunListItem);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/runs',
    caller: 'user+key',
    perm: READ,
    summary: 'Runs of the current account, newest first',
    tags,
    query: T.Object({
      limit: T.Optional(Limit()),
      before: T.Optional(T.String({ maxLength: 100 })),
      status: T.Optional(RunStatusSchema),
      thread_id: T.Optional(T.String({ maxLength: 100 })),
    }),
    response: T.Array(RunListItemSchema),
    handler: async (req) => {
      const v = viewerOf(req);
      const all = readAll(req);
      const before = parseCursor(req.query.before);
      let threadId: string | undefined;
      if (req.query.thread_id !== undefined) {
        if (!isUuid(req.query.thread_id)) throw fieldError('thread_id', 'must be a UUID');
        threadId = req.query.thread_id.toLowerCase();
        const visible = await findVisibleThread(ctx.db, v, threadId);
        if (!visible && !all) throw notFound('threads.not_found', 'thread');
      }
      const cursor = before ? await runCursor(ctx.db, v.accountId, before) : null;
      if (before && !cursor) throw badCursor();
      const rows = await listRuns(ctx.db, v, all, { threadId, status: req.query.status, before: cursor, limit: req.query.limit ?? 20 });
      if (threadId && rows.length === 0 && !(await findVisibleThread(ctx.db, v, threadId))) {
        // read_all holders: a thread id of no thread of the account is still a 404.
        const exists = await ctx.db.selectFrom('threads').select('id').where('id', '=', threadId).where('org_id', '=', v.accountId).where('deleted_at', 'is', null).executeTakeFirst();
        if (!exists) throw notFound('threads.not_found', 'thread');
      }
      return rows.map(shapeRunListItem);
    },
  });

  const eventsQuery = T.Object({
    after_seq: T.Optional(T.Integer({ minimum: 0, maximum: MAX_SEQ })),
    follow: T.Optional(QueryBool()),
    limit: T.Optional(T.Integer({ minimum: 1, maximum: 1000 })),
    access_token: T.Optional(T.String()),
  });

  function wantsStream(req: FastifyRequest): boolean {
    const accept = String(req.headers.accept ?? '');
    return accept.includes('text/event-stream') && !accept.includes('application/json');
  }

  function wantsJson(req: FastifyRequest): boolean {
    const accept = String(req.headers.accept ?? '');
    return accept.includes('application/json') && !accept.includes('text/event-stream');
  }

  // Streams of the same run opened by the same viewer in one turn (a burst of reconnects)
  // share the read of the run and its first page: see TurnBatch for why that stays gap-free.
  const streamOpens = new TurnBatch<{ terminal: boolean; events: RunEvent[] } | null>();

  /** The SSE stream of a run the caller can see (one statement reads the run and its first page). */
  function stream(req: FastifyRequest, reply: FastifyReply, runId: string, query: { after_seq?: number; follow?: string }) {
    const v = viewerOf(req);
    return streamRunEvents(ctx, req, reply, runId, startSeq(req, query.after_seq), parseQueryBool(query.follow, true), (afterSeq, limit) =>
      streamOpens.run(`${v.accountId}|${v.userId}|${v.manager}|${runId}|${afterSeq}|${limit}`, async () => {
        const found = await findRunWithEvents(ctx.db, v, runId, afterSeq, limit);
        return found && { terminal: TERMINAL.has(found.run.status), events: found.events };
      }),
    );
  }

  function startSeq(req: FastifyRequest, afterSeq: number | undefined): number {
    const header = req.headers['last-event-id'];
    // A header id past any seq (seqs are int4) just means "nothing newer".
    const fromHeader = typeof header === 'string' && /^\d+$/.test(header.trim()) ? Math.min(Number(header.trim()), MAX_SEQ) : 0;
    return Math.max(afterSeq ?? 0, fromHeader);
  }

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/runs/:run_id',
    caller: 'user+key',
    perm: READ,
    queryToken: true,
    ids: { run_id: 'runs.not_found' },
    summary: 'A run (or its event stream with Accept: text/event-stream)',
    tags,
    params: T.Object({ run_id: T.String() }),
    query: eventsQuery,
    response: RunDetailSchema,
    handler: async (req, reply) => {
      const v = viewerOf(req);
      if (wantsStream(req as FastifyRequest)) {
        await stream(req as FastifyRequest, reply, req.params.run_id, req.query);
        return reply;
      }
      const run = await findRun(ctx.db, v, readAll(req), req.params.run_id);
      if (!run) throw notFound('runs.not_found', 'run');
      return shapeRunDetail(run);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/runs/:run_id/events',
    caller: 'user+key',
    perm: READ,
    queryToken: true,
    ids: { run_id: 'runs.not_found' },
    summary: 'The run’s events: SSE replay and live stream, or JSON with Accept: application/json',
    tags,
    params: T.Object({ run_id: T.String() }),
    query: eventsQuery,
    response: T.Object({ data: T.Array(RunEventSchema), last_seq: T.Integer(), status: RunStatusSchema }),
    handler: async (req, reply) => {
      if (wantsJson(req as FastifyRequest)) {
        const found = await findRunWithEvents(ctx.db, viewerOf(req), req.params.run_id, startSeq(req as FastifyRequest, req.query.after_seq), req.query.limit ?? 500);
        if (!found) throw notFound('runs.not_found', 'run');
        return { data: found.events, last_seq: found.run.last_seq, status: found.run.status };
      }
      await stream(req as FastifyRequest, reply, req.params.run_id, req.query);
      return reply;
    },
  });

  const retryHandler = async (req: FastifyRequest, threadId: string, body: { route_id?: string | null; persona_id?: string | null; model?: string | null }) => {
    if (!(await findVisibleThread(ctx.db, viewerOf(req), threadId))) throw notFound('threads.not_found', 'thread');
    const last = await latestRunOfThread(ctx.db, threadId);
    return createRun(
      ctx,
      req,
      threadId,
      {
        routeId: body.route_id?.toLowerCase() ?? last?.route_id ?? null,
        personaId: body.persona_id ?? last?.persona_id ?? null,
        model: body.model ?? last?.requested_model ?? null,
      },
      true,
    );
  };

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/threads/:thread_id(^[^:/]+)::retry',
    caller: 'user+key',
    perm: MANAGE,
    ids: { thread_id: 'threads.not_found' },
    idempotent: true,
    status: 201,
    summary: 'Retry the last turn: drop the newest assistant message and start a new run',
    tags,
    params: T.Object({ thread_id: T.String() }),
    body: CreateRunBody,
    trim: ['persona_id', 'model'],
    response: RunCreatedSchema,
    handler: async (req) => retryHandler(req as FastifyRequest, req.params.thread_id, req.body),
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/runs/:run_id/retry',
    caller: 'user+key',
    perm: MANAGE,
    ids: { run_id: 'runs.not_found' },
    status: 201,
    summary: 'Retry the thread of this run (alias of the thread retry)',
    tags,
    params: T.Object({ run_id: T.String() }),
    body: CreateRunBody,
    trim: ['persona_id', 'model'],
    response: RunCreatedSchema,
    handler: async (req) => {
      const run = await findRun(ctx.db, viewerOf(req), false, req.params.run_id);
      if (!run) throw notFound('runs.not_found', 'run');
      return retryHandler(req as FastifyRequest, run.thread_id, req.body);
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/runs/:run_id/input',
    caller: 'user+key',
    perm: MANAGE,
    ids: { run_id: 'runs.not_found' },
    summary: 'Answer a run that waits for input: text, or the decision on the tool call it awaits approval for',
    tags,
    params: T.Object({ run_id: T.String() }),
    body: T.Object({
      content: T.Optional(T.String({ minLength: 1 })),
      approval: T.Optional(
        T.Object({
          tool_call_id: T.String({ minLength: 1, maxLength: 200 }),
          decision: T.Union([T.Literal('approve'), T.Literal('deny')]),
          arguments_sha256: T.String({ pattern: '^[0-9a-f]{64}$', examples: ['e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'] }),
        }),
      ),
    }),
    response: OkResponse,
    handler: async (req) => {
      const { content, approval } = req.body;
      const v = viewerOf(req);
      if ((content === undefined) === (approval === undefined)) {
        if (!(await findRun(ctx.db, v, false, req.params.run_id))) throw notFound('runs.not_found', 'run'); // the 404 comes first (§1.5)
        throw fieldError('content', 'give exactly one of content and approval');
      }
      let answer: RunAnswer;
      let input: Record<string, unknown>;
      if (content !== undefined) {
        const max = await entitlementInt(ctx, v.accountId, 'limit.max_input_content_bytes');
        if (Buffer.byteLength(content, 'utf8') > max) {
          throw new AppError('validation.error', `content is larger than ${max} bytes`, { fields: [{ field: 'content', reason: `must be at most ${max} bytes` }], max_bytes: max });
        }
        answer = { kind: 'input', content };
        input = { content, provided_by_user_id: v.userId };
      } else {
        answer = { kind: 'tool_approval', ...approval! };
        input = { kind: 'tool_approval', tool_call_id: approval!.tool_call_id, decision: approval!.decision, provided_by_user_id: v.userId };
      }
      const runId = req.params.run_id;
      const job = { type: 'run.execute', payload: { v: 1, run_id: runId, trace_id: req.id, resume: true }, maxAttempts: 3 };
      // A worker of this process with a free slot resumes the run at once.
      const r = await ctx.engine.writeJob(
        job,
        (lease) => provideRunInput(ctx.db, v, runId, answer, input, job, ctx.engine.viaNotify, lease),
        (w) => (w.provided ? { jobId: w.jobId, at: new Date() } : null),
      );
      if (!r.provided) {
        if (!r.found) throw notFound('runs.not_found', 'run');
        if (r.status !== 'waiting_for_input' || r.cancelRequested) throw invalidState(r.status);
        const awaitsApproval = r.awaiting?.kind === 'tool_approval';
        if (answer.kind === 'input') throw fieldError('content', 'the run waits for a tool approval: answer with approval');
        if (!awaitsApproval) throw fieldError('approval', 'the run waits for a text answer: answer with content');
        throw new AppError('runs.approval_mismatch', 'tool_call_id or arguments_sha256 is not the approval the run waits for');
      }
      return { ok: true };
    },
  });

  // The seed's `:cancel` form: a literal colon after the id (regex param, see find-my-way).
  for (const url of ['/v1/runs/:run_id/cancel', '/v1/runs/:run_id(^[^:/]+)::cancel']) {
    registerRoute(app, ctx, {
      method: 'POST',
      url,
      caller: 'user+key',
      perm: MANAGE,
      ids: { run_id: 'runs.not_found' },
      summary: 'Cancel a run',
      tags,
      hide: url.endsWith('/cancel'),
      params: T.Object({ run_id: T.String() }),
      response: OkResponse,
      handler: async (req) => {
        const v = viewerOf(req);
        const run = await findRun(ctx.db, v, false, req.params.run_id);
        if (!run) throw notFound('runs.not_found', 'run');
        const ok = await requestRunCancel(ctx, {
          runId: run.id,
          threadId: run.thread_id,
          orgId: v.accountId,
          userId: v.userId,
          reason: 'user',
          origin: auditOrigin(req as FastifyRequest),
        });
        if (!ok) {
          const now = await findRun(ctx.db, v, false, run.id);
          throw invalidState(now?.status ?? run.status);
        }
        return { ok: true };
      },
    });
  }
}

