// Teams of the current account and their members (api.md §11.9–§11.15).
import { entitlementInt } from '../entitlements/resolve.js';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../app-context.js';
import type { CurrentAccount } from '../../http/request.js';
import { conflict, forbidden, notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { T, Uuid } from '../../http/schemas.js';
import type { DB } from '../../db/schema.js';
import type { Kysely } from 'kysely';
import { auditedWrite } from '../audit/audited-write.js';
import { callerId, origin } from './acting.js';
import { actingMeta } from '../access/acting.js';
import { findMember } from './members-store.js';
import { InviteRoleSchema, Name, TeamMemberSchema, TeamSchema } from './schemas.js';
import {
  addTeamMember,
  countTeamMembers,
  deleteTeam,
  findTeamMember,
  getTeam,
  insertTeam,
  listTeamMembers,
  listTeams,
  lockTeam,
  removeTeamMember,
  renameTeam,
  shapeTeam,
  shapeTeamMember,
  teamNameTaken,
} from './teams-store.js';

const TeamParams = T.Object({ team_id: T.String() });
const TeamMemberParams = T.Object({ team_id: T.String(), user_id: T.String() });
const nameTaken = () => conflict('teams.name_taken', 'a team with this name already exists');
const teamNotFound = () => notFound('teams.not_found', 'team');
const memberExists = () => conflict('teams.member_exists', 'the user is already in this team');

/**
 * Team member changes: the account's `account.members.manage` point, or team role `admin`
 * in that very team (decided, §11.14). Checked after the team and member lookups because the
 * second way depends on the team.
 */
async function requireTeamManager(db: Kysely<DB>, account: CurrentAccount, teamId: string, userId: string): Promise<void> {
  if (account.points.has('account.members.manage')) return;
  const self = await findTeamMember(db, teamId, userId);
  if (self?.role !== 'admin') throw forbidden('needs account.members.manage or team admin');
}

export function teamRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['teams'];

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/teams',
    caller: 'user',
    perm: 'account.members.manage',
    status: 201,
    summary: 'Create a team in the current account',
    tags,
    body: T.Object({ name: Name() }),
    trim: ['name'],
    response: TeamSchema,
    handler: async (req) => {
      const accountId = req.account!.id;
      const name = req.body.name;
      const team = await auditedWrite(
        ctx.db,
        origin(req),
        async (trx) => {
          if (await teamNameTaken(trx, accountId, name)) throw nameTaken();
          const t = await insertTeam(trx, accountId, name);
          return {
            result: t,
            audit: {
              orgId: accountId,
              actorUserId: callerId(req),
              action: 'team.create',
              targetType: 'team',
              targetId: t.id,
              metadata: { name, ...actingMeta(req) },
              after: shapeTeam(t),
            },
          };
        },
        { unique: nameTaken },
      );
      return shapeTeam(team);
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/teams',
    caller: 'user',
    perm: 'account.members.read',
    summary: 'Teams of the current account, by name',
    tags,
    response: T.Array(TeamSchema),
    handler: async (req) => (await listTeams(ctx.db, req.account!.id)).map(shapeTeam),
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/teams/:team_id',
    caller: 'user',
    perm: 'account.members.read',
    ids: { team_id: 'teams.not_found' },
    params: TeamParams,
    summary: 'One team',
    tags,
    response: TeamSchema,
    handler: async (req) => {
      const team = await getTeam(ctx.db, req.account!.id, req.params.team_id);
      if (!team) throw teamNotFound();
      return shapeTeam(team);
    },
  });

  registerRoute(app, ctx, {
    method: 'PATCH',
    url: '/v1/teams/:team_id',
    caller: 'user',
    perm: 'account.members.manage',
    ids: { team_id: 'teams.not_found' },
    params: TeamParams,
    summary: 'Rename a team',
    tags,
    body: T.Object({ name: Name() }),
    trim: ['name'],
    response: TeamSchema,
    handler: async (req) => {
      const accountId = req.account!.id;
      const teamId = req.params.team_id;
      const name = req.body.name;
      const team = await auditedWrite(
        ctx.db,
        origin(req),
        async (trx) => {
          const before = await getTeam(trx, accountId, teamId);
          if (!before) throw teamNotFound();
          if (await teamNameTaken(trx, accountId, name, teamId)) throw nameTaken();
          await renameTeam(trx, accountId, teamId, name);
          const after = { ...before, name };
          return {
            result: after,
            audit: {
              orgId: accountId,
              actorUserId: callerId(req),
              action: 'team.update',
              targetType: 'team',
              targetId: teamId,
              metadata: actingMeta(req),
              before: shapeTeam(before),
              after: shapeTeam(after),
            },
          };
        },
        { unique: nameTaken },
      );
      return shapeTeam(team);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/teams/:team_id',
    caller: 'user',
    perm: 'account.members.manage',
    ids: { team_id: 'teams.not_found' },
    params: TeamParams,
    status: 204,
    summary: 'Delete a team (its projects keep existing without a team)',
    tags,
    handler: async (req) => {
      const accountId = req.account!.id;
      const teamId = req.params.team_id;
      await auditedWrite(ctx.db, origin(req), async (trx) => {
        const before = await getTeam(trx, accountId, teamId);
        if (!before) throw teamNotFound();
        await deleteTeam(trx, accountId, teamId);
        return {
          result: null,
          audit: {
            orgId: accountId,
            actorUserId: callerId(req),
            action: 'team.delete',
            targetType: 'team',
            targetId: teamId,
            metadata: actingMeta(req),
            before: shapeTeam(before),
          },
        };
      });
      return null;
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/teams/:team_id/members',
    caller: 'user',
    perm: 'account.members.read',
    ids: { team_id: 'teams.not_found' },
    params: TeamParams,
    summary: 'Members of a team, oldest first',
    tags,
    response: T.Array(TeamMemberSchema),
    handler: async (req) => {
      const team = await getTeam(ctx.db, req.account!.id, req.params.team_id);
      if (!team) throw teamNotFound();
      return (await listTeamMembers(ctx.db, team.id)).map(shapeTeamMember);
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/teams/:team_id/members',
    caller: 'user',
    perm: 'account.members.read',
    ids: { team_id: 'teams.not_found' },
    params: TeamParams,
    status: 201,
    summary: 'Add an account member to a team',
    tags,
    body: T.Object({ user_id: Uuid(), role: InviteRoleSchema }),
    response: TeamMemberSchema,
    handler: async (req) => {
      const account = req.account!;
      const teamId = req.params.team_id;
      const userId = req.body.user_id.toLowerCase();
      const role = req.body.role;
      const limit = await entitlementInt(ctx, account.id, 'limit.team_members');
      const added = await auditedWrite(
        ctx.db,
        origin(req),
        async (trx) => {
          if (!(await lockTeam(trx, account.id, teamId))) throw teamNotFound();
          if (!(await findMember(trx, account.id, userId))) throw notFound('account_members.not_found', 'account member');
          await requireTeamManager(trx, account, teamId, callerId(req));
          if (await findTeamMember(trx, teamId, userId)) throw memberExists();
          if (limit > 0 && (await countTeamMembers(trx, teamId)) >= limit) {
            throw conflict('limit.team_members', `a team may have at most ${limit} members`, { limit });
          }
          await addTeamMember(trx, { accountId: account.id, teamId, userId, role });
          return {
            result: (await findTeamMember(trx, teamId, userId))!,
            audit: {
              orgId: account.id,
              actorUserId: callerId(req),
              action: 'team.member_add',
              targetType: 'team',
              targetId: teamId,
              metadata: { user_id: userId, role, ...actingMeta(req) },
            },
          };
        },
        { unique: memberExists },
      );
      return shapeTeamMember(added);
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/teams/:team_id/members/:user_id',
    caller: 'user',
    perm: 'account.members.read',
    ids: { team_id: 'teams.not_found', user_id: 'team_members.not_found' },
    params: TeamMemberParams,
    status: 204,
    summary: 'Remove a member from a team',
    tags,
    handler: async (req) => {
      const account = req.account!;
      const { team_id: teamId, user_id: userId } = req.params;
      await auditedWrite(ctx.db, origin(req), async (trx) => {
        if (!(await lockTeam(trx, account.id, teamId))) throw teamNotFound();
        const before = await findTeamMember(trx, teamId, userId);
        if (!before) throw notFound('team_members.not_found', 'team member');
        await requireTeamManager(trx, account, teamId, callerId(req));
        await removeTeamMember(trx, teamId, userId);
        return {
          result: null,
          audit: {
            orgId: account.id,
            actorUserId: callerId(req),
            action: 'team.member_remove',
            targetType: 'team',
            targetId: teamId,
            metadata: { user_id: userId, ...actingMeta(req) },
            before: shapeTeamMember(before),
          },
        };
      });
      return null;
    },
  });
}
