// Route resolution (api.md §27.3) over the providers that exist so far: the environment
// providers and the built-in stub. Configured LLM providers (the LLM Providers API) slot in
// ahead of these as rules 1–4 when they land.
import { builtinStub, envProviders, type ProviderConfig } from '../../llm/index.js';

export type RouteSource = 'route_id' | 'request_model' | 'persona' | 'preferred_credential' | 'default' | 'env' | 'stub';

export interface RouteCandidate {
  routeId: string | null;
  providerId: string | null;
  config: ProviderConfig;
  model: string;
  selector: string;
  source: RouteSource;
}

export interface RouteRequest {
  routeId: string | null;
  requestedModel: string | null;
  personaModel: string | null;
}

export type RouteResolution = { ok: true; candidates: RouteCandidate[] } | { ok: false; errorClass: 'policy.route_not_found' };

/** Parses `provider^model` or a bare model name; null when malformed (more than one `^`, empty part). */
export function parseSelector(selector: string): { provider: string | null; model: string } | null {
  const parts = selector.split('^');
  if (parts.length > 2 || parts.some((p) => p.trim() === '')) return null;
  return parts.length === 2 ? { provider: parts[0].trim(), model: parts[1].trim() } : { provider: null, model: parts[0].trim() };
}

export function resolveRoutes(env: Readonly<Record<string, string | undefined>>, req: RouteRequest): RouteResolution {
  const stub = builtinStub();
  const envs = envProviders(env);
  const known = [...envs.map((e) => ({ config: e.config, model: e.model })), { config: stub.config, model: stub.model }];
  const candidate = (config: ProviderConfig, model: string, source: RouteSource): RouteCandidate => ({
    routeId: null,
    providerId: null,
    config,
    model,
    selector: `${config.name}^${model}`,
    source,
  });

  // Rule 1: an explicit route names a configured model; none exist yet.
  if (req.routeId) return { ok: false, errorClass: 'policy.route_not_found' };

  // Rule 2: the request's model selector, else the persona's.
  const selector = req.requestedModel ?? req.personaModel;
  if (selector) {
    const source: RouteSource = req.requestedModel ? 'request_model' : 'persona';
    const parsed = parseSelector(selector);
    if (!parsed) return { ok: false, errorClass: 'policy.route_not_found' };
    let primary: RouteCandidate | null = null;
    if (parsed.provider) {
      const p = known.find((k) => k.config.name === parsed.provider);
      // A named provider may be used with any model name of its (ad hoc, no cost).
      if (p) primary = candidate(p.config, parsed.model, source);
    } else {
      const p = known.find((k) => k.model === parsed.model);
      if (p) primary = candidate(p.config, p.model, source);
    }
    if (!primary) return { ok: false, errorClass: 'policy.route_not_found' };
    const fallbacks = envs.filter((e) => e.config.name !== primary!.config.name).map((e) => candidate(e.config, e.model, 'env'));
    return { ok: true, candidates: [primary, ...fallbacks] };
  }

  // Rule 5: environment providers in order, else the stub.
  if (envs.length) return { ok: true, candidates: envs.map((e) => candidate(e.config, e.model, 'env')) };
  return { ok: true, candidates: [candidate(stub.config, stub.model, 'stub')] };
}
