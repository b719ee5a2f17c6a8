// Threads (api.md §6): the SQL of the threads module. Each endpoint succeeds with one
// statement: the thread is read together with the visibility and editing rights (§1.4) and
// the caller's star, and a change is written together with its audit row (data-modifying
// CTEs). Only some error answers (and empty list pages) take a second read.
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DB } from '../../db/schema.js';
import { isoSql } from '../../db/sql-helpers.js';
import { auditInsertFrom, type AuditCtx } from '../audit/sql.js';
import { editableBy, projectVisible, threadVisible, type ChangeResult, type Viewer } from '../access/visibility.js';

export interface ThreadRow {
  id: string;
  org_id: string;
  created_by_user_id: string;
  title: string | null;
  project_id: string | null;
  is_private: boolean;
  active_run_id: string | null;
  created_at: Date;
  updated_at: Date;
  starred: boolean;
}

function columns(alias: string): RawBuilder<unknown> {
  const a = alias;
  return sql.raw(
    `${a}.id, ${a}.org_id, ${a}.created_by_user_id, ${a}.title, ${a}.project_id, ${a}.is_private, ${a}.active_run_id, ${a}.created_at, ${a}.updated_at`,
  );
}

function starredBy(alias: string, v: Viewer): RawBuilder<boolean> {
  return sql<boolean>`thread_starred_by(${sql.raw(alias)}.id, ${v.userId}::uuid)`;
}

/** The thread as audit before/after state: the Thread shape without the caller's `starred`. */
function threadState(alias: string): RawBuilder<unknown> {
  const a = (c: string) => sql.raw(`${alias}.${c}`);
  return sql`jsonb_build_object('id', ${a('id')}, 'org_id', ${a('org_id')}, 'created_by_user_id', ${a('created_by_user_id')},
    'title', ${a('title')}, 'project_id', ${a('project_id')}, 'is_private', ${a('is_private')}, 'active_run_id', ${a('active_run_id')},
    'created_at', ${isoSql(a('created_at'))}, 'updated_at', ${isoSql(a('updated_at'))})`;
}

/** A visible project of the account named by a thread, locked against a concurrent delete. */
function visibleProjectCte(projectId: string, v: Viewer): RawBuilder<unknown> {
  return sql`SELECT p.id FROM projects p WHERE p.id = ${projectId} AND ${projectVisible('p', v)} FOR SHARE OF p`;
}

export interface NewThread {
  id: string;
  title: string | null;
  projectId: string | null;
  isPrivate: boolean;
}

/** Creates the thread and its audit row; null when `projectId` names no visible project. */
export async function createThread(db: Kysely<DB>, v: Viewer, audit: AuditCtx, t: NewThread): Promise<ThreadRow | null> {
  const source = t.projectId
    ? sql`SELECT ${t.id}::uuid, ${v.accountId}::uuid, ${v.userId}::uuid, ${t.title}::text, proj.id, ${t.isPrivate}::boolean FROM proj`
    : sql`VALUES (${t.id}::uuid, ${v.accountId}::uuid, ${v.userId}::uuid, ${t.title}::text, NULL::uuid, ${t.isPrivate}::boolean)`;
  const res = await sql<ThreadRow>`
    WITH ${t.projectId ? sql`proj AS (${visibleProjectCte(t.projectId, v)}),` : sql``}
    ins AS (
      INSERT INTO threads (id, org_id, created_by_user_id, title, project_id, is_private) ${source}
      RETURNING *
    ),
    aud AS (${auditInsertFrom(audit.origin, {
      orgId: v.accountId,
      actorUserId: v.userId,
      action: 'thread.create',
      targetType: 'thread',
      metadata: { ...audit.metadata, title: t.title, project_id: t.projectId, is_private: t.isPrivate },
      targetId: sql`ins.id`,
      from: sql`ins`,
    })})
    SELECT ${columns('ins')}, FALSE AS starred FROM ins`.execute(db);
  return res.rows[0] ?? null;
}

