// The client verbs of `arkloop`: login, logout, chat, threads list, runs list, runs watch. Each
// parses its own options (node:util parseArgs) and answers --help; failures print the API's
// message and code and give a non-zero exit status (1; 2 for a usage error).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ApiError, DEFAULT_SERVER, clientFor, describeError, errorFromResponse, normalizeServer, notSignedIn, sessionFrom } from './api.js';
import { chat } from './chat.js';
import { configDir, deleteSession, readSession, sessionPath, writeSession } from './config-store.js';
import { httpRequest } from './http.js';
import { LineReader, askHidden, readAllStdin } from './prompt.js';
import { rendererFor, type OutputFormat } from './render.js';
import { ClientExit, followRun } from './run-follow.js';
import { envValue } from '../../config/env.js';

const SERVER_HELP = `  --server URL         the API (default: $ARKLOOP_SERVER, else the server of your login, else ${DEFAULT_SERVER})`;
const AUTH_HELP = `credentials: $ARKLOOP_TOKEN (an access token or an al_ API key), else the session of \`arkloop login\`.`;

const HELP: Record<string, string> = {
  login: `usage: arkloop login [--server URL] [--login NAME] [--password-stdin]

Signs in and keeps the session (server and refresh token) in ${'$'}ARKLOOP_CONFIG_DIR, else
${'$'}XDG_CONFIG_HOME/arkloop, else ~/.config/arkloop (file credentials.json, mode 0600).
Access tokens are then refreshed silently.

${SERVER_HELP}
  --login NAME         login or email (asked on the terminal when missing)
  --password-stdin     read the password from stdin instead of asking (for scripts)
  -h, --help           show this text`,
  logout: `usage: arkloop logout

Ends the stored session on the server and deletes it from the config directory.

  -h, --help           show this text`,
  chat: `usage: arkloop chat [--thread ID] [--persona KEY] [--model PROVIDER^MODEL] [--once "message"] [--output text|stream-json]

Chats with an agent. Without --once: an interactive session (type /exit or Ctrl-D to quit).
Answers stream as they arrive; a tool approval or an input request is asked inline.
Ctrl-C cancels the running answer; a second Ctrl-C quits.

  --thread ID          continue this thread (default: start a new one)
  --persona KEY        persona for the runs (key or key@version)
  --model SELECTOR     model selector, provider_name^model_name or a model name
  --once MESSAGE       send one message, show the answer, exit (status 1 if the run failed)
  --output FORMAT      text (default) or stream-json: one JSON event per line on stdout
${SERVER_HELP}
  -h, --help           show this text

${AUTH_HELP}`,
  threads: `usage: arkloop threads list [--limit N] [--json]

Lists your threads, newest first.

  --limit N            how many (default 20, max 200)
  --json               print the API's JSON array
${SERVER_HELP}
  -h, --help           show this text

${AUTH_HELP}`,
  runs: `usage: arkloop runs list [--limit N] [--status STATUS] [--thread ID] [--json]
       arkloop runs watch RUN_ID [--output text|stream-json]

list    runs you can see, newest first (--status running|waiting_for_input|completed|failed|cancelled)
watch   follows a run, even one started elsewhere, from its start until it ends; exits 0 if it
        completed, 1 otherwise. On a terminal, approvals and input requests are asked inline.

  --limit N            how many (default 20, max 200)
  --json               print the API's JSON array (list)
  --output FORMAT      text (default) or stream-json (watch)
${SERVER_HELP}
  -h, --help           show this text

${AUTH_HELP}`,
};

const COMMON = {
  server: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, positionals = false) {
  try {
    return parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: positionals, strict: true });
  } catch (err) {
    throw new ClientExit(2, `${(err as Error).message}`);
  }
}

function outputFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === 'text' || value === 'stream-json') return value ?? 'text';
  throw new ClientExit(2, `--output must be text or stream-json, got "${value}"`);
}

function limitOf(value: string | undefined): string {
  const n = Number(value ?? 20);
  if (!Number.isInteger(n) || n < 1 || n > 200) throw new ClientExit(2, '--limit must be an integer from 1 to 200');
  return String(n);
}

