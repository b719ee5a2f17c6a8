#!/usr/bin/env node
// `npm start`: builds dist/ when the sources changed since the last build (scripts/build.mjs),
// then runs `arkloop serve` in this same process: a prestart hook would cost a second Node
// start on every launch. Arguments after `npm start --` go to the arkloop command.
import { buildIfStale } from './build.mjs';

const status = buildIfStale();
if (status !== 0) process.exit(status);
await import('../dist/cli/run.js');
