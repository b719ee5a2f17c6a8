// Projects (api.md §9): the SQL of the projects module. A project is read together with the
// visibility and editing rights of §1.4; a change is written together with its audit row.
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DB } from '../../db/schema.js';
import { isoSql } from '../../db/sql-helpers.js';
import { auditInsertFrom, type AuditCtx } from '../audit/sql.js';
import { editableBy, projectVisible, type ChangeResult, type Viewer } from '../access/visibility.js';

export interface ProjectRow {
  id: string;
  org_id: string;
  team_id: string | null;
  name: string;
  description: string | null;
  visibility: 'private' | 'shared';
  created_by_user_id: string;
  created_at: Date;
  updated_at: Date;
}

function columns(alias: string): RawBuilder<unknown> {
  const a = alias;
  return sql.raw(
    `${a}.id, ${a}.org_id, ${a}.team_id, ${a}.name, ${a}.description, ${a}.visibility, ${a}.created_by_user_id, ${a}.created_at, ${a}.updated_at`,
  );
}

/** The project as audit before/after state: the Project shape. */
function projectState(alias: string): RawBuilder<unknown> {
  const a = (c: string) => sql.raw(`${alias}.${c}`);
  return sql`jsonb_build_object('id', ${a('id')}, 'org_id', ${a('org_id')}, 'team_id', ${a('team_id')}, 'name', ${a('name')},
    'description', ${a('description')}, 'visibility', ${a('visibility')}, 'created_by_user_id', ${a('created_by_user_id')},
    'created_at', ${isoSql(a('created_at'))}, 'updated_at', ${isoSql(a('updated_at'))})`;
}

/** A team of the account named in the body, kept from being deleted until the change commits. */
function teamCte(teamId: string, accountId: string): RawBuilder<unknown> {
  return sql`SELECT tm.id FROM teams tm WHERE tm.id = ${teamId} AND tm.account_id = ${accountId} FOR KEY SHARE OF tm`;
}

export interface NewProject {
  id: string;
  name: string;
  description: string | null;
  teamId: string | null;
  visibility: 'private' | 'shared';
}

/** Creates the project and its audit row; null when `teamId` names no team of the account. */
export async function createProject(db: Kysely<DB>, v: Viewer, audit: AuditCtx, p: NewProject): Promise<ProjectRow | null> {
  const values = sql`${p.id}::uuid, ${v.accountId}::uuid, ${p.name}::text, ${p.description}::text, ${p.visibility}::text, ${v.userId}::uuid`;
  const source = p.teamId
    ? sql`SELECT ${values}, team.id FROM team`
    : sql`VALUES (${values}, NULL::uuid)`;
  const res = await sql<ProjectRow>`
    WITH ${p.teamId ? sql`team AS (${teamCte(p.teamId, v.accountId)}),` : sql``}
    ins AS (
      INSERT INTO projects (id, org_id, name, description, visibility, created_by_user_id, team_id) ${source}
      RETURNING *
    ),
    aud AS (${auditInsertFrom(audit.origin, {
      orgId: v.accountId,
      actorUserId: v.userId,
      action: 'project.create',
      targetType: 'project',
      metadata: { ...audit.metadata, name: p.name, team_id: p.teamId, visibility: p.visibility },
      targetId: sql`ins.id`,
      from: sql`ins`,
    })})
    SELECT ${columns('ins')} FROM ins`.execute(db);
  return res.rows[0] ?? null;
}

export async function findVisibleProject(db: Kysely<DB>, v: Viewer, id: string): Promise<ProjectRow | undefined> {
  const res = await sql<ProjectRow>`SELECT ${columns('p')} FROM projects p WHERE p.id = ${id} AND ${projectVisible('p', v)}`.execute(db);
  return res.rows[0];
}

export interface ProjectPatch {
  name?: string;
  description?: string | null;
  teamId?: string | null;
  visibility?: 'private' | 'shared';
}

interface PatchOutcome extends Omit<ProjectRow, 'id'> {
  id: string | null;
  editable: boolean;
  ref_ok: boolean;
}

