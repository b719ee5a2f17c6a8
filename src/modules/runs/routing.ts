// Route resolution (api.md §27.3): which provider and model a run calls, and what it falls back
// to. Pure over a loaded catalogue (llm-providers' routableProviders): the API checks a run's
// route at creation with it, the worker resolves the same way when it runs.
import { builtinStub, envProviders, type ProviderConfig } from '../../llm/index.js';
import type { ModelRow, ProviderRow, ProviderWithModels } from '../llm-providers/store.js';

export type RouteSource = 'route_id' | 'request_model' | 'persona' | 'preferred_credential' | 'default' | 'env' | 'stub';

/** Prices of a configured model (§27.7); null = the call costs nothing (env, ad hoc, stub). */
export interface RoutePricing {
  multiplier: number;
  input: number | null;
  output: number | null;
  cacheWrite: number | null;
  cacheRead: number | null;
}

export interface RouteCandidate {
  routeId: string | null;
  providerId: string | null;
  config: ProviderConfig;
  model: string;
  selector: string;
  source: RouteSource;
  pricing: RoutePricing | null;
  /** Provider advanced_json with the model's merged over it, key by key (§12). */
  advanced: Record<string, unknown>;
}

export interface RouteRequest {
  routeId: string | null;
  requestedModel: string | null;
  personaModel: string | null;
  preferredCredential?: string | null;
  /** For the models' `when`: the run's persona key and its creator's account role. */
  personaKey?: string | null;
  role?: string | null;
}

export interface RouteCatalogue {
  providers: ProviderWithModels[];
  byok: boolean;
  /** The runtime configuration of a stored provider (key decrypted, SSRF guard for org scope). */
  configOf: (row: ProviderRow) => ProviderConfig;
}

export type RouteResolution =
  | { ok: true; candidates: RouteCandidate[] }
  | { ok: false; errorClass: 'policy.route_not_found' | 'policy.byok_disabled' };

/** Parses `provider^model` or a bare model name; null when malformed (more than one `^`, empty part). */
export function parseSelector(selector: string): { provider: string | null; model: string } | null {
  const parts = selector.split('^');
  if (parts.length > 2 || parts.some((p) => p.trim() === '')) return null;
  return parts.length === 2 ? { provider: parts[0].trim(), model: parts[1].trim() } : { provider: null, model: parts[0].trim() };
}

