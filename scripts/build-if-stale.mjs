#!/usr/bin/env node
// `npm start` runs this first: it builds (`npm run build`, i.e. tsc) only when an input of the
// build is newer than the last build, so a start with nothing changed skips the ~5 s of tsc.
//
// Inputs: every file and directory under src/ (a directory's mtime changes when a file in it
// is added, removed or renamed), tsconfig.json and package.json. migrations/ is not an input:
// the migrator reads the SQL files from there at run time.
// Stamp: the incremental build info file named in tsconfig.json (dist/.tsbuildinfo), which
// every tsc run writes when its output changes. After a build this script sets the stamp's
// mtime to the moment the build started, so a file saved during the build counts as newer; a
// failed build sets it to 1970, so the next start builds (and reports the errors) again.
import { existsSync, readFileSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

function readCompilerOptions() {
  try {
    return JSON.parse(readFileSync('tsconfig.json', 'utf8')).compilerOptions ?? {};
  } catch {
    return null; // e.g. comments in tsconfig.json: no stamp known, so always build
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

/** Why a build is needed, or null when the build output is up to date. */
function staleness(stamp, outDir) {
  if (!stamp) return 'no tsBuildInfoFile in tsconfig.json to compare against';
  const built = statSync(stamp, { throwIfNoEntry: false });
  if (!built || !existsSync(join(outDir, 'cli', 'run.js'))) return 'no build yet';
  const inputs = Math.max(newest('src'), newest('tsconfig.json'), newest('package.json'));
  return inputs > built.mtimeMs ? 'sources changed since the last build' : null;
}

const opts = readCompilerOptions();
const outDir = opts?.outDir ?? 'dist';
const stamp = opts?.incremental || opts?.composite ? opts.tsBuildInfoFile : null;
const reason = staleness(stamp, outDir);
if (reason === null) process.exit(0);

process.stderr.write(`arkloop: ${reason}; building (tsc)…\n`);
const started = new Date();
// `npm run build` keeps the build command in one place (package.json).
const npm = process.env.npm_execpath;
const res = npm
  ? spawnSync(process.execPath, [npm, 'run', 'build', '--silent'], { stdio: 'inherit' })
  : spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit', shell: process.platform === 'win32' });
const ok = res.status === 0;
if (stamp && existsSync(stamp)) {
  const t = ok ? started : new Date(0);
  utimesSync(stamp, t, t);
}
if (!ok) {
  process.stderr.write('arkloop: the build failed; fix the errors above and run `npm start` again\n');
  process.exit(res.status ?? 1);
}
