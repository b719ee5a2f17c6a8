// Field-by-field validation of persona definitions against the limits of api.md §2.5.
// Used for the built-in files; the messages name the offending field so a broken file is
// easy to fix.
import {
  ACCOUNT_ROLES,
  EXECUTOR_TYPES,
  MAX_PROMPT_BYTES,
  PERSONA_KEY_RE,
  PERSONA_VERSION_RE,
  PROMPT_CACHE_CONTROLS,
  REASONING_MODES,
  emptyBudgets,
  type AccountRole,
  type Budgets,
  type BudgetsOverride,
  type ExecutorType,
  type Persona,
  type PromptCacheControl,
  type ReasoningMode,
  type RoleOverride,
} from './types.js';

export class PersonaValidationError extends Error {
  constructor(
    /** Dotted path of the field, e.g. `budgets.max_iterations`. */
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field} ${reason}`);
    this.name = 'PersonaValidationError';
  }
}

/** The persona fields a definition carries (no identity, scope or timestamps). */
export type PersonaDefinition = Omit<Persona, 'id' | 'org_id' | 'scope' | 'created_at' | 'updated_at'>;

type Obj = Record<string, unknown>;

const PERSONA_FIELDS = new Set([
  'persona_key',
  'version',
  'display_name',
  'description',
  'prompt_md',
  'tool_allowlist',
  'tool_denylist',
  'tool_approval',
  'budgets',
  'model',
  'preferred_credential',
  'reasoning_mode',
  'stream_thinking',
  'prompt_cache_control',
  'executor_type',
  'roles',
  'is_active',
]);
const ROLE_FIELDS = new Set([
  'prompt_append',
  'tool_allowlist',
  'tool_denylist',
  'tool_approval',
  'budgets',
  'model',
  'preferred_credential',
  'reasoning_mode',
  'stream_thinking',
  'prompt_cache_control',
]);

function fail(field: string, reason: string): never {
  throw new PersonaValidationError(field, reason);
}

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function rejectUnknown(o: Obj, known: Set<string>, prefix: string): void {
  for (const k of Object.keys(o)) if (!known.has(k)) fail(prefix + k, 'is not a known field');
}

function str(v: unknown, field: string, opts: { min?: number; max?: number } = {}): string {
  if (typeof v !== 'string') fail(field, 'must be a string');
  if (opts.min !== undefined && v.length < opts.min) fail(field, `must be at least ${opts.min} characters`);
  if (opts.max !== undefined && v.length > opts.max) fail(field, `must be at most ${opts.max} characters`);
  return v;
}

function nullableStr(v: unknown, field: string): string | null {
  return v === null || v === undefined ? null : str(v, field);
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') fail(field, 'must be true or false');
  return v;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], field: string): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    fail(field, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
  }
  return v as T;
}

function nullableOneOf<T extends string>(v: unknown, allowed: readonly T[], field: string): T | null {
  return v === null || v === undefined ? null : oneOf(v, allowed, field);
}

function intIn(v: unknown, min: number, max: number, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(field, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

function numIn(v: unknown, min: number, max: number, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    fail(field, `must be a number from ${min} to ${max}`);
  }
  return v;
}

/** A tool-policy entry: an exact tool name or `prefix*` (a `*` only at the end). */
function toolPatterns(v: unknown, field: string): string[] {
  if (!Array.isArray(v)) fail(field, 'must be a list of tool names');
  if (v.length > 100) fail(field, 'must have at most 100 entries');
  return v.map((e, i) => {
    const s = str(e, `${field}[${i}]`, { min: 1, max: 200 });
    if (s.indexOf('*') !== -1 && s.indexOf('*') !== s.length - 1) {
      fail(`${field}[${i}]`, 'may contain `*` only as its last character');
    }
    return s;
  });
}

/** `provider_name^model_name` or a bare model name: at most one `^`, no empty part. */
export function isValidModelSelector(s: string): boolean {
  const parts = s.split('^');
  return parts.length <= 2 && parts.every((p) => p.trim().length > 0);
}

function modelSelector(v: unknown, field: string): string | null {
  const s = nullableStr(v, field);
  if (s !== null && !isValidModelSelector(s)) fail(field, 'must be `provider^model` or a model name');
  return s;
}

/** Budgets keys set in `raw` (null counts as unset); `reasoning_iterations` is an input alias. */
export function parseBudgetsOverride(raw: unknown, field = 'budgets'): BudgetsOverride {
  if (raw === null || raw === undefined) return {};
  if (!isObject(raw)) fail(field, 'must be an object');
  const o = { ...raw };
  if ('reasoning_iterations' in o) {
    if (o.max_iterations !== undefined && o.max_iterations !== null) {
      fail(`${field}.reasoning_iterations`, 'is an alias of max_iterations: give only one');
    }
    o.max_iterations = o.reasoning_iterations;
    delete o.reasoning_iterations;
  }
  rejectUnknown(o, new Set(Object.keys(emptyBudgets())), `${field}.`);
  const out: BudgetsOverride = {};
  const set = (k: keyof Budgets) => o[k] !== undefined && o[k] !== null;
  if (set('max_iterations')) out.max_iterations = intIn(o.max_iterations, 1, 100, `${field}.max_iterations`);
  if (set('max_output_tokens')) out.max_output_tokens = intIn(o.max_output_tokens, 1, 200_000, `${field}.max_output_tokens`);
  if (set('temperature')) out.temperature = numIn(o.temperature, 0, 2, `${field}.temperature`);
  if (set('top_p')) out.top_p = numIn(o.top_p, 0, 1, `${field}.top_p`);
  if (set('tool_continuation_budget')) {
    out.tool_continuation_budget = intIn(o.tool_continuation_budget, 0, 1000, `${field}.tool_continuation_budget`);
  }
  if (set('per_tool_soft_limits')) {
    const limits = o.per_tool_soft_limits;
    if (!isObject(limits)) fail(`${field}.per_tool_soft_limits`, 'must be an object {tool_name: int}');
    out.per_tool_soft_limits = {};
    for (const [tool, n] of Object.entries(limits)) {
      if (!tool) fail(`${field}.per_tool_soft_limits`, 'has an empty tool name');
      out.per_tool_soft_limits[tool] = intIn(n, 0, 1000, `${field}.per_tool_soft_limits.${tool}`);
    }
  }
  return out;
}

export function parseBudgets(raw: unknown, field = 'budgets'): Budgets {
  return { ...emptyBudgets(), ...parseBudgetsOverride(raw, field) };
}

export function parseRoleOverride(raw: unknown, field: string): RoleOverride {
  if (!isObject(raw)) fail(field, 'must be an object');
  rejectUnknown(raw, ROLE_FIELDS, `${field}.`);
  const out: RoleOverride = {};
  if (raw.prompt_append !== undefined && raw.prompt_append !== null) {
    out.prompt_append = str(raw.prompt_append, `${field}.prompt_append`);
  }
  if (raw.tool_allowlist !== undefined) {
    out.tool_allowlist = raw.tool_allowlist === null ? null : toolPatterns(raw.tool_allowlist, `${field}.tool_allowlist`);
  }
  if (raw.tool_denylist !== undefined && raw.tool_denylist !== null) {
    out.tool_denylist = toolPatterns(raw.tool_denylist, `${field}.tool_denylist`);
  }
  if (raw.tool_approval !== undefined && raw.tool_approval !== null) {
    out.tool_approval = toolPatterns(raw.tool_approval, `${field}.tool_approval`);
  }
  if (raw.budgets !== undefined) out.budgets = parseBudgetsOverride(raw.budgets, `${field}.budgets`);
  if (raw.model !== undefined) out.model = modelSelector(raw.model, `${field}.model`);
  if (raw.preferred_credential !== undefined) {
    out.preferred_credential = nullableStr(raw.preferred_credential, `${field}.preferred_credential`);
  }
  if (raw.reasoning_mode !== undefined) {
    out.reasoning_mode = nullableOneOf<ReasoningMode>(raw.reasoning_mode, REASONING_MODES, `${field}.reasoning_mode`);
  }
  if (raw.stream_thinking !== undefined && raw.stream_thinking !== null) {
    out.stream_thinking = bool(raw.stream_thinking, `${field}.stream_thinking`);
  }
  if (raw.prompt_cache_control !== undefined) {
    out.prompt_cache_control = nullableOneOf<PromptCacheControl>(
      raw.prompt_cache_control,
      PROMPT_CACHE_CONTROLS,
      `${field}.prompt_cache_control`,
    );
  }
  return out;
}

/**
 * Validates a persona definition (create-body shape of §10.2, defaults applied) and returns
 * it normalised. Throws PersonaValidationError naming the first bad field.
 */
export function parsePersonaDefinition(raw: unknown): PersonaDefinition {
  if (!isObject(raw)) fail('persona', 'must be an object');
  rejectUnknown(raw, PERSONA_FIELDS, '');

  const key = str(raw.persona_key, 'persona_key');
  if (!PERSONA_KEY_RE.test(key)) fail('persona_key', `must match ${PERSONA_KEY_RE.source}`);
  const version = raw.version === undefined ? '1' : str(raw.version, 'version');
  if (!PERSONA_VERSION_RE.test(version)) fail('version', `must match ${PERSONA_VERSION_RE.source}`);

  // §1.6 defaults: display names 1–100 characters after trim, descriptions up to 2000.
  const displayName = str(raw.display_name, 'display_name').trim();
  if (displayName.length < 1 || displayName.length > 100) fail('display_name', 'must be 1 to 100 characters');
  const description = nullableStr(raw.description, 'description');
  if (description !== null && description.length > 2000) fail('description', 'must be at most 2000 characters');
  const promptMd = str(raw.prompt_md, 'prompt_md');
  if (Buffer.byteLength(promptMd, 'utf8') > MAX_PROMPT_BYTES) fail('prompt_md', `must be at most ${MAX_PROMPT_BYTES} bytes`);

  const roles: Partial<Record<AccountRole, RoleOverride>> = {};
  if (raw.roles !== undefined && raw.roles !== null) {
    if (!isObject(raw.roles)) fail('roles', 'must be an object keyed by owner, admin, member');
    rejectUnknown(raw.roles, new Set(ACCOUNT_ROLES), 'roles.');
    for (const role of ACCOUNT_ROLES) {
      if (raw.roles[role] !== undefined && raw.roles[role] !== null) {
        roles[role] = parseRoleOverride(raw.roles[role], `roles.${role}`);
      }
    }
  }

  return {
    persona_key: key,
    version,
    display_name: displayName,
    description,
    prompt_md: promptMd,
    tool_allowlist:
      raw.tool_allowlist === undefined || raw.tool_allowlist === null ? null : toolPatterns(raw.tool_allowlist, 'tool_allowlist'),
    tool_denylist:
      raw.tool_denylist === undefined || raw.tool_denylist === null ? [] : toolPatterns(raw.tool_denylist, 'tool_denylist'),
    tool_approval:
      raw.tool_approval === undefined || raw.tool_approval === null ? [] : toolPatterns(raw.tool_approval, 'tool_approval'),
    budgets: parseBudgets(raw.budgets),
    model: modelSelector(raw.model, 'model'),
    preferred_credential: nullableStr(raw.preferred_credential, 'preferred_credential'),
    reasoning_mode: nullableOneOf<ReasoningMode>(raw.reasoning_mode, REASONING_MODES, 'reasoning_mode'),
    stream_thinking: raw.stream_thinking === undefined ? true : bool(raw.stream_thinking, 'stream_thinking'),
    prompt_cache_control: nullableOneOf<PromptCacheControl>(raw.prompt_cache_control, PROMPT_CACHE_CONTROLS, 'prompt_cache_control'),
    executor_type:
      raw.executor_type === undefined ? 'agent.simple' : oneOf<ExecutorType>(raw.executor_type, EXECUTOR_TYPES, 'executor_type'),
    roles,
    is_active: raw.is_active === undefined ? true : bool(raw.is_active, 'is_active'),
  };
}
