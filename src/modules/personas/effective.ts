// The configuration one run executes with (api.md §27.1 step 4, §27.2): the persona merged
// with the run creator's role override and the limit.* settings. Pure: no I/O.
import { personaIdOf, type AccountRole, type Persona, type PromptCacheControl, type ReasoningMode } from './types.js';

/** §27.2: `max_iterations` when neither the role override nor the persona sets one. */
export const DEFAULT_MAX_ITERATIONS = 10;

export interface RunLimitSettings {
  /** `limit.agent_reasoning_iterations`: cap on max_iterations; 0 = no cap. */
  agentReasoningIterations: number;
  /** `limit.tool_continuation_budget`: default tool calls per run. */
  toolContinuationBudget: number;
}

export interface EffectiveRunConfig {
  /** `key@version` of the persona this was built from. */
  personaId: string;
  /** `prompt_md`, plus the role override's `prompt_append` after a blank line. */
  systemPrompt: string;
  toolAllowlist: string[] | null;
  toolDenylist: string[];
  /** Calls of matching tools wait for a person's approval (§27.5a). */
  toolApproval: string[];
  /** Model turns allowed; asking for tools after that many → `budget.max_iterations`. */
  maxIterations: number;
  /** null: provider default (the LLM layer fills in 4096 for anthropic). */
  maxOutputTokens: number | null;
  temperature: number | null;
  topP: number | null;
  /** Total tool calls per run. */
  toolContinuationBudget: number;
  perToolSoftLimits: Record<string, number>;
  /** `provider^model` or bare model name; null = route by preferred credential or default chain. */
  model: string | null;
  preferredCredential: string | null;
  reasoningMode: ReasoningMode | null;
  /** What to send as reasoning effort: `reasoningMode` without `none`. */
  reasoningEffort: 'low' | 'medium' | 'high' | undefined;
  streamThinking: boolean;
  promptCacheControl: PromptCacheControl | null;
}

/** Role override first, then the persona; null counts as unset (§27.2 "first set wins"). */
function firstSet<T>(override: T | null | undefined, base: T | null): T | null {
  return override ?? base;
}

export function effectiveRunConfig(persona: Persona, role: AccountRole, settings: RunLimitSettings): EffectiveRunConfig {
  const o = persona.roles[role] ?? {};
  const ob = o.budgets ?? {};
  const b = persona.budgets;

  let maxIterations = firstSet(ob.max_iterations, b.max_iterations) ?? DEFAULT_MAX_ITERATIONS;
  if (settings.agentReasoningIterations > 0) maxIterations = Math.min(maxIterations, settings.agentReasoningIterations);

  const reasoningMode = firstSet(o.reasoning_mode, persona.reasoning_mode);
  // An allowlist present in the override replaces the persona's, including null (= every tool).
  const allowlist = o.tool_allowlist !== undefined ? o.tool_allowlist : persona.tool_allowlist;
  return {
    personaId: personaIdOf(persona),
    systemPrompt: [persona.prompt_md, o.prompt_append ?? '']
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .join('\n\n'),
    // Copies: the result is the caller's, the persona may be a frozen built-in.
    toolAllowlist: allowlist === null ? null : [...allowlist],
    toolDenylist: [...(o.tool_denylist ?? persona.tool_denylist)],
    toolApproval: [...(o.tool_approval ?? persona.tool_approval)],
    maxIterations,
    maxOutputTokens: firstSet(ob.max_output_tokens, b.max_output_tokens),
    temperature: firstSet(ob.temperature, b.temperature),
    topP: firstSet(ob.top_p, b.top_p),
    toolContinuationBudget: firstSet(ob.tool_continuation_budget, b.tool_continuation_budget) ?? settings.toolContinuationBudget,
    perToolSoftLimits: { ...b.per_tool_soft_limits, ...(ob.per_tool_soft_limits ?? {}) },
    model: firstSet(o.model, persona.model),
    preferredCredential: firstSet(o.preferred_credential, persona.preferred_credential),
    reasoningMode,
    reasoningEffort: reasoningMode === null || reasoningMode === 'none' ? undefined : reasoningMode,
    streamThinking: o.stream_thinking ?? persona.stream_thinking ?? true,
    promptCacheControl: firstSet(o.prompt_cache_control, persona.prompt_cache_control),
  };
}
