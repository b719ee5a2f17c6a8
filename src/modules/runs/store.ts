// Runs (api.md §8, §26): the SQL of the runs module. A run is visible iff its thread is
// visible (§1.4); holders of data.runs.read_all also read every run's metadata.
import { sql, type Kysely, type RawBuilder, type Selectable } from 'kysely';
import type { AccountRole, AwaitedInput, DB, RunsTable } from '../../db/schema.js';
import { threadVisible, type Viewer } from '../access/visibility.js';
import { eventCtes, eventsAfterSql, eventsOf, type RunEvent } from '../../engine/events.js';
import { jobCtes, type LocalLease, type NewJob } from '../../engine/jobs.js';
import { memberRoleSql } from '../accounts/members-store.js';
import { creditBalanceSql } from '../credits/store.js';
import { conversationBeforeRunSql, userMessageExistsSql } from '../messages/store.js';
import { claimThreadSql, lockThreadForRunSql } from '../threads/store.js';

export type RunRow = Selectable<RunsTable> & { created_by_user_name: string; created_by_email: string | null };

export interface NewRun {
  id: string;
  orgId: string;
  threadId: string;
  userId: string;
  personaId: string | null;
  routeId: string | null;
  requestedModel: string | null;
  traceId: string;
}

export interface RunStartCheck {
  /** Absent: the thread is not visible. */
  found: boolean;
  activeRunId: string | null;
  hasUserMessage: boolean;
  balance: number;
  /** The run, its `run.started` and its job were written. */
  started: boolean;
  events: RunEvent[];
  jobs: number;
  /** With a local lease: what the worker reads first, read here (see RunStartLocal). */
  local?: { jobId: string; createdAt: Date; role: AccountRole | null; history: Array<{ role: string; content: string }> };
}

/** The job is written leased to a worker of this process, which gets the run's start state too. */
export interface RunStartLocal {
  lease: LocalLease;
  historyLimit: number;
}

/**
 * Starts a run in one statement (api.md §8.1): locks the visible thread, and when it has no
 * active run, has a user message and the account has credits, claims the thread and writes
 * the run row, `run.started` (seq 1) and the `run.execute` job (with NOTIFY on PostgreSQL).
 * What it found is returned so the caller can answer the first failed check.
 */
export async function startRun(
  db: Kysely<DB>,
  v: Viewer,
  r: NewRun,
  started: Record<string, unknown>,
  job: NewJob,
  notify: boolean,
  local: RunStartLocal | null = null,
): Promise<RunStartCheck> {
  const ev = eventCtes(r.id, 'run', [{ type: 'run.started', data: started }], notify);
  const jb = jobCtes('run', job, notify, local?.lease ?? null);
  const localColumns = local
    ? sql`, now() AS created_at, ${memberRoleSql(sql`${r.orgId}::uuid`, sql`${r.userId}::uuid`)} AS role,
        ${conversationBeforeRunSql(sql`chk.id`, sql`now()`, sql`${r.id}::uuid`, local.historyLimit)} AS history`
    : sql``;
  const res = await sql<{
    active_run_id: string | null;
    has_user: boolean;
    balance: number;
    started: number;
    ev_rows: unknown;
    jobs_inserted: number;
    created_at?: Date;
    role?: AccountRole | null;
    history?: Array<{ role: string; content: string }>;
  }>`
    WITH th AS (${lockThreadForRunSql(v, r.threadId)}),
    chk AS (
      SELECT th.id, th.active_run_id, ${userMessageExistsSql(sql`th.id`)} AS has_user, ${creditBalanceSql(sql`${r.orgId}::uuid`)} AS balance FROM th
    ),
    ok AS (SELECT id FROM chk WHERE active_run_id IS NULL AND has_user AND balance > 0),
    claim AS (${claimThreadSql(r.id, 'ok')}),
    run AS (
      INSERT INTO runs (id, org_id, thread_id, created_by_user_id, status, persona_id, route_id, requested_model, trace_id, running_since, last_seq)
      SELECT ${r.id}, ${r.orgId}, claim.id, ${r.userId}, 'running', ${r.personaId}, ${r.routeId}, ${r.requestedModel}, ${r.traceId}, now(), 1 FROM claim
      RETURNING last_seq
    ),
    ${ev.ctes},
    ${jb.ctes}
    SELECT chk.active_run_id, chk.has_user, chk.balance, (SELECT count(*)::int FROM run) AS started, ${ev.columns}, ${jb.columns}${localColumns} FROM chk`.execute(db);
  const row = res.rows[0];
  if (!row) return { found: false, activeRunId: null, hasUserMessage: false, balance: 0, started: false, events: [], jobs: 0 };
  return {
    found: true,
    activeRunId: row.active_run_id,
    hasUserMessage: row.has_user,
    balance: Number(row.balance),
    started: row.started > 0,
    events: eventsOf(row),
    jobs: row.jobs_inserted,
    local: local && row.created_at ? { jobId: jb.id, createdAt: row.created_at, role: row.role ?? null, history: row.history ?? [] } : undefined,
  };
}

