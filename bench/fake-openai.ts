// A local OpenAI-compatible upstream for the worker_runs bench (`--route provider`): streamed Chat
// Completions answering exactly what the built-in stub answers ("[stub] " + the last user
// message, one chunk per word, usage in the last chunk), so both routes are checked by the same
// answer and differ only by what routing through a configured provider costs: the catalogue
// lookup, key decryption, the OpenAI SDK, an HTTP round trip and the SSE parse.
//
//   node --import tsx bench/fake-openai.ts <port>     (answers /readyz when listening)
//
// Hand-written on purpose: it is a few lines of the Chat Completions wire format, and running it
// in its own process keeps its CPU out of both the app and the load generator.
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: fake-openai.ts <port>\n');
  process.exit(2);
}

const STUB_PREFIX = '[stub] ';

function lastUserText(body: { messages?: Array<{ role?: string; content?: unknown }> }): string {
  const msgs = body.messages ?? [];
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i];
    if (m.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    if (Array.isArray(m.content)) return m.content.map((p: { text?: string }) => p.text ?? '').join('');
  }
  return '';
}

let seq = 0;
const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/readyz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  if (req.method === 'GET' && req.url === '/models') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'gpt-bench', object: 'model', created: 0, owned_by: 'bench' }] }));
    return;
  }
  if (req.method !== 'POST' || req.url !== '/chat/completions') {
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body: { model?: string; messages?: Array<{ role?: string; content?: unknown }> };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'bad json', type: 'invalid_request_error' } }));
      return;
    }
    const id = `chatcmpl-bench-${++seq}`;
    const model = body.model ?? 'gpt-bench';
    const text = STUB_PREFIX + lastUserText(body);
    const words = text.match(/\S+\s*|\s+/g) ?? [];
    const frame = (choices: unknown[], usage: unknown = null) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 0, model, choices, usage })}\n\n`;
    let out = frame([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
    for (const w of words) out += frame([{ index: 0, delta: { content: w }, finish_reason: null }]);
    out += frame([{ index: 0, delta: {}, finish_reason: 'stop' }]);
    const promptTokens = Math.ceil(JSON.stringify(body.messages ?? []).length / 4);
    out += frame([], { prompt_tokens: promptTokens, completion_tokens: Math.ceil(text.length / 4), total_tokens: promptTokens + Math.ceil(text.length / 4) });
    out += 'data: [DONE]\n\n';
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.end(out);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
