// Errors are data: one closed list of codes, one table from code to HTTP status, one
// envelope `{code, error, message, details, trace_id}` (api.md §1.5).
//
// Every code a response may carry is registered here, in its module's group (the contract's
// §1.5 lists them all). `AppError` and the helpers below take only these codes, so a
// misspelled or unregistered code fails to compile. A new module adds its group here: its
// `<resource>.not_found` and its own codes, each with its status.

const STATUS_BY_CODE = {
  // Every endpoint (§1.5). 413 and 422 bodies also answer `validation.error` (status given).
  'validation.error': 400,
  not_found: 404,
  conflict: 409,
  rate_limit: 429,
  internal_error: 500,
  service_unavailable: 503,

  // Auth (§3) and users
  'auth.captcha_required': 400,
  'auth.invite_code_invalid': 400,
  'auth.token_invalid': 400,
  'auth.unauthorized': 401,
  'auth.invalid_credentials': 401,
  'auth.otp_invalid': 401,
  'auth.refresh_token_invalid': 401,
  'auth.forbidden': 403,
  'auth.captcha_failed': 403,
  'auth.email_not_verified': 403,
  'auth.invite_code_required': 403,
  'auth.registration_disabled': 403,
  'auth.user_suspended': 403,
  'auth.email_already_verified': 409,
  'auth.email_taken': 409,
  'auth.login_taken': 409,
  'users.not_found': 404,

  // Me: invite and redemption codes (§4)
  'invite_codes.not_found': 404,
  'redemption_codes.not_found': 404,
  'redemption_codes.already_redeemed': 409,
  'redemption_codes.exhausted': 409,
  'redemption_codes.expired': 409,

  // API keys (§5)
  'api_keys.not_found': 404,
  'api_keys.limit_reached': 409,

  // Threads, messages, projects and their workspaces (§6, §7, §9)
  'threads.not_found': 404,
  'messages.not_found': 404,
  'projects.not_found': 404,
  'workspace_files.invalid_path': 400,
  'workspace_files.not_found': 404,

  // Runs (§8)
  'runs.no_user_message': 400,
  'runs.not_found': 404,
  'runs.approval_mismatch': 409,
  'runs.invalid_state': 409,
  'runs.thread_busy': 409,
  'limit.concurrent_runs': 429,

  // Personas
  'personas.not_found': 404,
  'personas.exists': 409,

  // Accounts, members, invitations, teams (§11)
  'accounts.personal_account': 400,
  'invitations.email_mismatch': 403,
  'accounts.not_found': 404,
  'account_members.not_found': 404,
  'invitations.not_found': 404,
  'teams.not_found': 404,
  'team_members.not_found': 404,
  'accounts.already_member': 409,
  'accounts.last_owner': 409,
  'accounts.slug_taken': 409,
  'invitations.already_accepted': 409,
  'invitations.exists': 409,
  'invitations.expired': 409,
  'limit.team_members': 409,
  'teams.member_exists': 409,
  'teams.name_taken': 409,

  // Idempotent creation (§1.8a)
  'idempotency.key_reused': 409,
  'idempotency.in_progress': 409,

  // LLM providers and models
  'llm_providers.not_found': 404,
  'llm_models.not_found': 404,
  'llm_models.exists': 409,
  'llm_providers.name_taken': 409,
  'provider.auth_failed': 502,
  'provider.unavailable': 502,
  'provider.timeout': 504,

  // MCP configs and tool providers
  'policy.mcp_remote_disabled': 403,
  'policy.mcp_stdio_forbidden': 403,
  'mcp_configs.not_found': 404,
  'tool_providers.not_found': 404,
  'mcp_configs.name_taken': 409,
  'tool_providers.not_configured': 409,
  'mcp.timeout': 502,
  'mcp.disconnected': 502,
  'mcp.protocol_error': 502,
  'mcp.rpc_error': 502,

  // ASR
  'asr_credentials.not_found': 404,
  'asr.not_configured': 409,

  // Billing: credits, plans, subscriptions, entitlements
  'budget.insufficient_credits': 402,
  'budget.runs_quota_exceeded': 402,
  'budget.tokens_quota_exceeded': 402,
  'plans.not_found': 404,
  'subscriptions.not_found': 404,
  'entitlement_overrides.not_found': 404,
  'plans.in_use': 409,
  'plans.name_taken': 409,
  'subscriptions.already_active': 409,

  // Notifications and broadcasts
  'notifications.not_found': 404,
  'broadcasts.not_found': 404,

  // Webhooks
  'webhook_endpoints.not_found': 404,
  'webhooks.limit_reached': 409,

  // IP rules, policies, gateway (§23)
  'ip_rules.would_lock_out': 400,
  'policy.ssrf_blocked': 400,
  'policy.byok_disabled': 403,
  'policy.ip_blocked': 403,
  'policy.ip_not_allowed': 403,
  'gateway.risk_rejected': 403,
  'ip_rules.not_found': 404,
  'policy.route_not_found': 404,
  'ip_rules.exists': 409,
  'ip_rules.limit_reached': 409,
  'gateway.upstream_unavailable': 502,

  // Feature flags
  'feature_flags.not_found': 404,
  'feature_flag_overrides.not_found': 404,
  'feature_flags.key_taken': 409,

  // Settings, email, admin
  'settings.not_found': 404,
  'email.not_configured': 409,
  'email.send_failed': 502,
  'admin.last_platform_admin': 409,
  'admin.self_action': 409,
} as const satisfies Record<string, number>;

