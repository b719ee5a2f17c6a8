// Persona resolution across layers (api.md §10): org > platform > builtin. Each layer is a
// PersonaSource; the built-in files are one, the database layers slot in front of it later.
import { PERSONA_KEY_RE, PERSONA_VERSION_RE, personaIdOf, type Persona, type PersonaScope, type ResolvedPersona } from './types.js';

export interface PersonaSource {
  readonly scope: PersonaScope;
  /**
   * The active persona `key` of this layer: the exact `version`, or when `version` is null
   * the latest active version (most recently created). Inactive versions are not
   * selectable, so they are never returned.
   */
  find(key: string, version: string | null): Persona | null | Promise<Persona | null>;
}

export interface PersonaRef {
  key: string;
  /** null: the latest active version. */
  version: string | null;
}

/** Parses `key` or `key@version`; null when either part is malformed. */
export function parsePersonaRef(input: string): PersonaRef | null {
  const at = input.indexOf('@');
  const key = at === -1 ? input : input.slice(0, at);
  const version = at === -1 ? null : input.slice(at + 1);
  if (!PERSONA_KEY_RE.test(key)) return null;
  if (version !== null && !PERSONA_VERSION_RE.test(version)) return null;
  return { key, version };
}

/**
 * Resolves `key` / `key@version` through the sources in order (pass them highest layer
 * first: org, platform, builtin). The first layer that has it wins. Unknown or malformed
 * input → null.
 */
export async function resolvePersona(sources: readonly PersonaSource[], input: string): Promise<ResolvedPersona | null> {
  const ref = parsePersonaRef(input);
  if (!ref) return null;
  for (const source of sources) {
    const persona = await source.find(ref.key, ref.version);
    if (persona) return { persona_id: personaIdOf(persona), persona };
  }
  return null;
}

/** The persona used when a run names none: the highest layer's `default` (§10). */
export function resolveDefaultPersona(sources: readonly PersonaSource[]): Promise<ResolvedPersona | null> {
  return resolvePersona(sources, 'default');
}

/** The persona of a run (§27.1 step 4): its stored `persona_id`, or the default when null. */
export function resolveRunPersona(sources: readonly PersonaSource[], personaId: string | null): Promise<ResolvedPersona | null> {
  return personaId === null ? resolveDefaultPersona(sources) : resolvePersona(sources, personaId);
}

/** A layer held in memory: the built-in files, or one account's and the platform's rows as read for one request. */
export class PersonaLayer<P extends Persona = Persona> implements PersonaSource {
  private readonly byKey = new Map<string, P[]>();

  constructor(
    readonly scope: PersonaScope,
    personas: readonly P[],
  ) {
    for (const p of personas) {
      const list = this.byKey.get(p.persona_key) ?? [];
      list.push(p);
      this.byKey.set(p.persona_key, list);
    }
    for (const list of this.byKey.values()) list.sort(compareNewestFirst);
  }

  find(key: string, version: string | null): P | null {
    const active = (this.byKey.get(key) ?? []).filter((p) => p.is_active);
    if (version === null) return active[0] ?? null;
    return active.find((p) => p.version === version) ?? null;
  }

  /** Every persona of the layer (all versions), by key, newest version first. */
  list(): P[] {
    return [...this.byKey.keys()].sort().flatMap((k) => this.byKey.get(k)!);
  }

  keys(): string[] {
    return [...this.byKey.keys()];
  }
}

/** Orders versions newest first: `created_at` desc, then versions compared numerically. */
export function compareNewestFirst(a: Persona, b: Persona): number {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return b.version.localeCompare(a.version, 'en', { numeric: true });
}
