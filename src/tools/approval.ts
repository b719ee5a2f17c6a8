// Tool approval (api.md §27.5a): which calls wait for a person, and the hash that binds an
// approval to the exact arguments. The canonical JSON is written here because the contract
// sorts object keys by Unicode code point, which neither JSON.stringify nor RFC 8785
// libraries (UTF-16 code units) do.
import { createHash } from 'node:crypto';
import { ASK_USER_TOOL_NAME } from './builtins.js';
import { matchesToolPattern } from './policy.js';

/**
 * An offered tool matched by the effective `tool_approval` list. `ask_user` never is (decided):
 * it already waits for a person.
 */
export function needsApproval(name: string, approvalList: readonly string[]): boolean {
  return name !== ASK_USER_TOOL_NAME && approvalList.some((p) => matchesToolPattern(name, p));
}

function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** JSON with object keys sorted by code point at every depth and no whitespace. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => byCodePoint(a, b));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** `arguments_sha256`: lowercase hex SHA-256 of the canonical JSON, UTF-8. */
export function argumentsSha256(args: unknown): string {
  return createHash('sha256').update(canonicalJson(args), 'utf8').digest('hex');
}

export function approvalPrompt(toolName: string): string {
  return `Allow ${toolName} to run with these arguments?`;
}
