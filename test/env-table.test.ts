// The environment-variable registry (src/config/env.ts) against the code and README.md: the
// README table must be the generated one (`npm run docs:env`), every ARKLOOP_* name the code
// mentions must be registered, and no code outside the registry reads one directly.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ENV_VARS, envValue, knownEnvNames } from '../src/config/env.js';
import { TABLE_END, TABLE_START, renderEnvTable, withEnvTable } from '../src/config/env-table.js';

function filesUnder(dir: string, ext = /\.(ts|mjs|js)$/): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && ext.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

const NAME = /ARKLOOP_[A-Z0-9_]*[A-Z0-9]/g;

describe('environment registry', () => {
  it('README.md holds the generated table between the markers', () => {
    const readme = readFileSync('README.md', 'utf8');
    assert.ok(readme.includes(TABLE_START) && readme.includes(TABLE_END), 'markers present');
    assert.equal(readme, withEnvTable(readme), 'README.md table is stale: run `npm run docs:env`');
  });

  it('the table lists every visible variable and setting variable, and hides test-only ones', () => {
    const table = renderEnvTable();
    for (const v of ENV_VARS) assert.equal(table.includes('`' + v.name + '`'), !v.hidden, v.name);
    assert.match(table, /`ARKLOOP_REGISTRATION_MODE` \| `registration\.mode`/);
    assert.match(table, /`ARKLOOP_LIMIT_CONCURRENT_RUNS`, `ARKLOOP_MAX_CONCURRENT_RUNS_PER_ACCOUNT`/);
  });

  it('every ARKLOOP_* name in src/ is registered', () => {
    const known = knownEnvNames();
    const missing: string[] = [];
    for (const file of filesUnder('src')) {
      for (const name of readFileSync(file, 'utf8').match(NAME) ?? []) if (!known.has(name)) missing.push(`${file}: ${name}`);
    }
    assert.deepEqual(missing, [], 'add them to src/config/env.ts');
  });

  it('every ARKLOOP_* variable read by tests, benches and scripts is registered', () => {
    const known = knownEnvNames();
    const missing: string[] = [];
    for (const file of [...filesUnder('test'), ...filesUnder('bench'), ...filesUnder('scripts')]) {
      for (const m of readFileSync(file, 'utf8').matchAll(/env\.(ARKLOOP_[A-Z0-9_]+)/g)) if (!known.has(m[1]!)) missing.push(`${file}: ${m[1]}`);
    }
    assert.deepEqual(missing, []);
  });

  it('src/ reads ARKLOOP_* variables only through envValue', () => {
    const direct: string[] = [];
    for (const file of filesUnder('src')) {
      if (file === join('src', 'config', 'env.ts')) continue;
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        if (/env\.ARKLOOP_|env\[['"`]ARKLOOP_|process\.env\.[A-Z]|process\.env\[/.test(line)) direct.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(direct, []);
  });

  it('envValue refuses an unregistered name and treats empty as unset', () => {
    assert.throws(() => envValue({ ARKLOOP_NOT_A_THING: 'x' }, 'ARKLOOP_NOT_A_THING'), /not in the environment registry/);
    assert.equal(envValue({ ARKLOOP_LOG_LEVEL: '' }, 'ARKLOOP_LOG_LEVEL'), undefined);
    assert.equal(envValue({ ARKLOOP_RATELIMIT_CAPACITY: '5' }, 'ARKLOOP_RATELIMIT_CAPACITY'), '5');
  });
});
