#!/usr/bin/env node
// A tiny MCP server over stdio for the MCP runtime tests, built with the official SDK's
// McpServer: the misbehaviours a real server can show, one tool each. Plain JavaScript so it
// starts with bare `node` (no TypeScript loader), which keeps every spawn in the tests quick.
//   echo {text}      → "echo: <text>"
//   pid              → this process's pid
//   env              → JSON of this process's environment
//   structured       → structuredContent {"answer": 42} (and a text item)
//   fail             → isError with the text "it failed on purpose"
//   hang             → never answers
//   exit             → the process exits while the call is in flight
//   malformed        → answers the call with a result that is not a CallToolResult
//   rpc_error        → answers the call with a JSON-RPC error
//   stderr_flood     → writes 2 MB to stderr, then answers "flooded"
//   stdout_flood     → writes 8 MB to stdout without a line end (over the client's limit)
// (A tool without an input schema gets the request context as its first argument.)
// MCP_TEST_TOOLS (comma-separated) limits the tools listed, so a test can change what a
// config offers by editing its env.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const only = process.env.MCP_TEST_TOOLS ? new Set(process.env.MCP_TEST_TOOLS.split(',')) : null;
const server = new McpServer({ name: 'arkloop-test-server', version: '1.0.0' });
const text = (t) => ({ content: [{ type: 'text', text: t }] });
const never = () => new Promise(() => undefined);
/** Writes one raw JSON-RPC line answering the request in flight, bypassing the SDK's checks. */
const raw = (message) => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', ...message }) + '\n');

const tools = {
  echo: [{ description: 'Echoes the text', inputSchema: { text: z.string() } }, async ({ text: t }) => text(`echo: ${t}`)],
  pid: [{ description: 'The server process id' }, async () => text(String(process.pid))],
  env: [{ description: 'The server environment' }, async () => text(JSON.stringify(process.env))],
  structured: [{ description: 'Structured content' }, async () => ({ content: [{ type: 'text', text: '{"answer":42}' }], structuredContent: { answer: 42 } })],
  fail: [{ description: 'Reports an error' }, async () => ({ ...text('it failed on purpose'), isError: true })],
  hang: [{ description: 'Never answers' }, never],
  exit: [
    { description: 'Exits mid-call' },
    async () => {
      setTimeout(() => process.exit(3), 20);
      return never();
    },
  ],
  malformed: [
    { description: 'Answers with a malformed result' },
    async (extra) => {
      raw({ id: extra.requestId, result: { content: 'not a list' } });
      return never();
    },
  ],
  rpc_error: [
    { description: 'Answers with a JSON-RPC error' },
    async (extra) => {
      raw({ id: extra.requestId, error: { code: -32603, message: 'the server broke on purpose' } });
      return never();
    },
  ],
  stderr_flood: [
    { description: 'Floods stderr' },
    async () => {
      const line = 'x'.repeat(999) + '\n';
      for (let i = 0; i < 2000; i++) process.stderr.write(line);
      return text('flooded');
    },
  ],
  stdout_flood: [
    { description: 'Floods stdout' },
    async () => {
      const chunk = 'y'.repeat(1024 * 1024);
      for (let i = 0; i < 8; i++) process.stdout.write(chunk);
      return never();
    },
  ],
};

for (const [name, [config, handler]] of Object.entries(tools)) {
  if (!only || only.has(name)) server.registerTool(name, config, handler);
}
await server.connect(new StdioServerTransport());
