// Shapes of invite codes, referrals and referral trees (api.md §2.7) and how rows become them.
import { DateTime, Nullable, T, Uuid, iso } from '../../http/schemas.js';
import type { AdminInviteCodeRow, ReferralNodeRow, ReferralRow } from './admin-store.js';
import { shapeInviteCode } from './store.js';

export const InviteCodeSchema = T.Object({
  id: Uuid(),
  user_id: Uuid(),
  code: T.String(),
  max_uses: T.Integer(),
  use_count: T.Integer(),
  is_active: T.Boolean(),
  created_at: DateTime(),
});

/** What admin views add to an invite code: its owner. */
export const AdminInviteCodeSchema = T.Object({ ...InviteCodeSchema.properties, user_login: T.String(), user_email: Nullable(T.String()) });

export const ReferralSchema = T.Object({
  id: Uuid(),
  inviter_user_id: Uuid(),
  inviter_login: T.String(),
  invitee_user_id: Uuid(),
  invitee_login: T.String(),
  invite_code_id: Uuid(),
  code: T.String(),
  created_at: DateTime(),
});

export const ReferralNodeSchema = T.Object({
  user_id: Uuid(),
  login: T.String(),
  inviter_id: Nullable(Uuid()),
  depth: T.Integer(),
  created_at: DateTime(),
});

export function shapeAdminInviteCode(c: AdminInviteCodeRow) {
  return { ...shapeInviteCode(c), user_login: c.user_login, user_email: c.user_email };
}

export function shapeReferral(r: ReferralRow) {
  return { ...r, created_at: iso(r.created_at) };
}

/** A node's `created_at` is when its user registered. */
export function shapeReferralNode(n: ReferralNodeRow) {
  return { user_id: n.user_id, login: n.login, inviter_id: n.inviter_id, depth: Number(n.depth), created_at: iso(n.created_at) };
}
