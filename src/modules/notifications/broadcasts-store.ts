// Admin broadcasts (api.md §19.4–19.7): the broadcasts table and the batched fan-out that turns
// a broadcast into one notification per recipient.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { BroadcastsTable, DB } from '../../db/schema.js';
import { iso } from '../../http/schemas.js';
import { newId } from '../../lib/ids.js';

export type BroadcastRow = Selectable<BroadcastsTable>;

export const BROADCAST_FANOUT_JOB = 'broadcast.fanout';

export interface NewBroadcast {
  type: string;
  title: string;
  body: string;
  targetId: string | null;
  payload: Record<string, unknown>;
  createdBy: string;
}

export async function insertBroadcast(db: Kysely<DB>, b: NewBroadcast): Promise<BroadcastRow> {
  return db
    .insertInto('broadcasts')
    .values({
      id: newId(),
      type: b.type,
      title: b.title,
      body: b.body,
      target_type: b.targetId === null ? 'all' : 'org',
      target_id: b.targetId,
      payload: JSON.stringify(b.payload),
      fanout_after: null,
      created_by: b.createdBy,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** A broadcast that is not deleted (`withDeleted`: deleted ones too, e.g. for cursors). */
export async function findBroadcast(db: Kysely<DB>, id: string, withDeleted = false): Promise<BroadcastRow | undefined> {
  let q = db.selectFrom('broadcasts').selectAll().where('id', '=', id);
  if (!withDeleted) q = q.where('deleted_at', 'is', null);
  return q.executeTakeFirst();
}

/** A page of broadcasts, newest first; `limit + 1` rows tell whether more follow. */
export async function listBroadcasts(db: Kysely<DB>, page: { limit: number; cursor: string | null }): Promise<BroadcastRow[]> {
  const res = await sql<BroadcastRow>`
    SELECT * FROM broadcasts b
     WHERE b.deleted_at IS NULL
       ${page.cursor ? sql`AND (b.created_at, b.id) < (SELECT c.created_at, c.id FROM broadcasts c WHERE c.id = ${page.cursor})` : sql``}
     ORDER BY b.created_at DESC, b.id DESC
     LIMIT ${page.limit + 1}`.execute(db);
  return res.rows;
}

/**
 * Soft-deletes a broadcast; its notifications are withdrawn from then on (filtered out by the
 * notification queries, also those a fan-out still running writes afterwards). Returns the
 * row as it was, or undefined when there is no such (undeleted) broadcast.
 */
export async function deleteBroadcast(db: Kysely<DB>, id: string): Promise<BroadcastRow | undefined> {
  const before = await sql<BroadcastRow>`SELECT * FROM broadcasts WHERE id = ${id} AND deleted_at IS NULL FOR UPDATE`.execute(db);
  if (!before.rows[0]) return undefined;
  await db.updateTable('broadcasts').set({ deleted_at: sql`now()` }).where('id', '=', id).execute();
  return before.rows[0];
}

/** pending → sending; false when the broadcast is gone, deleted or already finished. */
export async function startSending(db: Kysely<DB>, id: string): Promise<boolean> {
  const res = await sql<{ id: string }>`
    UPDATE broadcasts SET status = 'sending'
     WHERE id = ${id} AND deleted_at IS NULL AND status IN ('pending', 'sending')
    RETURNING id`.execute(db);
  return res.rows.length > 0;
}

/** Where a fan-out stands: whom it targets and the last user id it has notified. */
export interface FanoutPosition {
  targetId: string | null;
  after: string | null;
}

/**
 * Writes the next batch of a broadcast's notifications in ONE statement (so its own short
 * transaction): the next `size` recipients after `pos.after` in user id order (a range scan of
 * the users primary key, or of the account's memberships, that stops after `size` rows),
 * inserted by INSERT … SELECT — no recipient list travels through the application — together
 * with the new position and `sent_count`. The broadcast row is locked and must still be at
 * `pos.after`, so two workers (a lease lost and taken over) never both write a batch; and a
 * batch written twice anyway inserts nothing twice (unique per user and broadcast).
 * Returns the new position (null `after`: nobody left), or null when the broadcast was
 * deleted, is no longer sending, or another worker moved it on.
 */
export async function writeFanoutBatch(db: Kysely<DB>, id: string, pos: FanoutPosition, size: number): Promise<{ covered: number; after: string | null } | null> {
  const after = pos.after ?? '00000000-0000-0000-0000-000000000000';
  const recipients = pos.targetId === null
    ? sql`SELECT u.id FROM users u WHERE u.id > ${after}::uuid AND u.status = 'active' ORDER BY u.id LIMIT ${size}`
    : sql`SELECT m.user_id AS id FROM account_memberships m JOIN users u ON u.id = m.user_id
           WHERE m.account_id = ${pos.targetId}::uuid AND m.user_id > ${after}::uuid AND u.status = 'active'
           ORDER BY m.user_id LIMIT ${size}`;
  const res = await sql<{ covered: number; last: string | null; held: number }>`
    WITH b AS (
      SELECT id, type, title, body, payload, target_id FROM broadcasts
       WHERE id = ${id} AND deleted_at IS NULL AND status = 'sending' AND fanout_after IS NOT DISTINCT FROM ${pos.after}::uuid
       FOR UPDATE
    ), batch AS (${recipients}),
    ins AS (
      INSERT INTO notifications (id, user_id, org_id, type, title, body, payload, broadcast_id)
      SELECT arkloop_uuid_v7(), t.id, b.target_id, b.type, b.title, b.body, b.payload || jsonb_build_object('broadcast_id', b.id), b.id
        FROM batch t, b
      ON CONFLICT (broadcast_id, user_id) WHERE broadcast_id IS NOT NULL DO NOTHING
      RETURNING 1
    ), upd AS (
      UPDATE broadcasts SET fanout_after = (SELECT id FROM batch ORDER BY id DESC LIMIT 1), sent_count = sent_count + (SELECT count(*) FROM ins)
       WHERE id = (SELECT id FROM b) AND EXISTS (SELECT 1 FROM batch)
    )
    SELECT (SELECT count(*) FROM batch)::int AS covered, (SELECT id FROM batch ORDER BY id DESC LIMIT 1)::text AS last,
           (SELECT count(*) FROM b)::int AS held`.execute(db);
  const row = res.rows[0];
  if (row.held === 0) return null;
  return { covered: row.covered, after: row.last };
}

/** sending → sent (or failed), with completed_at. */
export async function finishSending(db: Kysely<DB>, id: string, status: 'sent' | 'failed'): Promise<void> {
  await sql`UPDATE broadcasts SET status = ${status}, completed_at = now() WHERE id = ${id} AND status IN ('pending', 'sending')`.execute(db);
}

export function shapeBroadcast(b: BroadcastRow) {
  return {
    id: b.id,
    type: b.type,
    title: b.title,
    body: b.body,
    target_type: b.target_type,
    target_id: b.target_id,
    payload: (b.payload ?? {}) as Record<string, unknown>,
    status: b.status,
    sent_count: b.sent_count,
    created_by: b.created_by,
    created_at: iso(b.created_at),
    completed_at: iso(b.completed_at),
  };
}
