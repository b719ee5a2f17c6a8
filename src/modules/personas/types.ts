// Persona shapes of api.md §2.5, shared by the built-in files and (later) the database layers.

export type PersonaScope = 'org' | 'platform' | 'builtin';
export type AccountRole = 'owner' | 'admin' | 'member';
export type ReasoningMode = 'none' | 'low' | 'medium' | 'high';
export type PromptCacheControl = 'none' | 'auto';
export type ExecutorType = 'agent.simple';

export const ACCOUNT_ROLES: readonly AccountRole[] = ['owner', 'admin', 'member'];
export const REASONING_MODES: readonly ReasoningMode[] = ['none', 'low', 'medium', 'high'];
export const PROMPT_CACHE_CONTROLS: readonly PromptCacheControl[] = ['none', 'auto'];
export const EXECUTOR_TYPES: readonly ExecutorType[] = ['agent.simple'];

export const PERSONA_KEY_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const PERSONA_VERSION_RE = /^[A-Za-z0-9._-]{1,32}$/;
/** `prompt_md` limit, in UTF-8 bytes. */
export const MAX_PROMPT_BYTES = 64 * 1024;

export interface Budgets {
  max_iterations: number | null;
  max_output_tokens: number | null;
  temperature: number | null;
  top_p: number | null;
  tool_continuation_budget: number | null;
  per_tool_soft_limits: Record<string, number>;
}

/** Budgets of a role override: only the keys it sets (merged key by key over the persona's). */
export type BudgetsOverride = Partial<Budgets>;

export interface RoleOverride {
  prompt_append?: string;
  /** Present (even null = every tool) replaces the persona's allowlist. */
  tool_allowlist?: string[] | null;
  tool_denylist?: string[];
  /** Present replaces the persona's approval list (§27.5a). */
  tool_approval?: string[];
  budgets?: BudgetsOverride;
  model?: string | null;
  preferred_credential?: string | null;
  reasoning_mode?: ReasoningMode | null;
  stream_thinking?: boolean;
  prompt_cache_control?: PromptCacheControl | null;
}

export interface Persona {
  id: string;
  /** null for platform and built-in personas. */
  org_id: string | null;
  scope: PersonaScope;
  persona_key: string;
  version: string;
  display_name: string;
  description: string | null;
  prompt_md: string;
  /** null = every available tool; [] = none; entries exact names or `prefix*`. */
  tool_allowlist: string[] | null;
  tool_denylist: string[];
  /** Tools whose every call waits for a person's approval of its exact arguments (§27.5a). */
  tool_approval: string[];
  budgets: Budgets;
  /** `provider_name^model_name` or a bare model name. */
  model: string | null;
  preferred_credential: string | null;
  reasoning_mode: ReasoningMode | null;
  stream_thinking: boolean;
  prompt_cache_control: PromptCacheControl | null;
  executor_type: ExecutorType;
  roles: Partial<Record<AccountRole, RoleOverride>>;
  is_active: boolean;
  created_at: string;
  updated_at: string;
}

/** A built-in persona (shipped as files under personas/). */
export type BuiltinPersona = Persona & { scope: 'builtin'; org_id: null };

export interface ResolvedPersona {
  /** `key@version`, as stored on runs. */
  persona_id: string;
  persona: Persona;
}

export function personaIdOf(p: Pick<Persona, 'persona_key' | 'version'>): string {
  return `${p.persona_key}@${p.version}`;
}

export function emptyBudgets(): Budgets {
  return {
    max_iterations: null,
    max_output_tokens: null,
    temperature: null,
    top_p: null,
    tool_continuation_budget: null,
    per_tool_soft_limits: {},
  };
}
