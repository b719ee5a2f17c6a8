// Every route group, registered in this one visible list.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app-context.js';
import { healthRoutes } from '../modules/health/routes.js';
import { authRoutes } from '../modules/auth/routes.js';
import { meRoutes } from '../modules/me/routes.js';
import { apiKeyRoutes } from '../modules/api-keys/routes.js';
import { accountRoutes } from '../modules/accounts/routes.js';
import { teamRoutes } from '../modules/accounts/team-routes.js';
import { invitationRoutes } from '../modules/accounts/invitation-routes.js';
import { threadRoutes } from '../modules/threads/routes.js';
import { messageRoutes } from '../modules/messages/routes.js';
import { projectRoutes } from '../modules/projects/routes.js';
import { runRoutes } from '../modules/runs/routes.js';
import { llmProviderRoutes } from '../modules/llm-providers/routes.js';
import { asrRoutes } from '../modules/asr/routes.js';
import { toolProviderRoutes } from '../modules/tool-providers/routes.js';
import { personaRoutes } from '../modules/personas/routes.js';
import { mcpConfigRoutes } from '../modules/mcp-configs/routes.js';
import { adminReferralRoutes } from '../modules/referrals/admin-routes.js';
import { redemptionCodeRoutes } from '../modules/redemption-codes/routes.js';
import { planRoutes } from '../modules/plans/routes.js';
import { entitlementRoutes } from '../modules/entitlements/routes.js';
import { creditAdminRoutes } from '../modules/credits/routes.js';
import { usageAdminRoutes } from '../modules/usage/admin-routes.js';
import { webhookRoutes } from '../modules/webhooks/routes.js';
import { notificationRoutes } from '../modules/notifications/routes.js';
import { broadcastRoutes } from '../modules/notifications/broadcast-routes.js';
import { auditLogRoutes } from '../modules/audit/routes.js';
import { ipRuleRoutes } from '../modules/ip-rules/routes.js';
import { featureFlagRoutes } from '../modules/feature-flags/routes.js';
import { adminOverviewRoutes } from '../modules/admin/overview.js';
import { adminUserRoutes } from '../modules/admin/users.js';
import { adminEmailRoutes } from '../modules/admin/email.js';
import { adminGatewayRoutes } from '../modules/admin/gateway.js';
import { platformSettingRoutes } from '../modules/settings/routes.js';

export const routeModules: Array<(app: FastifyInstance, ctx: AppContext) => void> = [
  healthRoutes,
  authRoutes,
  meRoutes,
  apiKeyRoutes,
  accountRoutes,
  teamRoutes,
  invitationRoutes,
  threadRoutes,
  messageRoutes,
  projectRoutes,
  runRoutes,
  llmProviderRoutes,
  asrRoutes,
  toolProviderRoutes,
  personaRoutes,
  mcpConfigRoutes,
  adminReferralRoutes,
  redemptionCodeRoutes,
  planRoutes,
  entitlementRoutes,
  creditAdminRoutes,
  usageAdminRoutes,
  webhookRoutes,
  notificationRoutes,
  broadcastRoutes,
  auditLogRoutes,
  ipRuleRoutes,
  featureFlagRoutes,
  adminOverviewRoutes,
  adminUserRoutes,
  adminEmailRoutes,
  adminGatewayRoutes,
  platformSettingRoutes,
];
