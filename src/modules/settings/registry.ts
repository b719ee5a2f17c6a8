// The platform settings table (api.md §28.2): every key with its type, scope, default,
// validation and whether it is sensitive.

export type SettingType = 'int' | 'number' | 'bool' | 'string' | 'json';
export type SettingValue = number | boolean | string | Record<string, unknown> | unknown[];

export interface SettingDef {
  key: string;
  type: SettingType;
  scope: 'platform' | 'both';
  default: SettingValue;
  description: string;
  sensitive?: boolean;
  min?: number;
  max?: number;
  enum?: readonly string[];
  /** Extra environment variable names that also force this key (§29 aliases). */
  envAliases?: readonly string[];
}

const defs: SettingDef[] = [
  { key: 'credit.deduction_policy', type: 'json', scope: 'platform', default: { tiers: [{ up_to_tokens: 2000, multiplier: 0 }, { multiplier: 1 }] }, description: 'tiers by run token total → credit multiplier' },
  { key: 'credit.initial_grant', type: 'int', scope: 'platform', default: 1000, min: 0, description: 'credits for every new account' },
  { key: 'credit.invite_reward', type: 'int', scope: 'platform', default: 500, min: 0, description: 'credits to the inviter when their code is used' },
  { key: 'credit.invitee_reward', type: 'int', scope: 'platform', default: 200, min: 0, description: 'credits to the new user registering with a code' },
  { key: 'credit.per_usd', type: 'int', scope: 'platform', default: 1000, min: 0, description: 'credits per 1 USD of model cost' },
  { key: 'email.from', type: 'string', scope: 'platform', default: '', description: 'sender address; empty disables sending (mails are logged)' },
  { key: 'email.smtp_host', type: 'string', scope: 'platform', default: '', description: 'SMTP host' },
  { key: 'email.smtp_port', type: 'int', scope: 'platform', default: 587, min: 1, max: 65535, description: 'SMTP port' },
  { key: 'email.smtp_user', type: 'string', scope: 'platform', default: '', description: 'SMTP user' },
  { key: 'email.smtp_pass', type: 'string', scope: 'platform', default: '', sensitive: true, description: 'SMTP password' },
  { key: 'email.smtp_tls_mode', type: 'string', scope: 'platform', default: 'starttls', enum: ['starttls', 'tls', 'none'], description: 'starttls|tls|none' },
  { key: 'email.verification_required', type: 'bool', scope: 'platform', default: false, description: 'users must verify their email before using the API' },
  { key: 'feature.byok_enabled', type: 'bool', scope: 'both', default: true, description: 'accounts may own LLM provider credentials' },
  { key: 'feature.mcp_remote_enabled', type: 'bool', scope: 'both', default: false, description: 'accounts may use HTTP MCP servers' },
  { key: 'gateway.ip_mode', type: 'string', scope: 'platform', default: 'direct', enum: ['direct', 'trusted_proxy', 'cloudflare'], description: 'how the gateway resolves the client IP' },
  { key: 'gateway.ratelimit_capacity', type: 'number', scope: 'platform', default: 600, min: 0, description: 'token-bucket size per identity', envAliases: ['ARKLOOP_RATELIMIT_CAPACITY'] },
  { key: 'gateway.ratelimit_rate_per_minute', type: 'number', scope: 'platform', default: 300, min: 0, description: 'refill per minute', envAliases: ['ARKLOOP_RATELIMIT_RATE_PER_MINUTE'] },
  { key: 'gateway.risk_reject_threshold', type: 'int', scope: 'platform', default: 0, min: 0, max: 100, description: '0–100; 0 = never reject' },
  { key: 'gateway.trusted_cidrs', type: 'string', scope: 'platform', default: '', description: 'comma-separated proxy CIDRs' },
  { key: 'invite.default_max_uses', type: 'int', scope: 'both', default: 0, min: 0, description: 'max_uses of new invite codes; 0 = unlimited' },
  { key: 'invite.max_codes_per_user', type: 'int', scope: 'both', default: 1, min: 1, description: 'active invite codes per user' },
  { key: 'limit.agent_reasoning_iterations', type: 'int', scope: 'both', default: 0, min: 0, description: 'cap on persona max_iterations; 0 = no cap' },
  { key: 'limit.tool_continuation_budget', type: 'int', scope: 'both', default: 32, min: 0, description: 'default tool-call budget per run' },
  { key: 'limit.concurrent_runs', type: 'int', scope: 'both', default: 0, min: 0, description: 'active runs per account; 0 = unlimited', envAliases: ['ARKLOOP_MAX_CONCURRENT_RUNS_PER_ACCOUNT'] },
  { key: 'limit.max_input_content_bytes', type: 'int', scope: 'both', default: 32768, min: 1, description: 'max bytes of run input' },
  { key: 'limit.max_parallel_tasks', type: 'int', scope: 'platform', default: 32, min: 1, description: 'parallel tool calls per turn' },
  { key: 'limit.team_members', type: 'int', scope: 'both', default: 0, min: 0, description: 'members per team; 0 = unlimited' },
  { key: 'llm.retry.base_delay_ms', type: 'int', scope: 'platform', default: 1000, min: 0, description: 'first retry delay, doubled each retry' },
  { key: 'llm.retry.max_attempts', type: 'int', scope: 'platform', default: 3, min: 1, max: 20, description: 'attempts per model call, first included' },
  { key: 'quota.runs_per_month', type: 'int', scope: 'both', default: 0, min: 0, description: 'runs per account per UTC month; 0 = unlimited' },
  { key: 'quota.tokens_per_month', type: 'int', scope: 'both', default: 0, min: 0, description: 'tokens per account per UTC month; 0 = unlimited' },
  { key: 'registration.mode', type: 'string', scope: 'platform', default: 'open', enum: ['open', 'invite_only', 'disabled'], description: 'open|invite_only|disabled' },
  { key: 'security.ssrf_allow_private', type: 'bool', scope: 'platform', default: false, description: 'lets the SSRF guard pass private/loopback targets' },
  { key: 'turnstile.site_key', type: 'string', scope: 'platform', default: '', description: 'captcha site key' },
  { key: 'turnstile.secret_key', type: 'string', scope: 'platform', default: '', sensitive: true, description: 'captcha secret' },
  { key: 'turnstile.allowed_host', type: 'string', scope: 'platform', default: '', description: "when set, the verified token's hostname must equal it" },
  { key: 'turnstile.verify_url', type: 'string', scope: 'platform', default: 'https://challenges.cloudflare.com/turnstile/v0/siteverify', description: 'verification endpoint' },
  { key: 'web_fetch.provider', type: 'string', scope: 'both', default: 'basic', enum: ['basic', 'jina', 'firecrawl'], description: 'fallback backend' },
  { key: 'web_fetch.jina_api_key', type: 'string', scope: 'both', default: '', sensitive: true, description: 'fallback Jina key' },
  { key: 'web_fetch.firecrawl_api_key', type: 'string', scope: 'both', default: '', sensitive: true, description: 'fallback Firecrawl key' },
  { key: 'web_fetch.firecrawl_base_url', type: 'string', scope: 'both', default: '', description: 'fallback Firecrawl endpoint' },
  { key: 'web_search.provider', type: 'string', scope: 'both', default: '', enum: ['', 'searxng', 'tavily'], description: 'fallback backend: searxng|tavily; empty = none' },
  { key: 'web_search.searxng_base_url', type: 'string', scope: 'both', default: '', description: 'fallback SearXNG endpoint' },
  { key: 'web_search.tavily_api_key', type: 'string', scope: 'both', default: '', sensitive: true, description: 'fallback Tavily key' },
  { key: 'webhook.max_attempts', type: 'int', scope: 'platform', default: 6, min: 1, max: 50, description: 'delivery attempts, first included' },
  { key: 'webhook.retry_base_delay_ms', type: 'int', scope: 'platform', default: 10000, min: 0, description: 'first retry delay, doubled each retry' },
  { key: 'webhook.timeout_ms', type: 'int', scope: 'platform', default: 10000, min: 1, description: 'per-attempt timeout' },
];