export interface InputResult {
  /** Absent: the run is not visible. */
  found: boolean;
  status: string;
  cancelRequested: boolean;
  /** What the run awaited when the answer came (null: not waiting, or a run paused before awaiting_input existed). */
  awaiting: AwaitedInput | null;
  /** The input was taken: `run.input_provided` written, status back to running, resume job queued. */
  provided: boolean;
  events: RunEvent[];
  jobs: number;
  jobId: string;
}

/** The answer to a waiting run: text, or the decision on the awaited tool approval (§27.5a). */
export type RunAnswer =
  | { kind: 'input'; content: string }
  | { kind: 'tool_approval'; tool_call_id: string; arguments_sha256: string; decision: 'approve' | 'deny' };

/** The answer matches what the run awaits (checked inside the statement that takes it). */
function answerMatches(a: RunAnswer): RawBuilder<boolean> {
  if (a.kind === 'input') return sql<boolean>`coalesce(cur.awaiting_input->>'kind', 'input') = 'input'`;
  return sql<boolean>`(cur.awaiting_input->>'kind' = 'tool_approval' AND cur.awaiting_input->>'tool_call_id' = ${a.tool_call_id}
    AND cur.awaiting_input->>'arguments_sha256' = ${a.arguments_sha256})`;
}

/**
 * Answers a run waiting for input in one statement (api.md §8.6): when the visible run waits
 * for this kind of answer (the very approval it awaits) and no cancel is pending,
 * `run.input_provided` is appended, the run is running again and a resume job is written
 * (leased to a local worker when `lease`).
 */
export async function provideRunInput(
  db: Kysely<DB>,
  v: Viewer,
  runId: string,
  answer: RunAnswer,
  input: Record<string, unknown>,
  job: NewJob,
  notify: boolean,
  lease: LocalLease | null,
): Promise<InputResult> {
  const ev = eventCtes(runId, 's', [{ type: 'run.input_provided', data: input }], notify);
  const jb = jobCtes('s', job, notify, lease);
  const res = await sql<{ status: string; cancel_requested: boolean; awaiting_input: AwaitedInput | null; provided: number; ev_rows: unknown; jobs_inserted: number }>`
    WITH cur AS (SELECT r.id, r.status, r.cancel_requested, r.awaiting_input FROM runs r WHERE r.id = ${runId} AND ${runVisible(v, false)} FOR UPDATE OF r),
    s AS (
      UPDATE runs SET status = 'running', running_since = now(), waiting_since = NULL, awaiting_input = NULL, last_seq = last_seq + 1, updated_at = now()
        FROM cur WHERE runs.id = cur.id AND cur.status = 'waiting_for_input' AND NOT cur.cancel_requested AND ${answerMatches(answer)}
      RETURNING runs.last_seq
    ),
    ${ev.ctes},
    ${jb.ctes}
    SELECT cur.status, cur.cancel_requested, cur.awaiting_input, (SELECT count(*)::int FROM s) AS provided, ${ev.columns}, ${jb.columns} FROM cur`.execute(db);
  const row = res.rows[0];
  if (!row) return { found: false, status: '', cancelRequested: false, awaiting: null, provided: false, events: [], jobs: 0, jobId: jb.id };
  const awaiting = typeof row.awaiting_input === 'string' ? (JSON.parse(row.awaiting_input) as AwaitedInput) : row.awaiting_input;
  return { found: true, status: row.status, cancelRequested: row.cancel_requested, awaiting, provided: row.provided > 0, events: eventsOf(row), jobs: row.jobs_inserted, jobId: jb.id };
}

/** Which runs a viewer may read: of visible threads, or every run of the account with read_all. */
function runVisible(v: Viewer, readAll: boolean): RawBuilder<boolean> {
  const visibleThread = sql<boolean>`EXISTS (SELECT 1 FROM threads t WHERE t.id = r.thread_id AND ${threadVisible('t', v)})`;
  if (!readAll) return sql<boolean>`(r.org_id = ${v.accountId} AND ${visibleThread})`;
  // read_all: every run of the account whose thread is not deleted.
  return sql<boolean>`(r.org_id = ${v.accountId} AND EXISTS (SELECT 1 FROM threads t WHERE t.id = r.thread_id AND t.deleted_at IS NULL))`;
}

const SELECT_RUN = sql`SELECT r.*, u.username AS created_by_user_name, u.email AS created_by_email
  FROM runs r JOIN users u ON u.id = r.created_by_user_id`;

export async function findRun(db: Kysely<DB>, v: Viewer, readAll: boolean, id: string): Promise<RunRow | undefined> {
  const res = await sql<RunRow>`${SELECT_RUN} WHERE r.id = ${id} AND ${runVisible(v, readAll)}`.execute(db);
  return res.rows[0];
}

