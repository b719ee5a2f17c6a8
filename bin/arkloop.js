#!/usr/bin/env node
// The `arkloop` command. Runs the compiled code in dist/ (built by `npm install` via the
// prepare script, or `npm run build`).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`arkloop: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