/** The call cost of §27.7 (missing prices count 0), before the model multiplier. */
export function callCostUsd(p: RoutePricing | null, u: { inputTokens: number; outputTokens: number; cacheReadTokens: number; cacheWriteTokens: number }): number {
  if (!p) return 0;
  const input = p.input ?? 0;
  const plain = Math.max(0, u.inputTokens - u.cacheReadTokens - u.cacheWriteTokens);
  return (plain / 1000) * input + (u.cacheReadTokens / 1000) * (p.cacheRead ?? input) + (u.cacheWriteTokens / 1000) * (p.cacheWrite ?? input) + (u.outputTokens / 1000) * (p.output ?? 0);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Does the model's `when` admit this run (§12.6: persona_keys, roles)? */
function admits(m: ModelRow, req: RouteRequest): boolean {
  const when = isObject(m.when_json) ? m.when_json : {};
  const keys = when.persona_keys;
  if (Array.isArray(keys) && !keys.includes(req.personaKey ?? '')) return false;
  const roles = when.roles;
  if (Array.isArray(roles) && !roles.includes(req.role ?? '')) return false;
  return true;
}

export function resolveRoutes(env: Readonly<Record<string, string | undefined>>, req: RouteRequest, catalogue: RouteCatalogue | null = null): RouteResolution {
  const all = catalogue?.providers ?? [];
  const usable = all.filter((p) => p.row.scope === 'platform' || catalogue!.byok);

  const configured = (p: ProviderWithModels, m: ModelRow | null, model: string, source: RouteSource): RouteCandidate => {
    const providerAdvanced = isObject(p.row.advanced_json) ? p.row.advanced_json : {};
    const advanced = { ...providerAdvanced, ...(m && isObject(m.advanced_json) ? m.advanced_json : {}) };
    const base = catalogue!.configOf(p.row);
    const timeout = advanced.timeout_ms;
    return {
      routeId: m?.id ?? null,
      providerId: p.row.id,
      config: { ...base, advancedJson: advanced, ...(typeof timeout === 'number' && timeout > 0 ? { timeoutMs: timeout } : {}) },
      model,
      selector: `${p.row.name}^${model}`,
      source,
      pricing: m
        ? { multiplier: m.multiplier, input: m.cost_per_1k_input, output: m.cost_per_1k_output, cacheWrite: m.cost_per_1k_cache_write, cacheRead: m.cost_per_1k_cache_read }
        : null,
      advanced,
    };
  };

  // Rule 1: an explicit route is honoured or fails; no fallbacks.
  if (req.routeId) {
    for (const p of all) {
      const m = p.models.find((x) => x.id === req.routeId);
      if (!m) continue;
      if (p.row.scope === 'org' && !catalogue!.byok) return { ok: false, errorClass: 'policy.byok_disabled' };
      return { ok: true, candidates: [configured(p, m, m.model, 'route_id')] };
    }
    return { ok: false, errorClass: 'policy.route_not_found' };
  }

  // The default chain: every admitted model of the usable providers, in order.
  const chain: Array<{ p: ProviderWithModels; m: ModelRow }> = [];
  for (const p of usable) for (const m of p.models) if (admits(m, req)) chain.push({ p, m });
  // Ordered across providers: account before platform, then is_default, priority, age (rule 4).
  // The sort is stable, so provider order breaks the remaining ties.
  const rank = (e: { p: ProviderWithModels }) => (e.p.row.scope === 'org' ? 0 : 1);
  chain.sort(
    (a, b) =>
      rank(a) - rank(b) ||
      Number(b.m.is_default) - Number(a.m.is_default) ||
      b.m.priority - a.m.priority ||
      new Date(a.m.created_at).getTime() - new Date(b.m.created_at).getTime(),
  );
  /** The chain's next entry of every provider but `exceptProviderId`, one each. */
  const fallbacksAfter = (exceptProviderId: string | null): RouteCandidate[] => {
    const seen = new Set<string>(exceptProviderId ? [exceptProviderId] : []);
    const out: RouteCandidate[] = [];
    for (const { p, m } of chain) {
      if (seen.has(p.row.id)) continue;
      seen.add(p.row.id);
      out.push(configured(p, m, m.model, 'default'));
    }
    return out;
  };

  // Environment providers and the stub: the whole routing when nothing is configured (rule 5),
  // and still addressable by selector otherwise.
  const stub = builtinStub();
  const envs = envProviders(env);
  const builtins = [...envs.map((e) => ({ config: e.config, model: e.model })), { config: stub.config, model: stub.model }];
  const builtin = (config: ProviderConfig, model: string, source: RouteSource): RouteCandidate => ({
    routeId: null,
    providerId: null,
    config,
    model,
    selector: `${config.name}^${model}`,
    source,
    pricing: null,
    advanced: {},
  });
  const envFallbacks = (exceptName: string) => envs.filter((e) => e.config.name !== exceptName).map((e) => builtin(e.config, e.model, 'env'));

  // Rule 2: the request's model selector, else the persona's.
  const selector = req.requestedModel ?? req.personaModel;
  if (selector) {
    const source: RouteSource = req.requestedModel ? 'request_model' : 'persona';
    const parsed = parseSelector(selector);
    if (!parsed) return { ok: false, errorClass: 'policy.route_not_found' };
    if (parsed.provider) {
      const p = usable.find((x) => x.row.name === parsed.provider);
      if (p) {
        // The configured model, or the name used ad hoc with that provider (no cost).
        const m = p.models.find((x) => x.model === parsed.model) ?? null;
        return { ok: true, candidates: [configured(p, m, parsed.model, source), ...fallbacksAfter(p.row.id)] };
      }
      const b = builtins.find((k) => k.config.name === parsed.provider);
      if (b) return { ok: true, candidates: [builtin(b.config, parsed.model, source), ...(chain.length ? fallbacksAfter(null) : envFallbacks(b.config.name))] };
      return { ok: false, errorClass: 'policy.route_not_found' };
    }
    const hit = chain.find((e) => e.m.model === parsed.model);
    if (hit) return { ok: true, candidates: [configured(hit.p, hit.m, hit.m.model, source), ...fallbacksAfter(hit.p.row.id)] };
    const b = builtins.find((k) => k.model === parsed.model);
    if (b) return { ok: true, candidates: [builtin(b.config, b.model, source), ...(chain.length ? fallbacksAfter(null) : envFallbacks(b.config.name))] };
    return { ok: false, errorClass: 'policy.route_not_found' };
  }

  // Rule 3: the persona's preferred credential: its default model, else its highest priority.
  if (req.preferredCredential) {
    const p = usable.find((x) => x.row.name === req.preferredCredential);
    const m = p?.models[0];
    if (p && m) return { ok: true, candidates: [configured(p, m, m.model, 'preferred_credential'), ...fallbacksAfter(p.row.id)] };
  }

  // Rule 4: the head of the default chain, then one entry per other provider.
  if (chain.length) {
    const head = chain[0];
    return { ok: true, candidates: [configured(head.p, head.m, head.m.model, 'default'), ...fallbacksAfter(head.p.row.id)] };
  }

  // Rule 5: environment providers in order, else the stub.
  if (envs.length) return { ok: true, candidates: envs.map((e) => builtin(e.config, e.model, 'env')) };
  return { ok: true, candidates: [builtin(stub.config, stub.model, 'stub')] };
}
