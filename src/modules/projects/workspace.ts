// Project workspaces (api.md §9.6–9.8). This platform runs no sandbox sessions and keeps no
// workspace manifest (decided), so a workspace is always unavailable and empty.
import { AppError } from '../../http/errors.js';
import type { ProjectRow } from './store.js';

export function workspaceRef(projectId: string): string {
  return 'ws_' + projectId.replace(/-/g, '');
}

export function shapeWorkspace(p: ProjectRow) {
  return {
    project_id: p.id,
    workspace_ref: workspaceRef(p.id),
    owner_user_id: p.created_by_user_id,
    status: 'unavailable' as const,
    last_used_at: null,
  };
}

/** A workspace path starts with `/`, is at most 1024 characters, has no `..` segment, NUL or backslash. */
export function checkWorkspacePath(path: string): void {
  let reason: string | null = null;
  if (!path.startsWith('/')) reason = 'must start with /';
  else if (path.length > 1024) reason = 'must be at most 1024 characters';
  else if (path.includes('\0') || path.includes('\\')) reason = 'must not contain NUL or backslash';
  else if (path.split('/').includes('..')) reason = 'must not contain a .. segment';
  if (reason) throw new AppError('workspace_files.invalid_path', `invalid workspace path: ${reason}`, { field: 'path', reason });
}
