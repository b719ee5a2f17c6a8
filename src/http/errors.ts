// Errors are data: one closed list of codes, one table from code to HTTP status, one
// envelope `{code, error, message, details, trace_id}` (api.md §1.5).

const STATUS_BY_CODE: Record<string, number> = {
  'validation.error': 400,
  'auth.captcha_required': 400,
  'auth.invite_code_invalid': 400,
  'auth.token_invalid': 400,
  'accounts.personal_account': 400,
  'ip_rules.would_lock_out': 400,
  'policy.ssrf_blocked': 400,
  'runs.no_user_message': 400,
  'workspace_files.invalid_path': 400,

  'auth.unauthorized': 401,
  'auth.invalid_credentials': 401,
  'auth.otp_invalid': 401,
  'auth.refresh_token_invalid': 401,

  'budget.insufficient_credits': 402,
  'budget.runs_quota_exceeded': 402,
  'budget.tokens_quota_exceeded': 402,

  'auth.forbidden': 403,
  'auth.captcha_failed': 403,
  'auth.email_not_verified': 403,
  'auth.invite_code_required': 403,
  'auth.registration_disabled': 403,
  'auth.user_suspended': 403,
  'invitations.email_mismatch': 403,
  'policy.byok_disabled': 403,
  'policy.ip_blocked': 403,
  'policy.ip_not_allowed': 403,
  'policy.mcp_remote_disabled': 403,
  'policy.mcp_stdio_forbidden': 403,
  'gateway.risk_rejected': 403,

  not_found: 404,
  'policy.route_not_found': 404,

  conflict: 409,
  'idempotency.key_reused': 409,
  'idempotency.in_progress': 409,
  'runs.invalid_state': 409,
  'runs.thread_busy': 409,
  'accounts.already_member': 409,
  'accounts.last_owner': 409,
  'accounts.slug_taken': 409,
  'admin.last_platform_admin': 409,
  'admin.self_action': 409,
  'api_keys.limit_reached': 409,
  'asr.not_configured': 409,
  'auth.email_already_verified': 409,
  'auth.email_taken': 409,
  'auth.login_taken': 409,
  'email.not_configured': 409,
  'feature_flags.key_taken': 409,
  'invitations.already_accepted': 409,
  'invitations.exists': 409,
  'invitations.expired': 409,
  'ip_rules.exists': 409,
  'ip_rules.limit_reached': 409,
  'limit.team_members': 409,
  'llm_models.exists': 409,
  'llm_providers.name_taken': 409,
  'mcp_configs.name_taken': 409,
  'personas.exists': 409,
  'plans.in_use': 409,
  'plans.name_taken': 409,
  'redemption_codes.already_redeemed': 409,
  'redemption_codes.exhausted': 409,
  'redemption_codes.expired': 409,
  'subscriptions.already_active': 409,
  'teams.member_exists': 409,
  'teams.name_taken': 409,
  'tool_providers.not_configured': 409,
  'webhooks.limit_reached': 409,

  rate_limit: 429,
  'limit.concurrent_runs': 429,

  internal_error: 500,
  service_unavailable: 503,

  'provider.auth_failed': 502,
  'provider.unavailable': 502,
  'email.send_failed': 502,
  'gateway.upstream_unavailable': 502,
  'provider.timeout': 504,
};

export interface FieldError {
  field: string;
  reason: string;
}

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    opts: { status?: number; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.status = opts.status ?? STATUS_BY_CODE[code] ?? (code.endsWith('.not_found') ? 404 : 500);
    this.headers = opts.headers ?? {};
  }
  readonly headers: Record<string, string>;
}

export function errorBody(code: string, message: string, details: Record<string, unknown>, traceId: string) {
  return { code, error: code, message, details, trace_id: traceId };
}

// Small constructors keep call sites short and the messages uniform.

export function notFound(code = 'not_found', what?: string): AppError {
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
export const conflict = (code: string, message: string, details: Record<string, unknown> = {}) =>
  new AppError(code, message, details);

/** The database cannot be reached or the connection broke mid-request (§1.5). */
export const serviceUnavailable = () =>
  new AppError('service_unavailable', 'the database is unavailable; retry shortly', {}, { headers: { 'retry-after': '1' } });

export function rateLimited(retryAfterSeconds: number, code = 'rate_limit', details: Record<string, unknown> = {}): AppError {
  const secs = Math.max(1, Math.ceil(retryAfterSeconds));
  return new AppError(code, 'too many requests', details, { headers: { 'retry-after': String(secs) } });
}
