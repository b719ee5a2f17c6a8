// How an MCP tool is named to the model (api.md §27.5): `mcp__<config>__<tool>`, where the
// config name is lowercased with every other character turned into `_`, cut to 64 characters
// with an 8-hex-digit hash suffix when longer.
//
// Decided where the contract is silent:
//   - characters kept in the config part: a–z, 0–9, `_` and `-` (what the model APIs accept in
//     a function name); everything else, including non-ASCII letters, becomes `_`;
//   - the tool part keeps its case, and characters the model APIs refuse (`.`, `/`, spaces…)
//     become `_` too, so every offered name matches the registry's rule;
//   - a name longer than 64 is its first 55 characters, `_`, and the first 8 hex digits of the
//     SHA-256 of the whole untruncated name (so two long names differing only at the end stay
//     distinct).
import { createHash } from 'node:crypto';

export const MAX_TOOL_NAME = 64;
const HASH_DIGITS = 8;

export function configNamePart(configName: string): string {
  return configName.toLowerCase().replace(/[^a-z0-9_-]/g, '_');
}

export function toolNamePart(toolName: string): string {
  return toolName.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** The name a tool of this config is offered under. */
export function mcpToolName(configName: string, toolName: string): string {
  const full = `mcp__${configNamePart(configName)}__${toolNamePart(toolName)}`;
  if (full.length <= MAX_TOOL_NAME) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, HASH_DIGITS);
  return `${full.slice(0, MAX_TOOL_NAME - HASH_DIGITS - 1)}_${hash}`;
}
