// Invitations to an account (api.md §11.16–§11.20): created and listed under the account,
// previewed, accepted and revoked under /v1/account-invitations.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError, conflict, forbidden, notFound } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { T, Uuid } from '../../http/schemas.js';
import { hashToken, randomToken } from '../../lib/crypto.js';
import { auditedWrite } from '../audit/audited-write.js';
import { createNotification } from '../notifications/store.js';
import { findUserByEmail } from '../users/store.js';
import { callerId, origin } from './acting.js';
import { actingMeta } from '../access/acting.js';
import {
  INVITATION_TTL_MS,
  deleteInvitation,
  findInvitationById,
  findInvitationByTokenHash,
  insertInvitation,
  invitationStatus,
  listInvitations,
  markInvitationAccepted,
  pendingInvitationExists,
  shapeInvitation,
} from './invitations-store.js';
import { addMember, emailIsMember } from './members-store.js';
import { pointsForRole } from './permissions.js';
import { CreatedInvitationSchema, Email, InvitationPreviewSchema, InvitationSchema, InvitationStatusSchema, InviteRoleSchema } from './schemas.js';
import { findAccount, membershipRole } from './store.js';
import { enqueueJob } from '../../engine/jobs.js';
import { emailJob } from '../../mail/email-job.js';

const invitationNotFound = () => notFound('invitations.not_found', 'invitation');

