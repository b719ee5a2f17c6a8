// How a run's events are shown. `text`: the answer streams as it arrives, tool calls and results
// on one short line each, notes (retries, failures) on stderr. `stream-json`: every event as one
// JSON line on stdout, for scripts.
import type { RunEvent } from './sse.js';

export type OutputFormat = 'text' | 'stream-json';

export interface Renderer {
  event(ev: RunEvent): void;
  /** A line of the client's own (a prompt answer, a notice), kept apart from the answer text. */
  note(text: string): void;
  /** Ends a partly written line before something else is printed. */
  breakLine(): void;
}

/**
 * Model and tool output without terminal control characters (ESC, CSI, ...), which could
 * otherwise move the cursor, rewrite earlier lines or set the clipboard. Tabs and newlines stay.
 */
export function withoutControls(s: string): string {
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, '');
}

const MAX_ARGS = 120;
const MAX_RESULT = 160;

function compact(value: unknown, max: number): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value) ?? 'null';
  const one = s.replace(/\s+/g, ' ');
  return one.length > max ? one.slice(0, max - 1) + '…' : one;
}

export class TextRenderer implements Renderer {
  private midLine = false;
  private readonly tty: boolean;

  constructor(
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {
    this.tty = Boolean((out as { isTTY?: boolean }).isTTY);
  }

  /** On a terminal, dimmed and with control characters removed. */
  private dim(s: string): string {
    return this.tty ? `\x1b[2m${withoutControls(s)}\x1b[22m` : s;
  }

  private line(s: string, to: NodeJS.WritableStream = this.out): void {
    this.breakLine();
    to.write(s + '\n');
  }

  breakLine(): void {
    if (this.midLine) this.out.write('\n');
    this.midLine = false;
  }

  /** On a terminal stdout and stderr share the screen, so a note starts on its own line there. */
  note(text: string): void {
    if (this.tty) this.breakLine();
    this.err.write(this.dim(text) + '\n');
  }

  event(ev: RunEvent): void {
    const d = ev.data ?? {};
    switch (ev.type) {
      case 'message.delta':
        if (d.channel === 'thinking' || !d.content_delta) return;
        this.out.write(this.tty ? withoutControls(String(d.content_delta)) : d.content_delta);
        this.midLine = !String(d.content_delta).endsWith('\n');
        return;
      case 'tool.call':
        this.line(this.dim(`⚙ ${d.tool_name}(${compact(d.arguments ?? {}, MAX_ARGS)})`));
        return;
      case 'tool.result':
        this.line(this.dim(d.error ? `  ✗ ${d.error.error_class}: ${compact(d.error.message, MAX_RESULT)}` : `  ↳ ${compact(d.result, MAX_RESULT)}`));
        return;
      case 'tool.denied':
        this.line(this.dim(`  ✗ ${d.tool_name} not run: ${compact(d.message ?? d.error_class, MAX_RESULT)}`));
        return;
      case 'run.llm.retry':
        this.note(`(model call failed: ${d.error_class}; retry ${d.attempt}/${d.max_attempts} in ${d.delay_ms} ms)`);
        return;
      case 'run.provider_fallback':
        this.note(`(falling back from ${d.from?.provider_name} to ${d.to?.provider_name}: ${d.error_class})`);
        return;
      case 'run.completed':
        this.breakLine();
        return;
      case 'run.failed':
        this.line(`run failed: ${this.tty ? withoutControls(String(d.message)) : d.message} (${d.error_class})`, this.err);
        return;
      case 'run.cancelled':
        this.line(this.dim(`(run cancelled${d.reason && d.reason !== 'user' ? `: ${d.reason}` : ''})`), this.err);
        return;
      default:
        return;
    }
  }
}

export class JsonLinesRenderer implements Renderer {
  constructor(
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {}

  event(ev: RunEvent): void {
    this.out.write(JSON.stringify(ev) + '\n');
  }

  note(text: string): void {
    this.err.write(text + '\n');
  }

  breakLine(): void {}
}

export function rendererFor(format: OutputFormat): Renderer {
  return format === 'stream-json' ? new JsonLinesRenderer() : new TextRenderer();
}
