// The Project and workspace shapes (api.md §2.3) and the request schemas of §9.
import { DateTime, Nullable, OptNull, PageQuery, T, Uuid, iso } from '../../http/schemas.js';
import type { ProjectRow } from './store.js';

const Visibility = () => T.Union([T.Literal('private'), T.Literal('shared')]);
const Name = () => T.String({ minLength: 1, maxLength: 200 });
const Description = () => T.String({ maxLength: 2000 });

export const ProjectSchema = T.Object({
  id: Uuid(),
  org_id: Uuid(),
  team_id: Nullable(Uuid()),
  name: T.String(),
  description: Nullable(T.String()),
  visibility: Visibility(),
  created_by_user_id: Uuid(),
  created_at: DateTime(),
  updated_at: DateTime(),
});

export function shapeProject(p: ProjectRow) {
  return {
    id: p.id,
    org_id: p.org_id,
    team_id: p.team_id,
    name: p.name,
    description: p.description,
    visibility: p.visibility,
    created_by_user_id: p.created_by_user_id,
    created_at: iso(p.created_at),
    updated_at: iso(p.updated_at),
  };
}

export const CreateProjectBody = T.Object({
  name: Name(),
  description: OptNull(Description()),
  team_id: OptNull(Uuid()),
  visibility: OptNull(Visibility()),
});

export const PatchProjectBody = T.Object({
  name: T.Optional(Name()),
  description: T.Optional(Nullable(Description())),
  team_id: T.Optional(Nullable(Uuid())),
  visibility: T.Optional(Visibility()),
});

export const ListProjectsQuery = T.Object({ ...PageQuery().properties, team_id: T.Optional(Uuid()) });

export const ProjectParams = T.Object({ project_id: T.String() });

export const WorkspaceSchema = T.Object({
  project_id: Uuid(),
  workspace_ref: T.String(),
  owner_user_id: Uuid(),
  status: T.Union([T.Literal('active'), T.Literal('idle'), T.Literal('unavailable')]),
  last_used_at: Nullable(DateTime()),
});

export const WorkspaceListingSchema = T.Object({
  workspace_ref: T.String(),
  path: T.String(),
  items: T.Array(
    T.Object({
      name: T.String(),
      path: T.String(),
      type: T.Union([T.Literal('file'), T.Literal('dir')]),
      size: T.Integer(),
      mtime_unix_ms: T.Integer(),
      mime_type: Nullable(T.String()),
    }),
  ),
});