export async function findVisibleThread(db: Kysely<DB>, v: Viewer, id: string): Promise<ThreadRow | undefined> {
  const res = await sql<ThreadRow>`
    SELECT ${columns('t')}, ${starredBy('t', v)} AS starred
      FROM threads t
     WHERE t.id = ${id} AND ${threadVisible('t', v)}`.execute(db);
  return res.rows[0];
}

export interface ThreadPatch {
  title?: string | null;
  projectId?: string | null;
  isPrivate?: boolean;
}

/**
 * Updates a visible thread the viewer may edit and writes `thread.update` with before/after
 * state, in one statement. The before state is the row joined as `o`; the update applies
 * only if that is still the row being updated (same xmin), so a concurrent change makes it
 * update nothing rather than record a stale before state. When nothing was updated, a second
 * read tells 404 / project 404 / 403 apart from such a lost race, which is then replayed
 * with the row locked, where it cannot lose again.
 */
export async function updateThread(db: Kysely<DB>, v: Viewer, audit: AuditCtx, id: string, patch: ThreadPatch): Promise<ChangeResult<ThreadRow>> {
  const row = await tryUpdateThread(db, v, audit, id, patch);
  if (row) return { kind: 'ok', row };
  const refused = await whyNotUpdated(db, v, id, patch.projectId);
  if (refused) return { kind: refused };
  return db.transaction().execute(async (trx) => {
    await sql`SELECT 1 FROM threads WHERE id = ${id} FOR UPDATE`.execute(trx);
    const locked = await tryUpdateThread(trx, v, audit, id, patch);
    if (locked) return { kind: 'ok', row: locked } as const;
    const why = await whyNotUpdated(trx, v, id, patch.projectId);
    if (!why) throw new Error(`thread ${id}: update refused without a reason while locked`);
    return { kind: why } as const;
  });
}

async function tryUpdateThread(db: Kysely<DB>, v: Viewer, audit: AuditCtx, id: string, patch: ThreadPatch): Promise<ThreadRow | undefined> {
  const sets: RawBuilder<unknown>[] = [];
  if (patch.title !== undefined) sets.push(sql`title = ${patch.title}`);
  if (patch.projectId !== undefined) sets.push(sql`project_id = ${patch.projectId}::uuid`);
  if (patch.isPrivate !== undefined) sets.push(sql`is_private = ${patch.isPrivate}`);
  sets.push(sql`updated_at = now()`);
  const namesProject = typeof patch.projectId === 'string';

  const res = await sql<ThreadRow>`
    WITH ${namesProject ? sql`proj AS (${visibleProjectCte(patch.projectId!, v)}),` : sql``}
    upd AS (
      UPDATE threads u SET ${sql.join(sets)}
        FROM threads o
       WHERE u.id = ${id} AND o.id = u.id AND u.xmin = o.xmin
         AND ${threadVisible('u', v)} AND ${editableBy('u', v)}${namesProject ? sql` AND EXISTS (SELECT 1 FROM proj)` : sql``}
      RETURNING u.*, ${threadState('o')} AS before_state
    ),
    aud AS (${auditInsertFrom(audit.origin, {
      orgId: v.accountId,
      actorUserId: v.userId,
      action: 'thread.update',
      targetType: 'thread',
      metadata: audit.metadata,
      targetId: sql`upd.id`,
      before: sql`upd.before_state`,
      after: threadState('upd'),
      from: sql`upd`,
    })})
    SELECT ${columns('upd')}, ${starredBy('upd', v)} AS starred FROM upd`.execute(db);
  return res.rows[0];
}

/** Why a thread update changed nothing, in the order of §1.5; null when it should be retried. */
async function whyNotUpdated(db: Kysely<DB>, v: Viewer, id: string, projectId: string | null | undefined) {
  const projectOk = typeof projectId === 'string'
    ? sql`EXISTS (SELECT 1 FROM projects p WHERE p.id = ${projectId} AND ${projectVisible('p', v)})`
    : sql`TRUE`;
  const res = await sql<{ editable: boolean; project_ok: boolean }>`
    SELECT ${editableBy('t', v)} AS editable, ${projectOk} AS project_ok
      FROM threads t WHERE t.id = ${id} AND ${threadVisible('t', v)}`.execute(db);
  const row = res.rows[0];
  if (!row) return 'not_found' as const;
  if (!row.project_ok) return 'ref_not_found' as const;
  if (!row.editable) return 'forbidden' as const;
  return null;
}

