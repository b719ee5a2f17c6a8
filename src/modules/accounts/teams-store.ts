// Teams and team members of an account (api.md §11.9–§11.15). Every query takes the
// account id, so a team of another account is never found.
import { sql, type Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import { newId } from '../../lib/ids.js';

export type TeamRole = 'admin' | 'member';

export interface TeamRow {
  id: string;
  account_id: string;
  name: string;
  members_count: number;
  created_at: Date;
}

export interface TeamMemberRow {
  team_id: string;
  user_id: string;
  role: TeamRole;
  login: string;
  username: string;
  email: string | null;
  created_at: Date;
}

function teamsQuery(db: Kysely<DB>, accountId: string) {
  return db
    .selectFrom('teams as t')
    .select([
      't.id',
      't.account_id',
      't.name',
      't.created_at',
      sql<number>`(SELECT count(*)::int FROM team_members tm WHERE tm.team_id = t.id)`.as('members_count'),
    ])
    .where('t.account_id', '=', accountId);
}

/** By name (case-insensitive), then id. */
export async function listTeams(db: Kysely<DB>, accountId: string): Promise<TeamRow[]> {
  return teamsQuery(db, accountId).orderBy(sql`lower(t.name)`).orderBy('t.name').orderBy('t.id').execute();
}

export async function getTeam(db: Kysely<DB>, accountId: string, teamId: string): Promise<TeamRow | undefined> {
  return teamsQuery(db, accountId).where('t.id', '=', teamId).executeTakeFirst();
}

/** Locks the team row (serialises member additions for the size limit). */
export async function lockTeam(db: Kysely<DB>, accountId: string, teamId: string): Promise<boolean> {
  const row = await db.selectFrom('teams').select('id').where('account_id', '=', accountId).where('id', '=', teamId).forUpdate().executeTakeFirst();
  return !!row;
}

export async function teamNameTaken(db: Kysely<DB>, accountId: string, name: string, exceptId?: string): Promise<boolean> {
  let q = db.selectFrom('teams').select('id').where('account_id', '=', accountId).where(sql`lower(name)`, '=', name.toLowerCase());
  if (exceptId) q = q.where('id', '!=', exceptId);
  return !!(await q.executeTakeFirst());
}

export async function insertTeam(db: Kysely<DB>, accountId: string, name: string): Promise<TeamRow> {
  const row = await db.insertInto('teams').values({ id: newId(), account_id: accountId, name }).returningAll().executeTakeFirstOrThrow();
  return { id: row.id, account_id: row.account_id, name: row.name, created_at: row.created_at, members_count: 0 };
}

export async function renameTeam(db: Kysely<DB>, accountId: string, teamId: string, name: string): Promise<void> {
  await db.updateTable('teams').set({ name, updated_at: new Date() }).where('account_id', '=', accountId).where('id', '=', teamId).execute();
}

/** Team members cascade; projects bound to the team get team_id null (foreign key). */
export async function deleteTeam(db: Kysely<DB>, accountId: string, teamId: string): Promise<void> {
  await db.deleteFrom('teams').where('account_id', '=', accountId).where('id', '=', teamId).execute();
}

function teamMembersQuery(db: Kysely<DB>, teamId: string) {
  return db
    .selectFrom('team_members as tm')
    .innerJoin('users as u', 'u.id', 'tm.user_id')
    .select(['tm.team_id', 'tm.user_id', 'tm.role', 'u.login', 'u.username', 'u.email', 'tm.created_at'])
    .where('tm.team_id', '=', teamId);
}

/** Oldest first. */
export async function listTeamMembers(db: Kysely<DB>, teamId: string): Promise<TeamMemberRow[]> {
  return teamMembersQuery(db, teamId).orderBy('tm.created_at').orderBy('tm.user_id').execute();
}

export async function findTeamMember(db: Kysely<DB>, teamId: string, userId: string): Promise<TeamMemberRow | undefined> {
  return teamMembersQuery(db, teamId).where('tm.user_id', '=', userId).executeTakeFirst();
}

export async function countTeamMembers(db: Kysely<DB>, teamId: string): Promise<number> {
  const row = await db.selectFrom('team_members').select(sql<number>`count(*)::int`.as('n')).where('team_id', '=', teamId).executeTakeFirstOrThrow();
  return row.n;
}

export async function addTeamMember(db: Kysely<DB>, t: { accountId: string; teamId: string; userId: string; role: TeamRole }): Promise<void> {
  await db.insertInto('team_members').values({ account_id: t.accountId, team_id: t.teamId, user_id: t.userId, role: t.role }).execute();
}

export async function removeTeamMember(db: Kysely<DB>, teamId: string, userId: string): Promise<void> {
  await db.deleteFrom('team_members').where('team_id', '=', teamId).where('user_id', '=', userId).execute();
}

export function shapeTeam(t: TeamRow) {
  return { id: t.id, account_id: t.account_id, name: t.name, members_count: Number(t.members_count), created_at: t.created_at.toISOString() };
}

export function shapeTeamMember(m: TeamMemberRow) {
  return {
    team_id: m.team_id,
    user_id: m.user_id,
    role: m.role,
    login: m.login,
    username: m.username,
    email: m.email,
    created_at: m.created_at.toISOString(),
  };
}
