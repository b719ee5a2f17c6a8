// Real MCP servers for the MCP tests: the npm reference servers (server-everything over stdio
// or streamable HTTP, server-memory over stdio) and the misbehaving test server of
// mcp-test-server.mjs, plus process checks (is a pid still alive).
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, sleep } from './processes.js';

const require = createRequire(import.meta.url);
const packageDir = (name: string) => dirname(require.resolve(`${name}/package.json`));

export const EVERYTHING_BIN = join(packageDir('@modelcontextprotocol/server-everything'), 'dist/index.js');
export const MEMORY_BIN = join(packageDir('@modelcontextprotocol/server-memory'), 'dist/index.js');
export const TEST_SERVER_BIN = join(dirname(fileURLToPath(import.meta.url)), 'mcp-test-server.mjs');

/** Body of a stdio config running `node <bin> ...args`. */
export function stdioConfig(name: string, bin: string, args: string[] = [], extra: Record<string, unknown> = {}) {
  return { name, transport: 'stdio', command: process.execPath, args: [bin, ...args], ...extra };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits until `pid` has exited; false after `ms`. */
export async function waitGone(pid: number, ms = 10_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

export interface HttpMcpServer {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** server-everything on a free port: streamable HTTP (`/mcp`) or HTTP with SSE (`/sse`). */
export async function startEverythingHttp(mode: 'streamableHttp' | 'sse' = 'streamableHttp'): Promise<HttpMcpServer> {
  const port = await freePort();
  const child = spawn(process.execPath, [EVERYTHING_BIN, mode], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server-everything did not listen within 30 s: ${err.slice(-500)}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/(listening|running) on port/.test(err)) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`server-everything exited (${code}): ${err.slice(-500)}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}/${mode === 'sse' ? 'sse' : 'mcp'}`,
    child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
