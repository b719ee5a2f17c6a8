// Messages (api.md §7): the SQL of the messages module. A message is only read or written
// through a thread the caller can see (§1.4), checked by the same statement.
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DB } from '../../db/schema.js';
import { threadVisible, type Viewer } from '../access/visibility.js';

export interface MessageRow {
  id: string;
  org_id: string;
  thread_id: string;
  created_by_user_id: string | null;
  role: 'user' | 'assistant';
  content: string;
  run_id: string | null;
  created_at: Date;
}

const COLUMNS = sql.raw('m.id, m.org_id, m.thread_id, m.created_by_user_id, m.role, m.content, m.run_id, m.created_at');

/** Appends a user message to a visible thread and bumps the thread's `updated_at`; null when not visible. */
export async function addUserMessage(db: Kysely<DB>, v: Viewer, threadId: string, msg: { id: string; content: string }): Promise<MessageRow | null> {
  const res = await sql<MessageRow>`
    WITH th AS (SELECT t.id FROM threads t WHERE t.id = ${threadId} AND ${threadVisible('t', v)}),
    m AS (
      INSERT INTO messages (id, org_id, thread_id, created_by_user_id, role, content)
      SELECT ${msg.id}::uuid, ${v.accountId}::uuid, th.id, ${v.userId}::uuid, 'user', ${msg.content}::text FROM th
      RETURNING *
    ),
    touch AS (UPDATE threads t SET updated_at = now() FROM m WHERE t.id = m.thread_id)
    SELECT ${COLUMNS} FROM m`.execute(db);
  return res.rows[0] ?? null;
}

/** A message by id (the payload of its webhook event). */
export async function messageById(db: Kysely<DB>, id: string): Promise<MessageRow | undefined> {
  const res = await sql<MessageRow>`SELECT ${COLUMNS} FROM messages m WHERE m.id = ${id}`.execute(db);
  return res.rows[0];
}

/**
 * The newest `limit` messages of a visible thread (older than `before`), newest first. An
 * invisible thread or a `before` naming no message of the thread gives an empty page;
 * callers tell those apart with `messagePageProblem` when the page is empty.
 */
export async function listMessages(db: Kysely<DB>, v: Viewer, threadId: string, page: { limit: number; before: string | null }): Promise<MessageRow[]> {
  const cursor = page.before
    ? sql` AND (m.created_at, m.id) < (SELECT c.created_at, c.id FROM messages c WHERE c.id = ${page.before} AND c.thread_id = ${threadId})`
    : sql``;
  const res = await sql<MessageRow>`
    SELECT ${COLUMNS} FROM messages m
     WHERE m.thread_id = ${threadId}
       AND EXISTS (SELECT 1 FROM threads t WHERE t.id = ${threadId} AND ${threadVisible('t', v)})${cursor}
     ORDER BY m.created_at DESC, m.id DESC
     LIMIT ${page.limit}`.execute(db);
  return res.rows;
}

/** Why a message page came back empty: the thread is not visible, the cursor is foreign, or neither. */
export async function messagePageProblem(db: Kysely<DB>, v: Viewer, threadId: string, before: string | null): Promise<'thread' | 'cursor' | null> {
  const res = await sql<{ visible: boolean; cursor_ok: boolean }>`
    SELECT EXISTS (SELECT 1 FROM threads t WHERE t.id = ${threadId} AND ${threadVisible('t', v)}) AS visible,
           EXISTS (SELECT 1 FROM messages c WHERE c.id = ${before} AND c.thread_id = ${threadId}) AS cursor_ok`.execute(db);
  const row = res.rows[0];
  if (!row.visible) return 'thread';
  if (before && !row.cursor_ok) return 'cursor';
  return null;
}

/** Does the thread have at least one user message (a run needs one, §8.1)? */
export async function hasUserMessage(db: Kysely<DB>, threadId: string): Promise<boolean> {
  const res = await sql<{ ok: boolean }>`SELECT ${userMessageExistsSql(sql`${threadId}::uuid`)} AS ok`.execute(db);
  return res.rows[0].ok;
}

/** Does the thread `threadId` (an SQL expression) have a user message? */
export function userMessageExistsSql(threadId: RawBuilder<unknown>): RawBuilder<boolean> {
  return sql<boolean>`EXISTS (SELECT 1 FROM messages m WHERE m.thread_id = ${threadId} AND m.role = 'user')`;
}

/**
 * The conversation a run starts from, as one json array oldest first of `{role, content}`:
 * the thread's newest `limit` messages up to the run's start, without the run's own.
 * Arguments are SQL expressions.
 */
export function conversationBeforeRunSql(threadId: RawBuilder<unknown>, startedAt: RawBuilder<unknown>, runId: RawBuilder<unknown>, limit: number): RawBuilder<unknown> {
  return sql`(SELECT coalesce(json_agg(json_build_object('role', h.role, 'content', h.content) ORDER BY h.created_at, h.id), '[]'::json) FROM (
      SELECT m.role, m.content, m.created_at, m.id FROM messages m
       WHERE m.thread_id = ${threadId} AND m.created_at <= ${startedAt} AND (m.run_id IS NULL OR m.run_id <> ${runId})
       ORDER BY m.created_at DESC, m.id DESC LIMIT ${limit}) h)`;
}

/** An INSERT of a run's assistant message, once per row of `from` (a CTE name). */
export function assistantMessageInsertSql(m: { id: string; orgId: string; threadId: string; content: string; runId: string }, from: string): RawBuilder<unknown> {
  return sql`INSERT INTO messages (id, org_id, thread_id, created_by_user_id, role, content, run_id)
    SELECT ${m.id}::uuid, ${m.orgId}::uuid, ${m.threadId}::uuid, NULL, 'assistant', ${m.content}, ${m.runId}::uuid FROM ${sql.table(from)}`;
}

/** Deletes the thread's newest message when it is the assistant's (a retry, §8.8). */
export async function deleteNewestAssistantMessage(db: Kysely<DB>, threadId: string): Promise<void> {
  await sql`
    DELETE FROM messages WHERE id = (
      SELECT id FROM messages WHERE thread_id = ${threadId} ORDER BY created_at DESC, id DESC LIMIT 1
    ) AND role = 'assistant'`.execute(db);
}
