// Kysely table types for migrations/*.sql. Keep in step with the SQL files.
import type { ColumnType, Generated } from 'kysely';

/** A timestamp with a database default (optional on insert). */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** A timestamp the insert must supply. */
type RequiredTimestamp = ColumnType<Date, Date | string, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
type Json<T = unknown> = ColumnType<T, string | T, string | T>;

export interface UsersTable {
  id: string;
  login: string;
  email: string | null;
  email_verified: Generated<boolean>;
  password_hash: string | null;
  username: string;
  locale: Generated<string>;
  timezone: string | null;
  avatar_url: string | null;
  status: Generated<'active' | 'suspended' | 'deleted'>;
  is_platform_admin: Generated<boolean>;
  last_login_at: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface AccountsTable {
  id: string;
  slug: string;
  name: string;
  type: 'personal' | 'workspace';
  owner_user_id: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export type AccountRole = 'owner' | 'admin' | 'member';

export interface AccountMembershipsTable {
  account_id: string;
  user_id: string;
  role: AccountRole;
  created_at: Timestamp;
}

export interface TeamsTable {
  id: string;
  account_id: string;
  name: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TeamMembersTable {
  team_id: string;
  user_id: string;
  account_id: string;
  role: 'admin' | 'member';
  created_at: Timestamp;
}

export interface InvitationsTable {
  id: string;
  account_id: string;
  invited_by_user_id: string;
  email: string;
  role: 'admin' | 'member';
  token_hash: string;
  expires_at: RequiredTimestamp;
  accepted_at: NullableTimestamp;
  accepted_by_user_id: string | null;
  created_at: Timestamp;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  created_at: Timestamp;
  expires_at: RequiredTimestamp;
  revoked_at: NullableTimestamp;
  ip_address: string | null;
  user_agent: string | null;
}

export interface RefreshTokensTable {
  id: string;
  session_id: string;
  token_hash: string;
  expires_at: RequiredTimestamp;
  rotated_at: NullableTimestamp;
  created_at: Timestamp;
}

export interface EmailVerificationTokensTable {
  id: string;
  user_id: string;
  email: string;
  token_hash: string;
  expires_at: RequiredTimestamp;
  used_at: NullableTimestamp;
  created_at: Timestamp;
}

export interface EmailOtpsTable {
  id: string;
  user_id: string;
  code_hash: string;
  expires_at: RequiredTimestamp;
  used_at: NullableTimestamp;
  failed_attempts: Generated<number>;
  created_at: Timestamp;
}

export interface ApiKeysTable {
  id: string;
  org_id: string;
  user_id: string;
  name: string;
  key_prefix: string;
  key_hash: string;
  scopes: Json<string[]>;
  revoked_at: NullableTimestamp;
  last_used_at: NullableTimestamp;
  created_at: Timestamp;
}

export interface ProjectsTable {
  id: string;
  org_id: string;
  team_id: string | null;
  name: string;
  description: string | null;
  visibility: 'private' | 'shared';
  created_by_user_id: string;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: NullableTimestamp;
}

export interface ThreadsTable {
  id: string;
  org_id: string;
  created_by_user_id: string;
  title: string | null;
  project_id: string | null;
  is_private: Generated<boolean>;
  active_run_id: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: NullableTimestamp;
}

export interface ThreadStarsTable {
  user_id: string;
  thread_id: string;
  created_at: Timestamp;
}

export interface MessagesTable {
  id: string;
  org_id: string;
  thread_id: string;
  created_by_user_id: string | null;
  role: 'user' | 'assistant';
  content: string;
  run_id: string | null;
  created_at: Timestamp;
}

export interface AuditLogsTable {
  id: string;
  org_id: string | null;
  actor_user_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  trace_id: string;
  metadata: Json<Record<string, unknown>>;
  ip_address: string | null;
  user_agent: string | null;
  before_state: Json<Record<string, unknown> | null> | null;
  after_state: Json<Record<string, unknown> | null> | null;
  created_at: Timestamp;
}

export interface PlatformSettingsTable {
  key: string;
  value: Json;
  updated_by_user_id: string | null;
  updated_at: Timestamp;
}

export interface IdempotencyKeysTable {
  scope_hash: string;
  request_hash: string;
  state: 'in_progress' | 'done';
  response_status: number | null;
  response_body: Json | null;
  created_at: Timestamp;
  expires_at: RequiredTimestamp;
}

export interface CreditBalancesTable {
  org_id: string;
  balance: Generated<number>;
  updated_at: Timestamp;
}

export interface CreditTransactionsTable {
  id: string;
  org_id: string;
  amount: number;
  type: 'credit' | 'debit';
  reference_type: string;
  reference_id: string | null;
  note: string | null;
  thread_title: string | null;
  balance_after: number;
  created_at: Timestamp;
}

export interface UsageRecordsTable {
  id: string;
  org_id: string;
  user_id: string | null;
  run_id: string | null;
  thread_id: string | null;
  provider_name: string | null;
  provider_kind: string | null;
  model: string;
  input_tokens: Generated<number>;
  output_tokens: Generated<number>;
  cache_read_tokens: Generated<number>;
  cache_write_tokens: Generated<number>;
  cost_usd: Generated<number>;
  multiplier: Generated<number>;
  created_at: Timestamp;
}

export interface InviteCodesTable {
  id: string;
  user_id: string;
  code: string;
  max_uses: Generated<number>;
  use_count: Generated<number>;
  is_active: Generated<boolean>;
  created_at: Timestamp;
}

export interface ReferralsTable {
  id: string;
  inviter_user_id: string;
  invitee_user_id: string;
  invite_code_id: string;
  created_at: Timestamp;
}

export interface RedemptionCodesTable {
  id: string;
  code: string;
  type: Generated<string>;
  value: string;
  max_uses: Generated<number>;
  use_count: Generated<number>;
  is_active: Generated<boolean>;
  expires_at: NullableTimestamp;
  batch_id: string | null;
  created_by_user_id: string | null;
  created_at: Timestamp;
}

export interface RedemptionsTable {
  id: string;
  redemption_code_id: string;
  user_id: string;
  org_id: string;
  created_at: Timestamp;
}

export interface FeatureFlagsTable {
  id: string;
  key: string;
  description: string | null;
  default_value: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface FeatureFlagOverridesTable {
  flag_key: string;
  org_id: string;
  enabled: boolean;
  created_at: Timestamp;
}

// Admin: run activity of closed days (modules/runs/activity.ts).
export interface RunActivityDailyTable {
  day: ColumnType<string, string, string>;
  org_id: string;
  user_id: string;
  run_count: ColumnType<string | number, number | string, number | string>;
}

export interface RunActivityRollupStateTable {
  id: number;
  rolled_until: ColumnType<string | null, string | null, string | null>;
}

export interface DB {
  users: UsersTable;
  accounts: AccountsTable;
  account_memberships: AccountMembershipsTable;
  teams: TeamsTable;
  team_members: TeamMembersTable;
  invitations: InvitationsTable;
  sessions: SessionsTable;
  refresh_tokens: RefreshTokensTable;
  email_verification_tokens: EmailVerificationTokensTable;
  email_otps: EmailOtpsTable;
  api_keys: ApiKeysTable;
  projects: ProjectsTable;
  threads: ThreadsTable;
  thread_stars: ThreadStarsTable;
  messages: MessagesTable;
  audit_logs: AuditLogsTable;
  platform_settings: PlatformSettingsTable;
  idempotency_keys: IdempotencyKeysTable;
  credit_balances: CreditBalancesTable;
  credit_transactions: CreditTransactionsTable;
  usage_records: UsageRecordsTable;
  invite_codes: InviteCodesTable;
  referrals: ReferralsTable;
  redemption_codes: RedemptionCodesTable;
  redemptions: RedemptionsTable;
  feature_flags: FeatureFlagsTable;
  feature_flag_overrides: FeatureFlagOverridesTable;
}

export interface NotificationsTable {
  id: string;
  user_id: string;
  org_id: string | null;
  type: string;
  title: string;
  body: Generated<string>;
  payload: Json<Record<string, unknown>>;
  read_at: NullableTimestamp;
  created_at: Timestamp;
}

export interface DB {
  notifications: NotificationsTable;
}

/** What a waiting run awaits (runs.awaiting_input). */
export type AwaitedInput = { kind: 'input' } | { kind: 'tool_approval'; tool_call_id: string; arguments_sha256: string };

export type RunStatus = 'running' | 'waiting_for_input' | 'completed' | 'failed' | 'cancelled';

export interface RunsTable {
  id: string;
  org_id: string;
  thread_id: string;
  created_by_user_id: string;
  status: RunStatus;
  persona_id: string | null;
  route_id: string | null;
  requested_model: string | null;
  model: string | null;
  provider_kind: string | null;
  credential_name: string | null;
  persona_model: string | null;
  trace_id: string;
  error_class: string | null;
  error_message: string | null;
  total_input_tokens: Generated<number>;
  total_output_tokens: Generated<number>;
  total_cache_read_tokens: Generated<number>;
  total_cache_write_tokens: Generated<number>;
  total_cost_usd: Generated<number>;
  credits_used: Generated<number>;
  last_seq: Generated<number>;
  cancel_requested: Generated<boolean>;
  cancel_reason: string | null;
  cancel_requested_by: string | null;
  running_ms: Generated<number>;
  running_since: NullableTimestamp;
  waiting_since: NullableTimestamp;
  awaiting_input: Json<AwaitedInput | null> | null;
  output_emitted: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
  completed_at: NullableTimestamp;
  failed_at: NullableTimestamp;
  cancelled_at: NullableTimestamp;
}

export interface RunEventsTable {
  run_id: string;
  seq: number;
  id: string;
  type: string;
  data: Json<Record<string, unknown>>;
  created_at: Timestamp;
}

export interface JobsTable {
  id: string;
  type: string;
  payload: Json<Record<string, unknown>>;
  state: Generated<'queued' | 'leased' | 'done' | 'failed'>;
  run_at: Timestamp;
  attempts: Generated<number>;
  max_attempts: Generated<number>;
  lease_expires_at: NullableTimestamp;
  leased_by: string | null;
  last_error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface DB {
  runs: RunsTable;
  run_events: RunEventsTable;
  jobs: JobsTable;
}

export interface LlmProvidersTable {
  id: string;
  org_id: string | null;
  scope: 'org' | 'platform';
  provider: 'openai' | 'anthropic' | 'stub';
  name: string;
  api_key_enc: string | null;
  key_prefix: string | null;
  base_url: string | null;
  openai_api_mode: string | null;
  advanced_json: Json<Record<string, unknown> | null> | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface LlmModelsTable {
  id: string;
  provider_id: string;
  model: string;
  priority: Generated<number>;
  is_default: Generated<boolean>;
  tags: Json<string[]>;
  when_json: Json<Record<string, unknown>>;
  advanced_json: Json<Record<string, unknown>>;
  multiplier: Generated<number>;
  cost_per_1k_input: number | null;
  cost_per_1k_output: number | null;
  cost_per_1k_cache_write: number | null;
  cost_per_1k_cache_read: number | null;
  created_at: Timestamp;
}

export interface DB {
  llm_providers: LlmProvidersTable;
  llm_models: LlmModelsTable;
}

export interface PersonasTable {
  id: string;
  org_id: string | null;
  scope: 'org' | 'platform';
  persona_key: string;
  version: string;
  display_name: string;
  description: string | null;
  prompt_md: string;
  tool_allowlist: Json<string[] | null> | null;
  tool_denylist: Json<string[]>;
  tool_approval: Json<string[]>;
  budgets: Json<Record<string, unknown>>;
  model: string | null;
  preferred_credential: string | null;
  reasoning_mode: string | null;
  stream_thinking: boolean;
  prompt_cache_control: string | null;
  executor_type: string;
  roles: Json<Record<string, unknown>>;
  is_active: boolean;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface DB {
  personas: PersonasTable;
}

export interface ToolProviderConfigsTable {
  id: string;
  org_id: string | null;
  scope: 'org' | 'platform';
  group_name: string;
  provider_name: string;
  is_active: Generated<boolean>;
  api_key_enc: string | null;
  key_prefix: string | null;
  base_url: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface DB {
  tool_provider_configs: ToolProviderConfigsTable;
}

export interface AsrCredentialsTable {
  id: string;
  org_id: string | null;
  scope: 'org' | 'platform';
  provider: 'groq' | 'openai';
  name: string;
  api_key_enc: string;
  key_prefix: string;
  base_url: string | null;
  model: string;
  is_default: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface DB {
  asr_credentials: AsrCredentialsTable;
}

export interface McpConfigsTable {
  id: string;
  org_id: string;
  name: string;
  transport: 'stdio' | 'http_sse' | 'streamable_http';
  url: string | null;
  bearer_token_enc: string | null;
  command: string | null;
  args: Json<string[]>;
  cwd: string | null;
  /** The env map as encrypted JSON; its names are in env_keys. */
  env_enc: string | null;
  env_keys: Json<string[]>;
  inherit_parent_env: boolean;
  call_timeout_ms: number;
  is_active: boolean;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface DB {
  mcp_configs: McpConfigsTable;
}

export type EntitlementValueType = 'integer' | 'boolean' | 'string';

export interface PlansTable {
  id: string;
  name: string;
  display_name: string;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: NullableTimestamp;
}

export interface PlanEntitlementsTable {
  id: string;
  plan_id: string;
  key: string;
  value: string;
  value_type: EntitlementValueType;
}

export interface SubscriptionsTable {
  id: string;
  org_id: string;
  plan_id: string;
  status: 'active' | 'cancelled';
  current_period_start: RequiredTimestamp;
  current_period_end: RequiredTimestamp;
  cancelled_at: NullableTimestamp;
  created_at: Timestamp;
}

export interface EntitlementOverridesTable {
  id: string;
  org_id: string;
  key: string;
  value: string;
  value_type: EntitlementValueType;
  reason: string | null;
  expires_at: NullableTimestamp;
  created_by_user_id: string | null;
  created_at: Timestamp;
}

export interface UsageDailyTable {
  day: ColumnType<string, string, string>;
  org_id: string;
  model: string;
  input_tokens: ColumnType<string | number, number | string, number | string>;
  output_tokens: ColumnType<string | number, number | string, number | string>;
  cost_usd: ColumnType<string, string | number, string | number>;
  record_count: ColumnType<string | number, number | string, number | string>;
}

export interface UsageRollupStateTable {
  id: number;
  rolled_until: ColumnType<string | null, string | null, string | null>;
}

export interface DB {
  plans: PlansTable;
  plan_entitlements: PlanEntitlementsTable;
  subscriptions: SubscriptionsTable;
  entitlement_overrides: EntitlementOverridesTable;
  usage_daily: UsageDailyTable;
  usage_rollup_state: UsageRollupStateTable;
  run_activity_daily: RunActivityDailyTable;
  run_activity_rollup_state: RunActivityRollupStateTable;
}

// Webhooks (migrations/0015_webhooks.sql)
export interface WebhookEndpointsTable {
  id: string;
  org_id: string;
  url: string;
  events: Json<string[]>;
  enabled: Generated<boolean>;
  description: string | null;
  secret_enc: string;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: NullableTimestamp;
}

export interface WebhookDeliveriesTable {
  id: string;
  org_id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  status: Generated<'pending' | 'succeeded' | 'failed'>;
  attempts: Generated<number>;
  last_status_code: number | null;
  last_error: string | null;
  response_body: string | null;
  next_attempt_at: NullableTimestamp;
  delivered_at: NullableTimestamp;
  payload: Json<Record<string, unknown>>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface JobsTable {
  concurrency_key: string | null;
}

export interface DB {
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
}

export type BroadcastStatus = 'pending' | 'sending' | 'sent' | 'failed';

export interface BroadcastsTable {
  id: string;
  type: string;
  title: string;
  body: string;
  target_type: 'all' | 'org';
  target_id: string | null;
  payload: Json<Record<string, unknown>>;
  status: Generated<BroadcastStatus>;
  sent_count: Generated<number>;
  fanout_after: string | null;
  created_by: string;
  created_at: Timestamp;
  completed_at: NullableTimestamp;
  deleted_at: NullableTimestamp;
}

/** The broadcast a notification came from (migration 0016). */
export interface NotificationsTable {
  broadcast_id: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface DB {
  broadcasts: BroadcastsTable;
}

export interface IpRulesTable {
  id: string;
  org_id: string;
  type: 'allowlist' | 'blocklist';
  cidr: string;
  note: string | null;
  created_at: Timestamp;
}

export interface IpRuleDenialsTable {
  org_id: string;
  ip: string;
  last_logged_at: RequiredTimestamp;
}

export interface DB {
  ip_rules: IpRulesTable;
  ip_rule_denials: IpRuleDenialsTable;
}
