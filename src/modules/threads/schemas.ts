// The Thread shape (api.md §2.3) and the request schemas of §6.
import { DateTime, Nullable, OptNull, PageQuery, T, Uuid, iso } from '../../http/schemas.js';
import type { ThreadRow } from './store.js';

export const ThreadSchema = T.Object({
  id: Uuid(),
  org_id: Uuid(),
  created_by_user_id: Uuid(),
  title: Nullable(T.String()),
  project_id: Nullable(Uuid()),
  is_private: T.Boolean(),
  active_run_id: Nullable(Uuid()),
  starred: T.Boolean(),
  created_at: DateTime(),
  updated_at: DateTime(),
});

export function shapeThread(r: ThreadRow) {
  return {
    id: r.id,
    org_id: r.org_id,
    created_by_user_id: r.created_by_user_id,
    title: r.title,
    project_id: r.project_id,
    is_private: r.is_private,
    active_run_id: r.active_run_id,
    starred: r.starred,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

const Title = () => T.String({ minLength: 1, maxLength: 200 });

export const CreateThreadBody = T.Object({
  title: OptNull(Title()),
  is_private: OptNull(T.Boolean()),
  project_id: OptNull(Uuid()),
});

export const PatchThreadBody = T.Object({
  title: T.Optional(Nullable(Title())),
  project_id: T.Optional(Nullable(Uuid())),
  is_private: T.Optional(T.Boolean()),
});

export const ListThreadsQuery = T.Object({ ...PageQuery().properties, project_id: T.Optional(Uuid()) });

export const SearchThreadsQuery = T.Object({ ...PageQuery().properties, q: T.String({ minLength: 1, maxLength: 200 }) });

export const ThreadParams = T.Object({ thread_id: T.String() });