/** Every error code a response may carry. */
export type ErrorCode = keyof typeof STATUS_BY_CODE;

/** The registered codes answered with HTTP status `S`. */
export type CodeWithStatus<S extends number> = { [C in ErrorCode]: (typeof STATUS_BY_CODE)[C] extends S ? C : never }[ErrorCode];

/** The 404 codes: `not_found` and every `<resource>.not_found` (plus `policy.route_not_found`). */
export type NotFoundCode = CodeWithStatus<404>;

export interface FieldError {
  field: string;
  reason: string;
}

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    opts: { status?: number; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.status = opts.status ?? STATUS_BY_CODE[code];
    this.headers = opts.headers ?? {};
  }
  readonly headers: Record<string, string>;
}

export function errorBody(code: ErrorCode, message: string, details: Record<string, unknown>, traceId: string) {
  return { code, error: code, message, details, trace_id: traceId };
}

// Small constructors keep call sites short and the messages uniform.

export function notFound(code: NotFoundCode = 'not_found', what?: string): AppError {
  const noun = what ?? code.replace(/\.not_found$/, '').replace(/_/g, ' ').replace(/s$/, '');
  return new AppError(code, `${noun} not found`);
}

export function validationError(fields: FieldError[] | string, status = 400, extra: Record<string, unknown> = {}): AppError {
  if (typeof fields === 'string') return new AppError('validation.error', fields, extra, { status });
  const message = fields.length ? `invalid ${fields[0].field}: ${fields[0].reason}` : 'validation failed';
  return new AppError('validation.error', message, { fields, ...extra }, { status });
}

export function fieldError(field: string, reason: string): AppError {
  return validationError([{ field, reason }]);
}

export const unauthorized = (message = 'authentication required') => new AppError('auth.unauthorized', message);
export const forbidden = (message = 'insufficient permissions') => new AppError('auth.forbidden', message);
export const conflict = (code: CodeWithStatus<409>, message: string, details: Record<string, unknown> = {}) =>
  new AppError(code, message, details);

/** The database cannot be reached or the connection broke mid-request (§1.5). */
export const serviceUnavailable = () =>
  new AppError('service_unavailable', 'the database is unavailable; retry shortly', {}, { headers: { 'retry-after': '1' } });

export function rateLimited(retryAfterSeconds: number, code: CodeWithStatus<429> = 'rate_limit', details: Record<string, unknown> = {}): AppError {
  const secs = Math.max(1, Math.ceil(retryAfterSeconds));
  return new AppError(code, 'too many requests', details, { headers: { 'retry-after': String(secs) } });
}
