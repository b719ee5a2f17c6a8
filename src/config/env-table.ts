// Renders the §29 environment-variable table of README.md from the registry (src/config/env.ts)
// and the settings registry; `npm run docs:env` writes it between the markers, and
// test/env-table.test.ts fails when README differs.
import { ENV_VARS, settingEnvVars } from './env.js';

export const TABLE_START = '<!-- env-table:start -->';
export const TABLE_END = '<!-- env-table:end -->';

const cell = (s: string) => s.replace(/\|/g, '\\|');
/** Values in code style; prose defaults ("generated (embedded)") and '—' as they are. */
const code = (s: string) => (s === '—' || / /.test(s) && !s.startsWith('{') ? s : '`' + s + '`');

export function renderEnvTable(): string {
  const rows = ['| Variable | Default | Meaning |', '|---|---|---|'];
  for (const v of ENV_VARS) {
    if (v.hidden) continue;
    const names = code(v.name) + (v.aliases?.length ? ` (alias ${v.aliases.map(code).join(', ')})` : '');
    rows.push(`| ${names} | ${cell(code(v.default))} | ${cell(v.meaning)} |`);
  }
  const settings = ['', 'Platform settings forced by environment (§28.1; `ARKLOOP_` + the key upper-cased, `.` → `_`):', '',
    '| Variable | Setting | Default | Meaning |', '|---|---|---|---|'];
  for (const s of settingEnvVars()) {
    settings.push(`| ${s.names.map(code).join(', ')} | \`${s.key}\` | ${cell(s.default === '' ? '—' : code(s.default))} | ${cell(s.meaning)} |`);
  }
  return [...rows, ...settings].join('\n');
}

/** `readme` with the text between the markers replaced by the generated table. */
export function withEnvTable(readme: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the ${TABLE_START} … ${TABLE_END} markers`);
  return readme.slice(0, start + TABLE_START.length) + '\n' + renderEnvTable() + '\n' + readme.slice(end);
}
