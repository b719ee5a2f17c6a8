// The `arkloop` command compiled once per test file, for tests that start it many times: esbuild
// bundles src/cli/run.ts (about a second) into node_modules/.cache, where the bundle's package
// imports resolve against this checkout's node_modules. Each start then costs what Node's own
// start-up costs, instead of the second tsx needs to load its compiler.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

export interface CliBuild {
  /** The node arguments that run `arkloop` (append the command's own). */
  entry: string[];
  remove(): void;
}

export async function buildCli(): Promise<CliBuild> {
  const cache = join(process.cwd(), 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const outdir = mkdtempSync(join(cache, 'arkloop-cli-'));
  await build({
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
