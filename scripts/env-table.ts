// `npm run docs:env`: writes the generated environment-variable table into README.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { withEnvTable } from '../src/config/env-table.js';

const file = new URL('../README.md', import.meta.url);
const before = readFileSync(file, 'utf8');
const after = withEnvTable(before);
if (after !== before) writeFileSync(file, after);
console.log(after === before ? 'README.md: table up to date' : 'README.md: table rewritten');
