// Provider construction: from a ProviderConfig (database or environment), plus the built-in stub.
import { createStubProvider } from './stub.js';
import type { LlmChunk, LlmProvider, LlmRequest, ProviderConfig } from './types.js';
import { envValue } from '../config/env.js';

export * from './types.js';
export { LlmError } from './types.js';
export { abortError, isAbortError, parseRetryAfter } from './errors.js';

export function createProvider(config: ProviderConfig): LlmProvider {
  switch (config.kind) {
    case 'openai':
      return lazyProvider(config, async () => (await import('./openai/provider.js')).createOpenAiProvider(config));
    case 'anthropic':
      return lazyProvider(config, async () => (await import('./anthropic/provider.js')).createAnthropicProvider(config));
    case 'stub':
      return createStubProvider(config);
    default:
      throw new Error(`unknown provider kind: ${String((config as { kind: unknown }).kind)}`);
  }
}

/**
 * The vendor SDKs load on a provider's first call, not at start: together they are a quarter
 * of the server's start-up time, and an install using only the stub never needs them.
 */
function lazyProvider(config: ProviderConfig, load: () => Promise<LlmProvider>): LlmProvider {
  let loaded: Promise<LlmProvider> | null = null;
  return {
    kind: config.kind,
    name: config.name,
    async *stream(req: LlmRequest, signal: AbortSignal): AsyncIterable<LlmChunk> {
      loaded ??= load();
      yield* (await loaded).stream(req, signal);
    },
  };
}

export interface EnvProvider {
  config: ProviderConfig;
  /** Upstream model name to use with it. */
  model: string;
}

/**
 * Environment providers (api.md §27.3 rule 5), OpenAI first: each is configured when its
 * API key variable is set.
 */
export function envProviders(env: Record<string, string | undefined> = process.env): EnvProvider[] {
  const out: EnvProvider[] = [];
  const nonEmpty = (v: string | undefined) => (v && v.trim() !== '' ? v.trim() : null);
  const openaiKey = nonEmpty(envValue(env, 'ARKLOOP_OPENAI_API_KEY'));
  if (openaiKey) {
    out.push({
      config: { kind: 'openai', name: 'openai', apiKey: openaiKey, baseUrl: nonEmpty(envValue(env, 'ARKLOOP_OPENAI_BASE_URL')), openaiApiMode: 'auto' },
      model: nonEmpty(envValue(env, 'ARKLOOP_OPENAI_MODEL')) ?? 'gpt-4o-mini',
    });
  }
  const anthropicKey = nonEmpty(envValue(env, 'ARKLOOP_ANTHROPIC_API_KEY'));
  if (anthropicKey) {
    out.push({
      config: { kind: 'anthropic', name: 'anthropic', apiKey: anthropicKey, baseUrl: nonEmpty(envValue(env, 'ARKLOOP_ANTHROPIC_BASE_URL')) },
      model: nonEmpty(envValue(env, 'ARKLOOP_ANTHROPIC_MODEL')) ?? 'claude-sonnet-4-20250514',
    });
  }
  return out;
}

/** The built-in stub (api.md §27.3 rule 5, when nothing else is configured). */
export function builtinStub(): { provider: LlmProvider; config: ProviderConfig; model: string } {
  const config: ProviderConfig = { kind: 'stub', name: 'stub', apiKey: null, baseUrl: null };
  return { provider: createStubProvider(config), config, model: 'stub' };
}

/** `advanced_json.headers` (string values only) and `extra_body` of a provider or route (api.md §12). */
export function advancedRequestParts(advanced: Record<string, unknown> | null | undefined): { headers?: Record<string, string>; extraBody?: Record<string, unknown> } {
  const out: { headers?: Record<string, string>; extraBody?: Record<string, unknown> } = {};
  const h = advanced?.headers;
  if (h && typeof h === 'object' && !Array.isArray(h)) out.headers = Object.fromEntries(Object.entries(h).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  const b = advanced?.extra_body;
  if (b && typeof b === 'object' && !Array.isArray(b)) out.extraBody = b as Record<string, unknown>;
  return out;
}
