// Notifications: the rows behind a user's inbox (api.md §2.8). Other modules create them
// through this function, inside their own transaction.
import type { Kysely, Selectable } from 'kysely';
import type { DB, NotificationsTable } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';

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