/**
 * Soft-deletes a visible thread the viewer may edit, with its `thread.delete` audit row, in
 * one UPDATE: its conditions are rechecked on the latest row version under concurrency, and
 * the returned row (all but `deleted_at` unchanged) is the before state. Only when nothing
 * was deleted does a second read tell "not visible" (404) from "not editable" (403).
 */
/** Soft-deletes a thread the viewer may edit; on success, with the run that was active on it. */
export async function deleteThread(
  db: Kysely<DB>,
  v: Viewer,
  audit: AuditCtx,
  id: string,
): Promise<{ result: 'ok'; activeRunId: string | null } | { result: 'not_found' } | { result: 'forbidden' }> {
  const res = await sql<{ id: string; active_run_id: string | null }>`
    WITH del AS (
      UPDATE threads t SET deleted_at = now()
       WHERE t.id = ${id} AND ${threadVisible('t', v)} AND ${editableBy('t', v)}
      RETURNING t.*
    ),
    aud AS (${auditInsertFrom(audit.origin, {
      orgId: v.accountId,
      actorUserId: v.userId,
      action: 'thread.delete',
      targetType: 'thread',
      metadata: audit.metadata,
      targetId: sql`del.id`,
      before: threadState('del'),
      from: sql`del`,
    })})
    SELECT del.id, del.active_run_id FROM del`.execute(db);
  if (res.rows.length) return { result: 'ok', activeRunId: res.rows[0].active_run_id };
  return (await findVisibleThread(db, v, id)) ? { result: 'forbidden' } : { result: 'not_found' };
}

/** Stars or unstars a visible thread for the viewer (idempotent); false when not visible. */
export async function setStar(db: Kysely<DB>, v: Viewer, id: string, starred: boolean): Promise<boolean> {
  const change = starred
    ? sql`INSERT INTO thread_stars (user_id, thread_id) SELECT ${v.userId}::uuid, th.id FROM th ON CONFLICT DO NOTHING`
    : sql`DELETE FROM thread_stars s USING th WHERE s.user_id = ${v.userId} AND s.thread_id = th.id`;
  const res = await sql<{ id: string }>`
    WITH th AS (SELECT t.id FROM threads t WHERE t.id = ${id} AND ${threadVisible('t', v)}),
    change AS (${change})
    SELECT th.id FROM th`.execute(db);
  return res.rows.length === 1;
}

export type ThreadList =
  | { kind: 'own' }
  | { kind: 'project'; projectId: string }
  | { kind: 'starred' }
  | { kind: 'search'; q: string };

/** `%`, `_` (and the escape character itself) are literal in searches (§6.3). */
export function likePattern(q: string): string {
  return '%' + q.replace(/[!%_]/g, '!$&') + '%';
}

/** Membership of thread `alias` in a list; `withDeleted` for checking cursors (§1.7). */
function inList(alias: string, v: Viewer, list: ThreadList, withDeleted: boolean): RawBuilder<boolean> {
  const t = sql.raw(alias);
  switch (list.kind) {
    case 'own':
      return sql<boolean>`(${t}.org_id = ${v.accountId} AND ${t}.created_by_user_id = ${v.userId}${withDeleted ? sql`` : sql` AND ${t}.deleted_at IS NULL`})`;
    case 'project':
      return sql<boolean>`(${t}.project_id = ${list.projectId} AND ${threadVisible(alias, v, { withDeleted })}
        AND EXISTS (SELECT 1 FROM projects lp WHERE lp.id = ${list.projectId} AND ${projectVisible('lp', v)}))`;
    case 'starred':
      // A plain IN (not the starred function) lets the planner start from the caller's stars.
      return sql<boolean>`(${t}.id IN (SELECT s.thread_id FROM thread_stars s WHERE s.user_id = ${v.userId})
        AND ${threadVisible(alias, v, { withDeleted })})`;
    case 'search': {
      const pattern = likePattern(list.q);
      return sql<boolean>`(${threadVisible(alias, v, { withDeleted })} AND (${t}.title ILIKE ${pattern} ESCAPE '!' OR EXISTS (
        SELECT 1 FROM messages m WHERE m.thread_id = ${t}.id AND m.content ILIKE ${pattern} ESCAPE '!')))`;
    }
  }
}

