// Runs (api.md §8, §26): the SQL of the runs module. A run is visible iff its thread is
// visible (§1.4); holders of data.runs.read_all also read every run's metadata.
import { sql, type Kysely, type RawBuilder, type Selectable } from 'kysely';
import type { DB, RunsTable } from '../../db/schema.js';
import { threadVisible, type Viewer } from '../projects/visibility.js';

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

export async function insertRun(db: Kysely<DB>, r: NewRun): Promise<void> {
  await db
    .insertInto('runs')
    .values({
      id: r.id,
      org_id: r.orgId,
      thread_id: r.threadId,
      created_by_user_id: r.userId,
      status: 'running',
      persona_id: r.personaId,
      route_id: r.routeId,
      requested_model: r.requestedModel,
      trace_id: r.traceId,
      running_since: new Date(),
    })
    .execute();
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
  if (f.before) conds.push(sql`(r.created_at, r.id) < (${f.before.created_at}, ${f.before.id})`);
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