export const SETTINGS: ReadonlyMap<string, SettingDef> = new Map(defs.map((d) => [d.key, d]));

export function envNameFor(key: string): string {
  return 'ARKLOOP_' + key.toUpperCase().replace(/\./g, '_');
}

/** Parses a raw string (environment) into the setting's type; throws with a reason. */
export function parseSettingString(def: SettingDef, raw: string): SettingValue {
  switch (def.type) {
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) throw new Error('must be an integer');
      return checkValue(def, Number(raw));
    }
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new Error('must be a number');
      return checkValue(def, n);
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (v === 'true' || v === '1') return true;
      if (v === 'false' || v === '0') return false;
      throw new Error('must be true or false');
    }
    case 'json': {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        throw new Error('must be JSON');
      }
      return checkValue(def, parsed);
    }
    default:
      return checkValue(def, raw);
  }
}

/** Validates a typed value (stored or from the API); throws with a reason. */
export function checkValue(def: SettingDef, value: unknown): SettingValue {
  switch (def.type) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) throw new Error('must be an integer');
      break;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error('must be a number');
      break;
    case 'bool':
      if (typeof value !== 'boolean') throw new Error('must be a boolean');
      return value;
    case 'string':
      if (typeof value !== 'string') throw new Error('must be a string');
      if (def.enum && !def.enum.includes(value)) throw new Error(`must be one of ${def.enum.filter(Boolean).join(', ')}`);
      return value;
    case 'json':
      if (value === null || typeof value !== 'object') throw new Error('must be a JSON object or array');
      return value as SettingValue;
  }
  const n = value as number;
  if (def.min !== undefined && n < def.min) throw new Error(`must be ≥ ${def.min}`);
  if (def.max !== undefined && n > def.max) throw new Error(`must be ≤ ${def.max}`);
  return n;
}
