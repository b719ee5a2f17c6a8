// The Dockerfile and the compose example cannot be built or started on this machine (no Docker
// daemon), so they are linted instead: dockerfile-utils (the Dockerfile language server's linter)
// and dclint (the compose file against the Compose schema and its rules). A finding fails the test.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const binOf = (pkg: string, rel: string) => join(dirname(require.resolve(`${pkg}/package.json`)), rel);

function run(bin: string, args: string[]): { code: number | null; out: string } {
  const res = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  return { code: res.status, out: `${res.stdout}${res.stderr}` };
}

describe('deployment files', () => {
  it('the Dockerfile lints clean (multi-stage, non-root, HEALTHCHECK on /readyz)', () => {
    const { code, out } = run(binOf('dockerfile-utils', 'bin/dockerfile-utils'), ['lint', 'Dockerfile']);
    assert.equal(code, 0, out);
    assert.doesNotMatch(out, /error|warning/i, out);
    const file = readFileSync('Dockerfile', 'utf8');
    assert.ok((file.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage');
    assert.match(file, /^USER node$/m, 'runs as a non-root user');
    assert.match(file, /^HEALTHCHECK [\s\S]*\/readyz/m, 'HEALTHCHECK on /readyz');
  });

  it('the compose example lints clean', () => {
    const { code, out } = run(binOf('dclint', 'bin/dclint.cjs'), ['deploy/compose.yaml']);
    assert.equal(code, 0, out);
  });
});
