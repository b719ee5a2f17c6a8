#!/usr/bin/env node
// The `arkloop` command: runs the compiled code in dist/ (built by `npm install` through the
// prepare script, or `npm run build`).
import '../dist/cli/run.js';
