// Request and response schemas of the accounts module (api.md §2.2, §11).
import { DateTime, Nullable, T, Uuid } from '../../http/schemas.js';

export const AccountRoleSchema = T.Union([T.Literal('owner'), T.Literal('admin'), T.Literal('member')]);
export const InviteRoleSchema = T.Union([T.Literal('admin'), T.Literal('member')]);

export const Slug = () => T.String({ minLength: 3, maxLength: 64, pattern: '^[a-z0-9][a-z0-9-]*[a-z0-9]$' });
export const Name = () => T.String({ minLength: 1, maxLength: 100 });
export const Email = () => T.String({ minLength: 3, maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$' });

const accountFields = {
  id: Uuid(),
  slug: T.String(),
  name: T.String(),
  type: T.Union([T.Literal('personal'), T.Literal('workspace')]),
  created_at: DateTime(),
  updated_at: DateTime(),
};

export const AccountSchema = T.Object(accountFields);
export const AccountWithRoleSchema = T.Object({ ...accountFields, role: AccountRoleSchema });

export const AccountMemberSchema = T.Object({
  account_id: Uuid(),
  user_id: Uuid(),
  login: T.String(),
  username: T.String(),
  email: Nullable(T.String()),
  role: AccountRoleSchema,
  created_at: DateTime(),
});

export const TeamSchema = T.Object({
  id: Uuid(),
  account_id: Uuid(),
  name: T.String(),
  members_count: T.Integer(),
  created_at: DateTime(),
});

export const TeamMemberSchema = T.Object({
  team_id: Uuid(),
  user_id: Uuid(),
  role: InviteRoleSchema,
  login: T.String(),
  username: T.String(),
  email: Nullable(T.String()),
  created_at: DateTime(),
});

export const InvitationStatusSchema = T.Union([T.Literal('pending'), T.Literal('accepted'), T.Literal('expired')]);

const invitationFields = {
  id: Uuid(),
  account_id: Uuid(),
  invited_by_user_id: Uuid(),
  email: T.String(),
  role: InviteRoleSchema,
  status: InvitationStatusSchema,
  expires_at: DateTime(),
  accepted_at: Nullable(DateTime()),
  created_at: DateTime(),
};

export const InvitationSchema = T.Object(invitationFields);
export const CreatedInvitationSchema = T.Object({ ...invitationFields, token: T.String() });

export const InvitationPreviewSchema = T.Object({
  account_id: Uuid(),
  account_name: T.String(),
  email: T.String(),
  role: InviteRoleSchema,
  status: InvitationStatusSchema,
  expires_at: DateTime(),
});
