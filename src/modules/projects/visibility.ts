// The visibility and editing rules of api.md §1.4, in one place, as SQL predicates so that a
// resource and the right to see it are read by the same statement. Threads and messages use
// these too.
import type { FastifyRequest } from 'fastify';
import { sql, type RawBuilder } from 'kysely';
import { isManagerRole } from '../accounts/store.js';

/** Who is looking: the caller in the current account. */
export interface Viewer {
  accountId: string;
  userId: string;
  /** Account owner/admin (a platform admin acting in an account counts as owner). */
  manager: boolean;
}

type AnyReq = Pick<FastifyRequest, 'account' | 'principal'>;

export function viewerOf(req: AnyReq): Viewer {
  return { accountId: req.account!.id, userId: req.principal!.user.id, manager: isManagerRole(req.account!.role) };
}

/** Soft-deleted rows are invisible, except where a list checks its `before` cursor (§1.7). */
export interface VisibilityOptions {
  withDeleted?: boolean;
}

/**
 * Project `alias` is visible: same account, not deleted, and private → its creator only;
 * shared without a team → every member; shared with a team → that team's members plus
 * owners/admins. The creator always sees their own project (decided: the contract names
 * the creator as editor, so they keep seeing it even outside the team).
 */
export function projectVisible(alias: string, v: Viewer, opts: VisibilityOptions = {}): RawBuilder<boolean> {
  const p = sql.raw(alias);
  const deleted = opts.withDeleted ? sql`` : sql` AND ${p}.deleted_at IS NULL`;
  const shared = v.manager
    ? sql`${p}.visibility = 'shared'`
    : sql`(${p}.visibility = 'shared' AND (${p}.team_id IS NULL OR EXISTS (
          SELECT 1 FROM team_members tm WHERE tm.team_id = ${p}.team_id AND tm.user_id = ${v.userId})))`;
  return sql<boolean>`(${p}.org_id = ${v.accountId}${deleted} AND (${p}.created_by_user_id = ${v.userId} OR ${shared}))`;
}

/**
 * Thread `alias` is visible: same account, not deleted, and either created by the viewer or
 * not private and in a shared project the viewer can see. A thread without a project is
 * personal to its creator.
 */
export function threadVisible(alias: string, v: Viewer, opts: VisibilityOptions = {}): RawBuilder<boolean> {
  const t = sql.raw(alias);
  const deleted = opts.withDeleted ? sql`` : sql` AND ${t}.deleted_at IS NULL`;
  return sql<boolean>`(${t}.org_id = ${v.accountId}${deleted} AND (${t}.created_by_user_id = ${v.userId} OR (
      NOT ${t}.is_private AND EXISTS (
        SELECT 1 FROM projects vp WHERE vp.id = ${t}.project_id AND vp.visibility = 'shared' AND ${projectVisible('vp', v)}))))`;
}

/**
 * Editing a visible thread or project (PATCH/DELETE): its creator, or an account
 * owner/admin. Only meaningful together with the matching `*Visible` predicate.
 */
export function editableBy(alias: string, v: Viewer): RawBuilder<boolean> {
  return v.manager ? sql<boolean>`TRUE` : sql<boolean>`(${sql.raw(alias)}.created_by_user_id = ${v.userId})`;
}

/** Outcome of editing a thread or project, in the order of checks of §1.5. */
export type ChangeResult<R> =
  | { kind: 'ok'; row: R }
  /** The addressed resource does not exist or is not visible: 404. */
  | { kind: 'not_found' }
  /** A resource named in the body is missing or invisible: its 404. */
  | { kind: 'ref_not_found' }
  /** Visible but not editable by the caller: 403. */
  | { kind: 'forbidden' };
