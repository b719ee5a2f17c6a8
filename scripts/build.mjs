#!/usr/bin/env node
// Builds dist/ with tsc and records the build, so `npm start` can skip tsc when nothing changed.
//   node scripts/build.mjs             `npm run build` (and `prepare` on npm install): always build
//   node scripts/build.mjs --if-stale  build only when an input is newer than the last build
//                                      (skips the ~5 s tsc takes with nothing to do)
// `npm start` (scripts/start.mjs) calls buildIfStale() in its own process, then serves.
// Extra arguments go to tsc.
//
// Inputs: every file and directory under src/ (a directory's mtime changes when a file in it
// is added, removed or renamed), tsconfig.json and package.json. migrations/ is not an input:
// the migrator reads the SQL files from there at run time.
// Stamp: <outDir>/.build-stamp, written here after a build that succeeded, dated to the moment
// the build started (a file saved during the build still counts as newer), and removed when a
// build fails, so the next start builds (and reports the errors) again. It is not tsc's
// .tsbuildinfo: `tsc --noEmit` (npm run typecheck) rewrites that without emitting anything.
// A build run by hand with `npx tsc` leaves the stamp as it was: the next start builds once more.
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const at = (...parts) => join(root, ...parts);

function outDir() {
  try {
    return at(JSON.parse(readFileSync(at('tsconfig.json'), 'utf8')).compilerOptions?.outDir ?? 'dist');
  } catch {
    return at('dist'); // tsconfig.json with comments: assume the default layout
  }
}

/** The newest mtime (ms) of `path` and, for a directory, of everything under it. */
function newest(path) {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  let max = st.mtimeMs;
  if (st.isDirectory()) {
    for (const name of readdirSync(path)) max = Math.max(max, newest(join(path, name)));
  }
  return max;
}

/** Why a build is needed, or null when the build is up to date. */
function staleness(out, stamp) {
  const built = statSync(stamp, { throwIfNoEntry: false });
  if (!built || !existsSync(join(out, 'cli', 'run.js'))) return 'no successful build recorded';
  const inputs = Math.max(newest(at('src')), newest(at('tsconfig.json')), newest(at('package.json')));
  return inputs > built.mtimeMs ? 'sources changed since the last build' : null;
}

/** Runs tsc; returns its exit status. The stamp is written only after a build that succeeded. */
export function build(tscArgs = [], { quietFailure = false } = {}) {
  const stamp = join(outDir(), '.build-stamp');
  const started = new Date();
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const res = spawnSync(process.execPath, [tsc, '-p', at('tsconfig.json'), ...tscArgs], { stdio: 'inherit', cwd: root });
  if (res.status !== 0) {
    rmSync(stamp, { force: true });
    if (!quietFailure) process.stderr.write('arkloop: the build failed; fix the errors above and run `npm start` again\n');
    return res.status ?? 1;
  }
  closeSync(openSync(stamp, 'w'));
  utimesSync(stamp, started, started);
  return 0;
}

/** Builds only when an input changed since the last successful build; returns tsc's status (0 when nothing to do). */
export function buildIfStale() {
  const out = outDir();
  const reason = staleness(out, join(out, '.build-stamp'));
  if (reason === null) return 0;
  process.stderr.write(`arkloop: ${reason}; building (tsc)…\n`);
  return build();
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const status = args.includes('--if-stale') ? buildIfStale() : build(args, { quietFailure: true });
  process.exit(status);
}