async function login(args: string[]): Promise<number> {
  const { values } = parse(args, { login: { type: 'string' }, 'password-stdin': { type: 'boolean' } });
  if (values.help) return help('login');
  const server = normalizeServer(values.server || envValue(process.env, 'ARKLOOP_SERVER') || readSession()?.server || DEFAULT_SERVER);
  const interactive = Boolean(process.stdin.isTTY);
  let name = values.login;
  if (!name) {
    if (!interactive) throw new ClientExit(2, '--login is required when stdin is not a terminal');
    const reader = new LineReader(process.stderr, () => process.exit(130));
    name = (await reader.ask(`login for ${server}: `)) ?? '';
    reader.close();
  }
  let password: string;
  if (values['password-stdin']) password = (await readAllStdin()).replace(/\r?\n$/, '');
  else if (interactive) password = await askHidden('password: ');
  else throw new ClientExit(2, 'use --password-stdin when stdin is not a terminal');
  if (!name.trim() || !password) throw new ClientExit(2, 'login and password are required');
  const res = await httpRequest(`${server}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login: name.trim(), password }),
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) throw await errorFromResponse(res);
  writeSession(await sessionFrom(server, res, name.trim()));
  process.stdout.write(`signed in to ${server} as ${name.trim()} (session kept in ${sessionPath()})\n`);
  return 0;
}

async function logout(args: string[]): Promise<number> {
  const { values } = parse(args, {});
  if (values.help) return help('logout');
  const stored = readSession();
  if (!stored) {
    process.stdout.write(`not signed in (no session in ${configDir()})\n`);
    return 0;
  }
  let status = 0;
  try {
    await clientFor(stored.server, {}).json('POST', '/v1/auth/logout');
  } catch (err) {
    // A session the server no longer knows is as good as ended; anything else is worth saying.
    if (!(err instanceof ApiError && (err.code === 'auth.unauthorized' || err.code === 'auth.refresh_token_invalid'))) {
      process.stderr.write(`arkloop: the server did not confirm the logout: ${describeError(err)}\n`);
      status = 1;
    }
  }
  deleteSession();
  process.stdout.write(`signed out of ${stored.server}\n`);
  return status;
}

async function chatCommand(args: string[]): Promise<number> {
  const { values } = parse(args, {
    thread: { type: 'string' },
    persona: { type: 'string' },
    model: { type: 'string' },
    once: { type: 'string' },
    output: { type: 'string' },
  });
  if (values.help) return help('chat');
  const output = outputFormat(values.output);
  const api = clientFor(values.server);
  if (!api.hasCredentials) throw notSignedIn();
  return chat(api, { thread: values.thread, persona: values.persona, model: values.model, once: values.once, output });
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

async function threads(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { limit: { type: 'string' }, json: { type: 'boolean' } }, true);
  if (values.help || positionals[0] !== 'list' || positionals.length > 1) return help('threads', values.help ? 0 : 2);
  const list = await clientFor(values.server).json<any[]>('GET', `/v1/threads?limit=${limitOf(values.limit)}`);
  if (values.json) process.stdout.write(JSON.stringify(list, null, 2) + '\n');
  else if (!list.length) process.stdout.write('no threads\n');
  else
    process.stdout.write(
      table([
        ['ID', 'UPDATED', 'ACTIVE RUN', 'TITLE'],
        ...list.map((t) => [t.id, t.updated_at, t.active_run_id ?? '-', (t.starred ? '★ ' : '') + (t.title ?? '(untitled)')]),
      ]),
    );
  return 0;
}

async function runs(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    { limit: { type: 'string' }, status: { type: 'string' }, thread: { type: 'string' }, json: { type: 'boolean' }, output: { type: 'string' } },
    true,
  );
  const [sub, runId, ...rest] = positionals;
  if (values.help) return help('runs');
  const api = clientFor(values.server);
  if (sub === 'list' && !runId) {
    const q = new URLSearchParams({ limit: limitOf(values.limit) });
    if (values.status) q.set('status', values.status);
    if (values.thread) q.set('thread_id', values.thread);
    const list = await api.json<any[]>('GET', `/v1/runs?${q}`);
    if (values.json) process.stdout.write(JSON.stringify(list, null, 2) + '\n');
    else if (!list.length) process.stdout.write('no runs\n');
    else
      process.stdout.write(
        table([
          ['RUN', 'STATUS', 'CREATED', 'THREAD', 'MODEL', 'TOKENS IN/OUT'],
          ...list.map((r) => [r.run_id, r.status, r.created_at, r.thread_id, r.model ?? '-', `${r.total_input_tokens}/${r.total_output_tokens}`]),
        ]),
      );
    return 0;
  }
  if (sub === 'watch' && runId && !rest.length) {
    const renderer = rendererFor(outputFormat(values.output));
    const promptOut = values.output === 'stream-json' ? process.stderr : process.stdout;
    let reader: LineReader | null = null;
    const getReader = process.stdin.isTTY ? () => (reader ??= new LineReader(promptOut, () => process.exit(130))) : null;
    try {
      const end = await followRun({ api, renderer, reader: getReader }, runId);
      return end?.type === 'run.completed' ? 0 : 1;
    } finally {
      (reader as LineReader | null)?.close();
    }
  }
  return help('runs', 2);
}

function help(verb: string, exitCode = 0): number {
  (exitCode ? process.stderr : process.stdout).write(HELP[verb] + '\n');
  return exitCode;
}

const VERBS: Record<string, (args: string[]) => Promise<number>> = { login, logout, chat: chatCommand, threads, runs };

/** Runs a client verb; resolves to the process exit status. */
export async function runClientCommand(verb: string, args: string[]): Promise<number> {
  try {
    return await VERBS[verb](args);
  } catch (err) {
    const code = err instanceof ClientExit ? err.exitCode : ((err as { exitCode?: number }).exitCode ?? 1);
    process.stderr.write(`arkloop ${verb}: ${describeError(err)}\n`);
    if (code === 2) process.stderr.write(`see: arkloop ${verb} --help\n`);
    return code;
  }
}
