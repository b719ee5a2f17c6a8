// Built-in personas (api.md §10): shipped as files, personas/<key>/persona.yaml + prompt.md,
// always present and read-only. Loaded and validated once; a broken file stops the process
// with its name in the message rather than degrading a run later.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { v5 as uuidv5 } from 'uuid';
import { PersonaLayer, parsePersonaRef } from './resolve.js';
import { PersonaValidationError, parsePersonaDefinition } from './validate.js';
import { personaIdOf, type BuiltinPersona } from './types.js';

export type {
  AccountRole,
  Budgets,
  BudgetsOverride,
  BuiltinPersona,
  Persona,
  PersonaScope,
  PromptCacheControl,
  ReasoningMode,
  ResolvedPersona,
  RoleOverride,
} from './types.js';
export { personaIdOf } from './types.js';
export { resolvePersona, resolveDefaultPersona, resolveRunPersona, parsePersonaRef, type PersonaSource } from './resolve.js';

/** The repository root's personas/: three levels up from src/modules/personas/ and dist/modules/personas/ alike. */
export const BUILTIN_PERSONAS_DIR = fileURLToPath(new URL('../../../personas/', import.meta.url));

export const DEFAULT_PERSONA_KEY = 'default';

/** Namespace of the name-based (v5) ids of built-in personas: stable across processes and releases. */
const BUILTIN_ID_NAMESPACE = '5b0e7c1a-3f7d-4a8e-9c61-2d4f8b9a0e13';
/** Built-ins have no row; they read as created at the epoch, older than any stored persona. */
const BUILTIN_TIMESTAMP = '1970-01-01T00:00:00.000Z';

export class PersonaFileError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`built-in persona ${file}: ${reason}`);
    this.name = 'PersonaFileError';
  }
}

function loadOne(dir: string, name: string): BuiltinPersona {
  const yamlFile = join(dir, name, 'persona.yaml');
  const promptFile = join(dir, name, 'prompt.md');
  if (!existsSync(yamlFile)) throw new PersonaFileError(yamlFile, 'file is missing');
  if (!existsSync(promptFile)) throw new PersonaFileError(promptFile, 'file is missing');

  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(yamlFile, 'utf8'));
  } catch (err) {
    throw new PersonaFileError(yamlFile, `invalid YAML: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new PersonaFileError(yamlFile, 'must be a YAML mapping');
  }
  if ('prompt_md' in raw) throw new PersonaFileError(yamlFile, 'prompt_md belongs in prompt.md, not in persona.yaml');

  const prompt = readFileSync(promptFile, 'utf8').trim();
  if (!prompt) throw new PersonaFileError(promptFile, 'the system prompt is empty');

  let def;
  try {
    def = parsePersonaDefinition({ ...raw, prompt_md: prompt });
  } catch (err) {
    if (err instanceof PersonaValidationError) {
      throw new PersonaFileError(err.field === 'prompt_md' ? promptFile : yamlFile, err.message);
    }
    throw err;
  }
  if (name !== def.persona_key && name !== personaIdOf(def)) {
    throw new PersonaFileError(yamlFile, `persona_key "${def.persona_key}" does not match its directory "${name}"`);
  }
  return {
    ...def,
    id: uuidv5(`builtin:${personaIdOf(def)}`, BUILTIN_ID_NAMESPACE),
    org_id: null,
    scope: 'builtin',
    created_at: BUILTIN_TIMESTAMP,
    updated_at: BUILTIN_TIMESTAMP,
  };
}

/**
 * Reads every persona directory under `dir` (`<key>/` or `<key>@<version>/`, each with
 * persona.yaml and prompt.md). Throws PersonaFileError naming the file on any problem.
 */
export function loadBuiltinPersonas(dir: string = BUILTIN_PERSONAS_DIR): BuiltinPersona[] {
  if (!existsSync(dir)) throw new PersonaFileError(dir, 'the built-in personas directory is missing');
  const names = readdirSync(dir)
    .filter((n) => !n.startsWith('.') && statSync(join(dir, n)).isDirectory())
    .sort();
  const out: BuiltinPersona[] = [];
  const seen = new Set<string>();
  for (const name of names) {
    const p = loadOne(dir, name);
    const id = personaIdOf(p);
    if (seen.has(id)) throw new PersonaFileError(join(dir, name, 'persona.yaml'), `${id} is defined twice`);
    seen.add(id);
    out.push(p);
  }
  return out;
}

/** The built-in layer, frozen: built-ins are read-only. */
export class BuiltinPersonaSource extends PersonaLayer<BuiltinPersona> {
  constructor(personas: readonly BuiltinPersona[]) {
    super('builtin', personas.map((p) => deepFreeze(structuredClone(p))));
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

let shipped: BuiltinPersonaSource | null = null;

/** The shipped built-in personas, loaded and validated on first use. */
export function builtinPersonaSource(): BuiltinPersonaSource {
  if (!shipped) {
    const source = new BuiltinPersonaSource(loadBuiltinPersonas());
    if (!source.find(DEFAULT_PERSONA_KEY, null)) {
      throw new PersonaFileError(BUILTIN_PERSONAS_DIR, `no active "${DEFAULT_PERSONA_KEY}" persona`);
    }
    shipped = source;
  }
  return shipped;
}

/** Resolves `key` (latest version) or `key@version` among the built-ins; unknown → null. */
export function resolvePersonaId(input: string): { persona_id: string; persona: BuiltinPersona } | null {
  const ref = parsePersonaRef(input);
  if (!ref) return null;
  const persona = builtinPersonaSource().find(ref.key, ref.version);
  return persona ? { persona_id: personaIdOf(persona), persona } : null;
}

/** The built-in `default` persona (an account or platform `default` replaces it; see resolveDefaultPersona). */
export function defaultPersona(): BuiltinPersona {
  return builtinPersonaSource().find(DEFAULT_PERSONA_KEY, null)!;
}