/** A run by id, whatever its visibility (the payload of its webhook events). */
export async function runById(db: Kysely<DB>, id: string): Promise<RunRow | undefined> {
  const res = await sql<RunRow>`${SELECT_RUN} WHERE r.id = ${id}`.execute(db);
  return res.rows[0];
}

/** A run with its events after `afterSeq` (at most `limit`), read in one statement (the event stream). */
export async function findRunWithEvents(db: Kysely<DB>, v: Viewer, id: string, afterSeq: number, limit: number): Promise<{ run: RunRow; events: RunEvent[] } | null> {
  const res = await sql<RunRow & { ev_rows: unknown }>`SELECT r.*, u.username AS created_by_user_name, u.email AS created_by_email,
      ${eventsAfterSql(sql`r.id`, afterSeq, limit)} AS ev_rows
    FROM runs r JOIN users u ON u.id = r.created_by_user_id WHERE r.id = ${id} AND ${runVisible(v, false)}`.execute(db);
  const row = res.rows[0];
  if (!row) return null;
  const { ev_rows, ...run } = row;
  return { run, events: eventsOf({ ev_rows }) };
}

export interface RunListFilter {
  threadId?: string;
  status?: string;
  before?: { created_at: Date; id: string } | null;
  limit: number;
}

export async function listRuns(db: Kysely<DB>, v: Viewer, readAll: boolean, f: RunListFilter): Promise<RunRow[]> {
  const conds: RawBuilder<unknown>[] = [runVisible(v, readAll)];
  if (f.threadId) conds.push(sql`r.thread_id = ${f.threadId}`);
  if (f.status) conds.push(sql`r.status = ${f.status}`);
  // Compared with the cursor row itself: a JS Date would cut its microseconds and skip rows.
  if (f.before) conds.push(sql`(r.created_at, r.id) < (SELECT c.created_at, c.id FROM runs c WHERE c.id = ${f.before.id})`);
  const res = await sql<RunRow>`${SELECT_RUN} WHERE ${sql.join(conds, sql` AND `)}
    ORDER BY r.created_at DESC, r.id DESC LIMIT ${f.limit}`.execute(db);
  return res.rows;
}

/** A run id usable as the `before` cursor of a list (same account; deleted threads included). */
export async function runCursor(db: Kysely<DB>, orgId: string, id: string) {
  return db.selectFrom('runs').select(['id', 'created_at', 'thread_id']).where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
}

/** The latest run of a thread (retry defaults). */
export async function latestRunOfThread(db: Kysely<DB>, threadId: string) {
  return db
    .selectFrom('runs')
    .select(['persona_id', 'route_id', 'requested_model'])
    .where('thread_id', '=', threadId)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .executeTakeFirst();
}

function iso(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}

export function shapeRunListItem(r: RunRow) {
  const terminalAt = r.completed_at ?? r.failed_at ?? r.cancelled_at;
  return {
    run_id: r.id,
    org_id: r.org_id,
    thread_id: r.thread_id,
    status: r.status,
    model: r.model,
    persona_id: r.persona_id,
    total_input_tokens: Number(r.total_input_tokens),
    total_output_tokens: Number(r.total_output_tokens),
    total_cost_usd: Number(r.total_cost_usd),
    duration_ms: terminalAt ? terminalAt.getTime() - r.created_at.getTime() : null,
    cache_hit_rate: Number(r.total_input_tokens) > 0 ? Number(r.total_cache_read_tokens) / Number(r.total_input_tokens) : null,
    credits_used: Number(r.credits_used),
    created_at: r.created_at.toISOString(),
    completed_at: iso(r.completed_at),
    failed_at: iso(r.failed_at),
    cancelled_at: iso(r.cancelled_at),
    created_by_user_id: r.created_by_user_id,
    created_by_user_name: r.created_by_user_name,
    created_by_email: r.created_by_email,
  };
}

export function shapeRunDetail(r: RunRow) {
  return {
    ...shapeRunListItem(r),
    trace_id: r.trace_id,
    route_id: r.route_id,
    requested_model: r.requested_model,
    error_class: r.error_class,
    error_message: r.error_message,
    total_cache_read_tokens: Number(r.total_cache_read_tokens),
    total_cache_write_tokens: Number(r.total_cache_write_tokens),
    last_seq: r.last_seq,
    cancel_requested: r.cancel_requested,
    updated_at: r.updated_at.toISOString(),
  };
}

/** Any run by id, whatever its account or thread (platform admins, api.md §21.6). */
export async function findRunForAdmin(db: Kysely<DB>, id: string): Promise<RunRow | undefined> {
  const res = await sql<RunRow>`${SELECT_RUN} WHERE r.id = ${id}`.execute(db);
  return res.rows[0];
}
