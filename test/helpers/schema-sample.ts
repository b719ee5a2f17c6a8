// A valid sample value for a JSON schema (the route schemas, or the served OpenAPI document):
// the generated security test needs bodies that get past validation to the resource lookup,
// and the fuzz test mutates such a valid request one field at a time.
// Covers what the route schemas use: type, const/enum, anyOf, format, pattern, lengths, ranges.

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  default?: unknown;
  examples?: unknown[];
  [k: string]: unknown;
}

/** Values the schema cannot express but a handler checks (e.g. workspace paths start with `/`). */
const BY_NAME: Record<string, unknown> = {
  path: '/notes.md',
};

const STRINGS = ['example', 'abc', 'Example Name', 'user@example.com', '123456', 'abc-123', 'https://example.com/a'];

export const SAMPLE_UUID = '01890000-0000-7000-8000-0000000000aa';

/** The schema's branches without `null` (a nullable field samples as its value). */
function nonNull(list: JsonSchema[]): JsonSchema[] {
  return list.filter((s) => s.type !== 'null');
}

export function typeOf(schema: JsonSchema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((t) => t !== 'null');
  if (schema.type) return schema.type;
  if (schema.properties) return 'object';
  return undefined;
}

function sampleString(s: JsonSchema): string {
  switch (s.format) {
    case 'uuid':
      return SAMPLE_UUID;
    case 'date':
      return '2024-01-01';
    case 'date-time':
      return '2024-01-01T00:00:00.000Z';
    case 'email':
      return 'user@example.com';
    case 'uri':
    case 'url':
      return 'https://example.com/a';
  }
  const min = s.minLength ?? 0;
  const max = s.maxLength ?? Infinity;
  const re = s.pattern ? new RegExp(s.pattern, 'u') : null;
  const ok = (v: string) => v.length >= min && v.length <= max && (!re || re.test(v));
  const found = STRINGS.find(ok) ?? (ok('a'.repeat(Math.max(min, 1))) ? 'a'.repeat(Math.max(min, 1)) : undefined);
  if (found === undefined) throw new Error(`schema-sample: no sample string for ${JSON.stringify(s)}; add one to STRINGS`);
  return found;
}

export interface SampleOptions {
  /**
   * Also fill one optional property of the top object: a PATCH needs at least one
   * recognised field (§1.6). Plain strings and booleans are preferred over references.
   */
  oneOptional?: boolean;
  name?: string;
}

export function sampleOf(schema: JsonSchema, opts: SampleOptions = {}): unknown {
  if (opts.name && opts.name in BY_NAME) return BY_NAME[opts.name];
  if (schema.examples?.length) return schema.examples[0];
  if ('const' in schema) return schema.const;
  if (schema.enum?.length) return schema.enum.find((v) => v !== null) ?? schema.enum[0];
  const union = schema.anyOf ?? schema.oneOf;
  if (union) {
    const branches = nonNull(union);
    return branches.length ? sampleOf(branches[0], opts) : null;
  }
  if (schema.allOf?.length) return sampleOf(Object.assign({}, ...schema.allOf), opts);
  if (schema.default !== undefined && schema.default !== null) return schema.default;
  switch (typeOf(schema)) {
    case 'string':
      return sampleString(schema);
    case 'integer':
    case 'number': {
      const lo = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : 1);
      return Math.min(lo, schema.maximum ?? lo);
    }
    case 'boolean':
      return true;
    case 'null':
      return null;
    case 'array':
      return Array.from({ length: schema.minItems ?? 0 }, () => sampleOf(schema.items ?? {}));
    case 'object': {
      const props = schema.properties ?? {};
      const out: Record<string, unknown> = {};
      for (const name of schema.required ?? []) out[name] = sampleOf(props[name] ?? {}, { name });
      if (opts.oneOptional) {
        const optional = Object.keys(props).filter((n) => !(schema.required ?? []).includes(n));
        const rank = (n: string) => {
          const p = props[n];
          const t = typeOf(p) ?? typeOf(nonNull(p.anyOf ?? [])[0] ?? {});
          const f = p.format ?? nonNull(p.anyOf ?? [])[0]?.format;
          return t === 'string' && !f ? 0 : t === 'boolean' ? 1 : 2;
        };
        const pick = optional.sort((a, b) => rank(a) - rank(b))[0];
        if (pick) out[pick] = sampleOf(props[pick], { name: pick });
      }
      return out;
    }
    default:
      return 'example';
  }
}

/** A valid query for the schema: its required fields (as strings, the way a URL carries them). */
export function sampleQuery(schema: JsonSchema | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!schema?.properties) return out;
  for (const name of schema.required ?? []) out[name] = String(sampleOf(schema.properties[name], { name }));
  return out;
}
