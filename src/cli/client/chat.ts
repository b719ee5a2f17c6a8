// `arkloop chat`: an interactive session on one thread (a new one unless --thread), or a single
// turn with --once. Each turn posts the message, starts a run and follows it (run-follow.ts).
// Ctrl-C during a run asks the API to cancel it; a second Ctrl-C (or one at the prompt, twice)
// exits with 130.
import { describeError, type ApiClient } from './api.js';
import { LineReader } from './prompt.js';
import { rendererFor, type OutputFormat, type Renderer } from './render.js';
import { ClientExit, followRun } from './run-follow.js';

export interface ChatOptions {
  thread?: string;
  persona?: string;
  model?: string;
  once?: string;
  output: OutputFormat;
}

const TITLE_MAX = 80;

class ChatSession {
  private readonly renderer: Renderer;
  private lineReader: LineReader | null = null;
  private threadId: string | null;
  private activeRun: string | null = null;
  private cancelSent = false;
  private idleInterrupts = 0;
  private readonly promptOut: NodeJS.WritableStream;

  constructor(
    private readonly api: ApiClient,
    private readonly opts: ChatOptions,
  ) {
    this.renderer = rendererFor(opts.output);
    this.threadId = opts.thread ?? null;
    // In stream-json mode stdout carries only events; questions go to stderr.
    this.promptOut = opts.output === 'stream-json' ? process.stderr : process.stdout;
  }

  reader = (): LineReader => (this.lineReader ??= new LineReader(this.promptOut, () => this.interrupt()));

  interrupt(): void {
    if (this.activeRun && !this.cancelSent) {
      this.cancelSent = true;
      this.lineReader?.abandon(); // a question of the run being cancelled
      this.renderer.note('(cancelling the run; Ctrl-C again to quit)');
      this.api.json('POST', `/v1/runs/${this.activeRun}:cancel`).catch((err) => this.renderer.note(`(cancel failed: ${describeError(err)})`));
      return;
    }
    if (!this.activeRun && this.idleInterrupts++ === 0 && !this.opts.once) {
      if (process.stdin.isTTY) this.promptOut.write('\n'); // off the prompt's line
      this.renderer.note('(Ctrl-C again to quit, or type /exit)');
      this.lineReader?.redisplay();
      return;
    }
    this.renderer.breakLine();
    process.exit(130);
  }

  private async ensureThread(firstMessage: string): Promise<string> {
    if (this.threadId) return this.threadId;
    const title = firstMessage.replace(/\s+/g, ' ').trim().slice(0, TITLE_MAX) || null;
    const thread = await this.api.json<{ id: string }>('POST', '/v1/threads', { title });
    this.threadId = thread.id;
    if (!this.opts.once) this.renderer.note(`(thread ${thread.id})`);
    return thread.id;
  }

  /** Follows a run of this session; its exit status: 0 completed, 130 cancelled here, else 1. */
  private async follow(runId: string): Promise<number> {
    this.activeRun = runId;
    this.cancelSent = false;
    try {
      const end = await followRun({ api: this.api, renderer: this.renderer, reader: this.reader, cancelling: () => this.cancelSent }, runId);
      if (end?.type === 'run.completed') return 0;
      return end?.type === 'run.cancelled' && this.cancelSent ? 130 : 1;
    } finally {
      this.activeRun = null;
      this.idleInterrupts = 0;
    }
  }

  async turn(message: string): Promise<number> {
    const threadId = await this.ensureThread(message);
    await this.api.json('POST', `/v1/threads/${threadId}/messages`, { content: message });
    const body: Record<string, string> = {};
    if (this.opts.persona) body.persona_id = this.opts.persona;
    if (this.opts.model) body.model = this.opts.model;
    const run = await this.api.json<{ run_id: string }>('POST', `/v1/threads/${threadId}/runs`, body);
    return this.follow(run.run_id);
  }

  async once(message: string): Promise<number> {
    process.on('SIGINT', () => this.interrupt());
    try {
      return await this.turn(message);
    } finally {
      this.lineReader?.close();
    }
  }

  async interactive(): Promise<number> {
    process.on('SIGINT', () => this.interrupt());
    const reader = this.reader();
    if (this.threadId) {
      const thread = await this.api.json<{ active_run_id: string | null; title: string | null }>('GET', `/v1/threads/${this.threadId}`);
      this.renderer.note(`(thread ${this.threadId}${thread.title ? `: ${thread.title}` : ''})`);
      if (thread.active_run_id) await this.follow(thread.active_run_id);
    } else this.renderer.note('(type a message; /exit or Ctrl-D to quit)');
    for (;;) {
      const line = await reader.ask('you> ');
      this.idleInterrupts = 0;
      if (line === null || ['/exit', '/quit'].includes(line.trim())) break;
      if (!line.trim()) continue;
      try {
        await this.turn(line);
      } catch (err) {
        if (err instanceof ClientExit) throw err;
        this.renderer.note(`error: ${describeError(err)}`);
      }
    }
    reader.close();
    return 0;
  }
}

export async function chat(api: ApiClient, opts: ChatOptions): Promise<number> {
  const session = new ChatSession(api, opts);
  if (opts.once !== undefined) {
    if (!opts.once.trim()) throw new ClientExit(2, '--once needs a message');
    return session.once(opts.once);
  }
  return session.interactive();
}
