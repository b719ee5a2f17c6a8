// Notifications: the rows behind a user's inbox (api.md §2.8, §19.1–19.3). Other modules create
// them through createNotification, inside their own transaction; broadcasts in batches (fanout.ts).
import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, NotificationsTable } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';
import { iso } from '../../http/schemas.js';

export type NotificationRow = Selectable<NotificationsTable>;

export interface NewNotification {
  userId: string;
  orgId: string | null;
  type: string;
  title: string;
  body?: string;
  payload?: Record<string, unknown>;
}

export async function createNotification(db: Kysely<DB>, n: NewNotification): Promise<NotificationRow> {
  return db
    .insertInto('notifications')
    .values({
      id: newId(),
      user_id: n.userId,
      org_id: n.orgId,
      type: n.type,
      title: n.title,
      body: n.body ?? '',
      payload: JSON.stringify(n.payload ?? {}),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** A notification whose broadcast was deleted is withdrawn: it never shows (api.md §19.7). */
const notWithdrawn = (alias: string) =>
  sql<boolean>`NOT EXISTS (SELECT 1 FROM broadcasts b WHERE b.id = ${sql.ref(`${alias}.broadcast_id`)} AND b.deleted_at IS NOT NULL)`;

export interface NotificationFilter {
  unreadOnly: boolean;
  type: string | null;
}

/**
 * A page of a user's notifications, newest first. A `before` that names none of the user's
 * notifications gives an empty page; tell that apart with isNotificationCursor.
 */
export async function listNotifications(
  db: Kysely<DB>,
  userId: string,
  f: NotificationFilter,
  page: { limit: number; before: string | null },
): Promise<NotificationRow[]> {
  const res = await sql<NotificationRow>`
    SELECT n.* FROM notifications n
     WHERE n.user_id = ${userId} AND ${notWithdrawn('n')}
       ${f.unreadOnly ? sql`AND n.read_at IS NULL` : sql``}
       ${f.type !== null ? sql`AND n.type = ${f.type}` : sql``}
       ${page.before ? sql`AND (n.created_at, n.id) < (SELECT c.created_at, c.id FROM notifications c WHERE c.id = ${page.before} AND c.user_id = ${userId})` : sql``}
     ORDER BY n.created_at DESC, n.id DESC
     LIMIT ${page.limit}`.execute(db);
  return res.rows;
}

/** Does `id` name one of the user's notifications (withdrawn ones count, like soft-deleted items, §1.7)? */
export async function isNotificationCursor(db: Kysely<DB>, userId: string, id: string): Promise<boolean> {
  const row = await db.selectFrom('notifications').select('id').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
  return row !== undefined;
}

/** Marks every unread notification of the user read; returns how many were newly marked. */
export async function markAllRead(db: Kysely<DB>, userId: string): Promise<number> {
  const res = await sql`
    UPDATE notifications n SET read_at = now()
     WHERE n.user_id = ${userId} AND n.read_at IS NULL AND ${notWithdrawn('n')}`.execute(db);
  return Number(res.numAffectedRows ?? 0);
}

/**
 * Marks one of the user's notifications read (an already read one keeps its read_at).
 * False when the user has no such visible notification.
 */
export async function markRead(db: Kysely<DB>, userId: string, id: string): Promise<boolean> {
  const res = await sql<{ id: string }>`
    UPDATE notifications n SET read_at = coalesce(n.read_at, now())
     WHERE n.id = ${id} AND n.user_id = ${userId} AND ${notWithdrawn('n')}
    RETURNING n.id`.execute(db);
  return res.rows.length > 0;
}

export function shapeNotification(n: NotificationRow) {
  return {
    id: n.id,
    user_id: n.user_id,
    org_id: n.org_id,
    type: n.type,
    title: n.title,
    body: n.body,
    payload: (n.payload ?? {}) as Record<string, unknown>,
    read_at: iso(n.read_at),
    created_at: iso(n.created_at),
  };
}
