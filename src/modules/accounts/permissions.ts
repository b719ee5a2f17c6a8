// Account roles → permission points (api.md §1.3).
import type { AccountRole } from '../../db/schema.js';

export const PERMISSION_POINTS = [
  'data.threads.read',
  'data.threads.manage',
  'data.runs.read',
  'data.runs.manage',
  'data.runs.read_all',
  'data.projects.read',
  'data.projects.manage',
  'data.personas.read',
  'data.personas.manage',
  'data.secrets',
  'data.api_keys.manage',
  'data.webhooks.manage',
  'account.members.read',
  'account.members.manage',
  'account.manage',
  'account.usage.read',
  'account.audit.read',
  'account.ip_rules.manage',
] as const;

export type PermissionPoint = (typeof PERMISSION_POINTS)[number];

const MEMBER_POINTS: PermissionPoint[] = [
  'data.threads.read',
  'data.threads.manage',
  'data.runs.read',
  'data.runs.manage',
  'data.projects.read',
  'data.projects.manage',
  'data.personas.read',
  'data.api_keys.manage',
  'account.members.read',
];

const ROLE_POINTS: Record<AccountRole, ReadonlySet<string>> = {
  owner: new Set(PERMISSION_POINTS),
  admin: new Set(PERMISSION_POINTS),
  member: new Set(MEMBER_POINTS),
};

export function isPermissionPoint(value: string): value is PermissionPoint {
  return (PERMISSION_POINTS as readonly string[]).includes(value);
}

export function pointsForRole(role: AccountRole): ReadonlySet<string> {
  return ROLE_POINTS[role];
}

/** The listed points of a role, in table order; `platform.admin` appended for admins. */
export function permissionList(points: ReadonlySet<string>, isPlatformAdmin: boolean): string[] {
  const list = PERMISSION_POINTS.filter((p) => points.has(p)) as string[];
  if (isPlatformAdmin) list.push('platform.admin');
  return list;
}

/** An API key acts with its creator's role points ∩ its scopes (all of them when empty). */
export function keyPoints(role: AccountRole, scopes: string[]): ReadonlySet<string> {
  const base = ROLE_POINTS[role];
  if (scopes.length === 0) return base;
  return new Set(scopes.filter((s) => base.has(s)));
}