export function invitationRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['invitations'];

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/accounts/:account_id/invitations',
    caller: 'user',
    accountFrom: 'path',
    perm: 'account.members.manage',
    status: 201,
    summary: 'Invite someone to the account by email',
    tags,
    body: T.Object({ email: Email(), role: InviteRoleSchema }),
    trim: ['email'],
    response: CreatedInvitationSchema,
    handler: async (req) => {
      const account = req.account!;
      const { email, role } = req.body;
      if (account.type === 'personal') throw new AppError('accounts.personal_account', 'personal accounts cannot have invitations');
      const token = randomToken();
      // Read before the transaction: a settings read inside one could wait on it (embedded engine).
      const mailConfigured = await ctx.mailer.isConfigured();
      const { invitation, inviteeId } = await auditedWrite(ctx.db, origin(req), async (trx) => {
        if (await emailIsMember(trx, account.id, email)) throw conflict('accounts.already_member', 'a user with this email is already a member');
        if (await pendingInvitationExists(trx, account.id, email)) throw conflict('invitations.exists', 'a pending invitation for this email exists');
        const inv = await insertInvitation(trx, {
          accountId: account.id,
          invitedBy: callerId(req),
          email,
          role,
          tokenHash: hashToken(token),
          expiresAt: new Date(Date.now() + INVITATION_TTL_MS),
        });
        const invitee = await findUserByEmail(trx, email);
        if (invitee) {
          await createNotification(trx, {
            userId: invitee.id,
            orgId: account.id,
            type: 'account.invitation',
            title: `Invitation to ${account.name}`,
            body: `${req.principal!.user.username} invited you to join ${account.name} as ${role}.`,
            payload: { invitation_id: inv.id, account_id: account.id, account_name: account.name, role, token },
          });
        }
        if (mailConfigured) {
          // The mail goes out through an `email.send` job of this transaction (mail/email-job.ts).
          const link = `${ctx.config.appBaseUrl.replace(/\/$/, '')}/invitations/${encodeURIComponent(token)}`;
          const mail = {
            to: email,
            subject: `You are invited to join ${account.name} on Arkloop`,
            text:
              `${req.principal!.user.username} invited you to join ${account.name} as ${role}.\n\n` +
              `Accept the invitation: ${link}\n\nThe link expires on ${inv.expires_at.toISOString()}.\n`,
          };
          await enqueueJob(trx, emailJob(ctx, mail, inv.expires_at), { notify: ctx.engine.viaNotify });
        }
        return {
          result: { invitation: inv, inviteeId: invitee?.id ?? null },
          audit: {
            orgId: account.id,
            actorUserId: callerId(req),
            action: 'invitation.create',
            targetType: 'invitation',
            targetId: inv.id,
            metadata: { email, role, ...actingMeta(req) },
            after: shapeInvitation(inv),
          },
        };
      });
      if (mailConfigured) ctx.engine.wrote([], 1); // wakes the in-process worker for the mail job
      req.log.debug({ invitation_id: invitation.id, notified_user: inviteeId }, 'invitation created');
      return { ...shapeInvitation(invitation), token };
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/accounts/:account_id/invitations',
    caller: 'user',
    accountFrom: 'path',
    perm: 'account.members.manage',
    summary: 'Invitations of the account, newest first',
    tags,
    query: T.Object({ status: T.Optional(InvitationStatusSchema) }),
    response: T.Array(InvitationSchema),
    handler: async (req) => {
      const now = new Date();
      const rows = await listInvitations(ctx.db, req.account!.id, req.query.status, now);
      return rows.map((r) => shapeInvitation(r, now));
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/account-invitations/:token',
    caller: 'anon',
    summary: 'Preview an invitation by its token',
    tags,
    params: T.Object({ token: T.String() }),
    response: InvitationPreviewSchema,
    handler: async (req) => {
      const inv = await findInvitationByTokenHash(ctx.db, hashToken(req.params.token));
      if (!inv) throw invitationNotFound();
      const account = await findAccount(ctx.db, inv.account_id);
      if (!account) throw invitationNotFound();
      return {
        account_id: account.id,
        account_name: account.name,
        email: inv.email,
        role: inv.role,
        status: invitationStatus(inv),
        expires_at: inv.expires_at.toISOString(),
      };
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/account-invitations/:token/accept',
    caller: 'user',
    summary: 'Accept an invitation (the caller’s email must match)',
    tags,
    params: T.Object({ token: T.String() }),
    response: T.Object({ ok: T.Boolean(), account_id: Uuid() }),
    handler: async (req) => {
      const user = req.principal!.user;
      const accountId = await auditedWrite(ctx.db, origin(req), async (trx) => {
        const inv = await findInvitationByTokenHash(trx, hashToken(req.params.token), true);
        if (!inv) throw invitationNotFound();
        if (!user.email || user.email.toLowerCase() !== inv.email.toLowerCase()) {
          throw new AppError('invitations.email_mismatch', 'this invitation was sent to another email address');
        }
        const status = invitationStatus(inv);
        if (status === 'accepted') throw conflict('invitations.already_accepted', 'the invitation was already accepted');
        if (status === 'expired') throw conflict('invitations.expired', 'the invitation has expired');
        if (await membershipRole(trx, inv.account_id, user.id)) throw conflict('accounts.already_member', 'you are already a member of this account');
        await addMember(trx, inv.account_id, user.id, inv.role);
        const after = await markInvitationAccepted(trx, inv.id, user.id);
        return {
          result: inv.account_id,
          audit: {
            orgId: inv.account_id,
            actorUserId: user.id,
            action: 'invitation.accept',
            targetType: 'invitation',
            targetId: inv.id,
            metadata: { email: inv.email, role: inv.role },
            before: shapeInvitation(inv),
            after: shapeInvitation(after),
          },
        };
      });
      await ctx.credentials.changed(user.id);
      return { ok: true, account_id: accountId };
    },
  });

  registerRoute(app, ctx, {
    method: 'DELETE',
    url: '/v1/account-invitations/:invitation_id',
    caller: 'user',
    ids: { invitation_id: 'invitations.not_found' },
    params: T.Object({ invitation_id: T.String() }),
    status: 204,
    summary: 'Revoke (or delete) an invitation',
    tags,
    handler: async (req) => {
      const user = req.principal!.user;
      await auditedWrite(ctx.db, origin(req), async (trx) => {
        const inv = await findInvitationById(trx, req.params.invitation_id);
        if (!inv) throw invitationNotFound();
        // Acts in the invitation's account, whatever X-Account-Id says; outsiders get 404.
        const role = await membershipRole(trx, inv.account_id, user.id);
        if (!role && !user.isPlatformAdmin) throw invitationNotFound();
        if (!pointsForRole(role ?? 'owner').has('account.members.manage')) throw forbidden('missing permission account.members.manage');
        await deleteInvitation(trx, inv.account_id, inv.id);
        return {
          result: null,
          audit: {
            orgId: inv.account_id,
            actorUserId: user.id,
            action: 'invitation.revoke',
            targetType: 'invitation',
            targetId: inv.id,
            metadata: { email: inv.email, role: inv.role, status: invitationStatus(inv), ...(role ? {} : { acting_as_platform_admin: true }) },
            before: shapeInvitation(inv),
          },
        };
      });
      return null;
    },
  });
}
