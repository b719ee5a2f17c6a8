// Process entry for the `arkloop` command (bin/arkloop.js loads the compiled copy).
import { main } from './main.js';

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`arkloop: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
