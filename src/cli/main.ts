// The `arkloop` command: server roles and maintenance verbs, and the client verbs (login, chat,
// threads, runs) that talk to an API over HTTP. Only the chosen side is imported (lazily), so a
// client verb starts in about the time Node itself takes.
import { ConfigError } from '../lib/config-error.js';

const HELP = `usage: arkloop <command>

server commands:
  serve     run the API and a worker in one process; embedded database by default
  api       run only the API (workers run elsewhere: arkloop worker)
  worker    run only workers (needs ARKLOOP_DATABASE_URL to share the database with API processes)
  gateway   run the gateway (rate limits, access log) in front of ARKLOOP_GATEWAY_UPSTREAM
  migrate   apply database migrations and exit

client commands (talk to a running API):
  login     sign in and keep the session in the config directory
  logout    end the session and forget it
  chat      chat with an agent (interactive, or --once "message")
  threads   list your threads
  runs      list runs, or watch one until it ends

  help      show this text; arkloop <command> --help shows a command's options

server configuration comes from ARKLOOP_* environment variables (see README.md).`;

const CLIENT_VERBS = new Set(['login', 'logout', 'chat', 'threads', 'runs']);

export async function main(argv: string[]): Promise<void> {
  const cmd = argv[0] ?? 'serve';
  if (CLIENT_VERBS.has(cmd)) {
    const { runClientCommand } = await import('./client/commands.js');
    const code = await runClientCommand(cmd, argv.slice(1));
    // Exit now: stdin and kept-alive HTTP connections would otherwise hold the process open.
    process.stdout.write('', () => process.exit(code));
    return;
  }
  try {
    switch (cmd) {
      case 'serve':
      case 'api':
        await (await import('./server-verbs.js')).serve(cmd === 'serve');
        return;
      case 'worker':
        await (await import('./server-verbs.js')).workerCommand();
        return;
      case 'gateway':
        return (await import('./gateway-command.js')).gatewayCommand();
      case 'migrate':
        await (await import('./server-verbs.js')).migrateCommand();
        return;
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP + '\n');
        return;
      default:
        process.stderr.write(`unknown command "${cmd}"\n\n${HELP}\n`);
        process.exit(2);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`arkloop: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
