// Who is looking (the Viewer of a request) and the visibility and editing rules of api.md §1.4
// as SQL predicates, so that a resource and the right to see it are read by the same
// statement. Projects, threads, messages and runs all use these.
// The visibility rules proper are the SQL functions of migrations/0003_content.sql (planned
// once per session); these wrappers add the account and soft-delete conditions.
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

const bool = (b: boolean) => sql.raw(b ? 'TRUE' : 'FALSE');

/**
 * Project `alias` is visible: same account, not deleted, and private → its creator only;
 * shared without a team → every member; shared with a team → that team's members plus
 * owners/admins. The creator always sees their own project (decided: the contract names the
 * creator as editor, so they keep seeing it even outside the team). The rule itself is the
 * SQL function `project_visible_to` (migrations/0003_content.sql).
 */
export function projectVisible(alias: string, v: Viewer, opts: VisibilityOptions = {}): RawBuilder<boolean> {
  const p = sql.raw(alias);
  const deleted = opts.withDeleted ? sql`` : sql` AND ${p}.deleted_at IS NULL`;
  // The creator test is repeated inline so the common case never calls the function.
  return sql<boolean>`(${p}.org_id = ${v.accountId}${deleted}
    AND (${p}.created_by_user_id = ${v.userId}
         OR project_visible_to(${p}.created_by_user_id, ${p}.visibility, ${p}.team_id, ${v.userId}::uuid, ${bool(v.manager)})))`;
}

/**
 * Thread `alias` is visible: same account, not deleted, and either created by the viewer or
 * not private and in a shared project the viewer can see. A thread without a project is
 * personal to its creator. The rule itself is the SQL function `thread_visible_to`.
 */
export function threadVisible(alias: string, v: Viewer, opts: VisibilityOptions = {}): RawBuilder<boolean> {
  const t = sql.raw(alias);
  const deleted = opts.withDeleted ? sql`` : sql` AND ${t}.deleted_at IS NULL`;
  // The creator test is repeated inline so the common case never calls the function.
  return sql<boolean>`(${t}.org_id = ${v.accountId}${deleted}
    AND (${t}.created_by_user_id = ${v.userId}
         OR thread_visible_to(${t}.created_by_user_id, ${t}.is_private, ${t}.project_id, ${v.accountId}::uuid, ${v.userId}::uuid, ${bool(v.manager)})))`;
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