/** Updates a visible project the viewer may edit, with `project.update` (before/after), in one statement. */
export async function updateProject(db: Kysely<DB>, v: Viewer, audit: AuditCtx, id: string, patch: ProjectPatch): Promise<ChangeResult<ProjectRow>> {
  const sets: RawBuilder<unknown>[] = [];
  if (patch.name !== undefined) sets.push(sql`name = ${patch.name}`);
  if (patch.description !== undefined) sets.push(sql`description = ${patch.description}`);
  if (patch.teamId !== undefined) sets.push(sql`team_id = ${patch.teamId}::uuid`);
  if (patch.visibility !== undefined) sets.push(sql`visibility = ${patch.visibility}`);
  sets.push(sql`updated_at = now()`);
  const namesTeam = typeof patch.teamId === 'string';

  const res = await sql<PatchOutcome>`
    WITH cur AS (
      SELECT p.*, ${editableBy('p', v)} AS editable
        FROM projects p
       WHERE p.id = ${id} AND ${projectVisible('p', v)}
         FOR UPDATE OF p
    ),
    ${namesTeam ? sql`team AS (${teamCte(patch.teamId!, v.accountId)}),` : sql``}
    upd AS (
      UPDATE projects u SET ${sql.join(sets)}
        FROM cur
       WHERE u.id = cur.id AND cur.editable${namesTeam ? sql` AND EXISTS (SELECT 1 FROM team)` : sql``}
      RETURNING u.*
    ),
    aud AS (${auditInsertFrom(audit.origin, {
      orgId: v.accountId,
      actorUserId: v.userId,
      action: 'project.update',
      targetType: 'project',
      metadata: audit.metadata,
      targetId: sql`upd.id`,
      before: projectState('cur'),
      after: projectState('upd'),
      from: sql`upd JOIN cur ON cur.id = upd.id`,
    })})
    SELECT ${columns('upd')}, cur.editable, ${namesTeam ? sql`EXISTS (SELECT 1 FROM team)` : sql`TRUE`} AS ref_ok
      FROM cur LEFT JOIN upd ON upd.id = cur.id`.execute(db);
  const row = res.rows[0];
  if (!row) return { kind: 'not_found' };
  if (!row.ref_ok) return { kind: 'ref_not_found' };
  if (!row.editable) return { kind: 'forbidden' };
  const { editable: _e, ref_ok: _r, ...project } = row;
  return { kind: 'ok', row: project as ProjectRow };
}

/**
 * Soft-deletes a visible project the viewer may edit and detaches its threads, with
 * `project.delete`. Two statements in one transaction: the project row is locked first, so
 * a thread being created in it concurrently (which holds a share lock on the project) has
 * committed before the detach reads the threads — none stays attached to a deleted project.
 */
export async function deleteProject(db: Kysely<DB>, v: Viewer, audit: AuditCtx, id: string): Promise<'ok' | 'not_found' | 'forbidden'> {
  return db.transaction().execute(async (trx) => {
    const cur = await sql<{ editable: boolean }>`
      SELECT ${editableBy('p', v)} AS editable FROM projects p
       WHERE p.id = ${id} AND ${projectVisible('p', v)} FOR UPDATE OF p`.execute(trx);
    if (!cur.rows[0]) return 'not_found';
    if (!cur.rows[0].editable) return 'forbidden';
    await sql`
      WITH del AS (
        UPDATE projects d SET deleted_at = now() WHERE d.id = ${id} RETURNING d.*
      ),
      detach AS (
        UPDATE threads t SET project_id = NULL WHERE t.project_id = ${id} AND t.org_id = ${v.accountId}
      ),
      aud AS (${auditInsertFrom(audit.origin, {
        orgId: v.accountId,
        actorUserId: v.userId,
        action: 'project.delete',
        targetType: 'project',
        metadata: audit.metadata,
        targetId: sql`del.id`,
        before: projectState('del'),
        from: sql`del`,
      })})
      SELECT 1`.execute(trx);
    return 'ok';
  });
}

export interface ProjectPage {
  limit: number;
  before: string | null;
  teamId: string | null;
}

/** Visible projects, newest first. A `before` naming no visible project gives an empty page. */
export async function listProjects(db: Kysely<DB>, v: Viewer, page: ProjectPage): Promise<ProjectRow[]> {
  const team = page.teamId ? sql` AND p.team_id = ${page.teamId}` : sql``;
  const cursor = page.before
    ? sql` AND (p.created_at, p.id) < (SELECT c.created_at, c.id FROM projects c
            WHERE c.id = ${page.before} AND ${projectVisible('c', v, { withDeleted: true })}${page.teamId ? sql` AND c.team_id = ${page.teamId}` : sql``})`
    : sql``;
  const res = await sql<ProjectRow>`
    SELECT ${columns('p')} FROM projects p
     WHERE ${projectVisible('p', v)}${team}${cursor}
     ORDER BY p.created_at DESC, p.id DESC
     LIMIT ${page.limit}`.execute(db);
  return res.rows;
}

/** Does `id` name an item of the project list (soft-deleted projects count, §1.7)? */
export async function isProjectListCursor(db: Kysely<DB>, v: Viewer, id: string, teamId: string | null): Promise<boolean> {
  const res = await sql`
    SELECT 1 FROM projects c
     WHERE c.id = ${id} AND ${projectVisible('c', v, { withDeleted: true })}${teamId ? sql` AND c.team_id = ${teamId}` : sql``}`.execute(db);
  return res.rows.length > 0;
}
