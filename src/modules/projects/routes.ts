// Projects (api.md §9): create, list, read, edit, delete, and the (always empty) workspace.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { forbidden, notFound, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { T, badCursor, parseCursor } from '../../http/schemas.js';
import { newId } from '../../lib/ids.js';
import { findTeam } from '../accounts/store.js';
import { auditCtxOf } from '../audit/sql.js';
import {
  CreateProjectBody,
  ListProjectsQuery,
  PatchProjectBody,
  ProjectParams,
  ProjectSchema,
  WorkspaceListingSchema,
  WorkspaceSchema,
  shapeProject,
} from './schemas.js';
import { createProject, deleteProject, findVisibleProject, isProjectListCursor, listProjects, updateProject } from './store.js';
import { viewerOf } from '../access/visibility.js';
import { checkWorkspacePath, shapeWorkspace, workspaceRef } from './workspace.js';

const READ = 'data.projects.read';
const MANAGE = 'data.projects.manage';
const NOT_FOUND = 'projects.not_found';

/** Workspace files need both points; answers the first one the caller lacks. */
function filesPerm(req: FastifyRequest): string {
  return req.account?.points.has(READ) ? 'data.runs.read' : READ;
}

export function projectRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['projects'];
  const ids = { project_id: NOT_FOUND } as const;

  async function visibleProject(req: FastifyRequest, id: string) {
    const row = await findVisibleProject(ctx.db, viewerOf(req), id);
    if (!row) throw notFound(NOT_FOUND);
    return row;
  }

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/projects',
    caller: 'user+key',
    perm: MANAGE,
    status: 201,
    summary: 'Create a project',
    tags,
    body: CreateProjectBody,
    trim: ['name'],
    response: ProjectSchema,
    handler: async (req) => {
      const b = req.body;
      const row = await createProject(ctx.db, viewerOf(req), auditCtxOf(req as FastifyRequest), {
        id: newId(),
        name: b.name,
        description: b.description ?? null,
        teamId: b.team_id?.toLowerCase() ?? null,
        visibility: b.visibility ?? 'private',
      });
      if (!row) throw notFound('teams.not_found');
      return shapeProject(row);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/projects',
    caller: 'user+key',
    perm: READ,
    summary: 'List the projects visible to the caller',
    tags,
    query: ListProjectsQuery,
    response: T.Array(ProjectSchema),
    handler: async (req) => {
      const v = viewerOf(req);
      const before = parseCursor(req.query.before);
      const teamId = req.query.team_id?.toLowerCase() ?? null;
      if (teamId && !(await findTeam(ctx.db, v.accountId, teamId))) throw notFound('teams.not_found');
      const rows = await listProjects(ctx.db, v, { limit: req.query.limit ?? 20, before, teamId });
      if (rows.length === 0 && before && !(await isProjectListCursor(ctx.db, v, before, teamId))) throw badCursor();
      return rows.map(shapeProject);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/projects/:project_id',
    caller: 'user+key',
    perm: READ,
    ids,
    summary: 'Get a project',
    tags,
    params: ProjectParams,
    response: ProjectSchema,
    handler: async (req) => shapeProject(await visibleProject(req as FastifyRequest, req.params.project_id)),
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/projects/:project_id',
    caller: 'user+key',
    perm: MANAGE,
    ids,
    summary: 'Edit a project',
    tags,
    params: ProjectParams,
    body: PatchProjectBody,
    trim: ['name'],
    response: ProjectSchema,
    handler: async (req) => {
      const b = req.body;
      if (b.name === undefined && b.description === undefined && b.team_id === undefined && b.visibility === undefined) {
        throw validationError('at least one of name, description, team_id, visibility is required');
      }
      const res = await updateProject(ctx.db, viewerOf(req), auditCtxOf(req as FastifyRequest), req.params.project_id, {
        name: b.name,
        description: b.description,
        teamId: typeof b.team_id === 'string' ? b.team_id.toLowerCase() : b.team_id,
        visibility: b.visibility,
      });
      if (res.kind === 'not_found') throw notFound(NOT_FOUND);
      if (res.kind === 'ref_not_found') throw notFound('teams.not_found');
      if (res.kind === 'forbidden') throw forbidden('only the creator or an owner/admin may edit this project');
      return shapeProject(res.row);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/projects/:project_id',
    caller: 'user+key',
    perm: MANAGE,
    ids,
    status: 204,
    summary: 'Delete a project (its threads become personal to their creators)',
    tags,
    params: ProjectParams,
    handler: async (req) => {
      const res = await deleteProject(ctx.db, viewerOf(req), auditCtxOf(req as FastifyRequest), req.params.project_id);
      if (res === 'not_found') throw notFound(NOT_FOUND);
      if (res === 'forbidden') throw forbidden('only the creator or an owner/admin may delete this project');
      return null;
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/projects/:project_id/workspace',
    caller: 'user+key',
    perm: READ,
    ids,
    summary: "Get a project's workspace (always unavailable: no sandbox sessions run here)",
    tags,
    params: ProjectParams,
    response: WorkspaceSchema,
    handler: async (req) => shapeWorkspace(await visibleProject(req as FastifyRequest, req.params.project_id)),
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/projects/:project_id/workspace/files',
    caller: 'user+key',
    perm: filesPerm,
    ids,
    summary: 'List a workspace directory (always empty: no manifest exists)',
    tags,
    params: ProjectParams,
    query: T.Object({ path: T.Optional(T.String()) }),
    nulCheckedByHandler: ['path'], // workspace_files.invalid_path (checkWorkspacePath)
    response: WorkspaceListingSchema,
    handler: async (req) => {
      const path = req.query.path ?? '/';
      checkWorkspacePath(path);
      const project = await visibleProject(req as FastifyRequest, req.params.project_id);
      return { workspace_ref: workspaceRef(project.id), path, items: [] };
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/projects/:project_id/workspace/file',
    caller: 'user+key',
    perm: filesPerm,
    ids,
    summary: 'Download a workspace file (none are stored)',
    tags,
    params: ProjectParams,
    query: T.Object({ path: T.String() }),
    nulCheckedByHandler: ['path'], // workspace_files.invalid_path (checkWorkspacePath)
    handler: async (req) => {
      checkWorkspacePath(req.query.path);
      await visibleProject(req as FastifyRequest, req.params.project_id);
      throw notFound('workspace_files.not_found', 'workspace file');
    },
  });
}