export interface Page {
  limit: number;
  before: string | null;
}

/**
 * A page of a thread list, newest first. A `before` that names no item of the list gives an
 * empty page; callers tell that apart with `isThreadListCursor` when the page is empty.
 */
export async function listThreads(db: Kysely<DB>, v: Viewer, list: ThreadList, page: Page): Promise<ThreadRow[]> {
  const cursor = page.before
    ? sql` AND (t.created_at, t.id) < (SELECT c.created_at, c.id FROM threads c WHERE c.id = ${page.before} AND ${inList('c', v, list, true)})`
    : sql``;
  const res = await sql<ThreadRow>`
    SELECT ${columns('t')}, ${starredBy('t', v)} AS starred
      FROM threads t
     WHERE ${inList('t', v, list, false)}${cursor}
     ORDER BY t.created_at DESC, t.id DESC
     LIMIT ${page.limit}`.execute(db);
  return res.rows;
}

/** Does `id` name an item of the list (soft-deleted items count, §1.7)? */
export async function isThreadListCursor(db: Kysely<DB>, v: Viewer, list: ThreadList, id: string): Promise<boolean> {
  const res = await sql`SELECT 1 FROM threads c WHERE c.id = ${id} AND ${inList('c', v, list, true)}`.execute(db);
  return res.rows.length > 0;
}

/** The SELECT that locks a visible thread for starting a run (one active run per thread, §26.6). */
export function lockThreadForRunSql(v: Viewer, id: string): RawBuilder<{ id: string; active_run_id: string | null; title: string | null }> {
  return sql`SELECT t.id, t.active_run_id, t.title FROM threads t WHERE t.id = ${id} AND ${threadVisible('t', v)} FOR UPDATE OF t`;
}

/**
 * Locks a visible thread for starting a run. Returns the thread's active run and title, or
 * undefined when the thread is not visible.
 */
export async function lockThreadForRun(db: Kysely<DB>, v: Viewer, id: string): Promise<{ active_run_id: string | null; title: string | null } | undefined> {
  const res = await lockThreadForRunSql(v, id).execute(db);
  return res.rows[0];
}

/** An UPDATE making `runId` the active run of the threads named by `from` (a CTE with `id`). */
export function claimThreadSql(runId: string, from: string): RawBuilder<unknown> {
  return sql`UPDATE threads t SET active_run_id = ${runId} FROM ${sql.table(from)} c WHERE t.id = c.id RETURNING t.id`;
}

/**
 * The UPDATE of a thread when its run `runId` ends (§27.8): the active run is cleared if it
 * is still that run, and a thread without a title gets the first line of its first user
 * message. `from` names a CTE with the thread's `thread_id` (no row = no update).
 */
export function releaseThreadAfterRunSql(runId: string, from: string): RawBuilder<unknown> {
  const firstLine = sql`(SELECT CASE WHEN btrim(m.content) <> '' THEN left(regexp_replace(split_part(m.content, E'\\n', 1), '\\s+', ' ', 'g'), 60) END
      FROM messages m WHERE m.thread_id = t.id AND m.role = 'user' ORDER BY m.created_at, m.id LIMIT 1)`;
  return sql`UPDATE threads t SET
      active_run_id = CASE WHEN t.active_run_id = ${runId}::uuid THEN NULL ELSE t.active_run_id END,
      title = coalesce(t.title, ${firstLine}),
      updated_at = CASE WHEN t.title IS NULL AND ${firstLine} IS NOT NULL THEN now() ELSE t.updated_at END
    FROM ${sql.table(from)} c WHERE t.id = c.thread_id
    RETURNING t.title`;
}


