// The `arkloop` command compiled once per test file, for tests that start it many times: esbuild
// bundles src/cli/run.ts (about a second) into node_modules/.cache, where the bundle's package
// imports resolve against this checkout's node_modules. Each start then costs what Node's own
// start-up costs, instead of the second tsx needs to load its compiler. Meant for the client
// verbs: server code that finds files next to its own module (migrations, personas) would look
// in the wrong place from a bundle.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CliBuild {
  /** The node arguments that run `arkloop` (append the command's own). */
  entry: string[];
  remove(): void;
}

export async function buildCli(): Promise<CliBuild> {
  const cache = join(ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const outdir = mkdtempSync(join(cache, 'arkloop-cli-'));
  await build({
    absWorkingDir: ROOT,
    entryPoints: ['src/cli/run.ts'],
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outdir,
    logLevel: 'error',
  });
  return { entry: [join(outdir, 'run.js')], remove: () => rmSync(outdir, { recursive: true, force: true }) };
}
