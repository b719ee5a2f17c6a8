// Terminal input for the client verbs: one line reader over stdin (a prompt at a time; lines a
// script pipes in before the question are queued, not lost), Ctrl-C delivered as an event, and
// a password question that does not echo.
import { createInterface, type Interface } from 'node:readline';
import { Writable } from 'node:stream';

export class LineReader {
  private readonly rl: Interface;
  private readonly queue: string[] = [];
  private waiter: ((line: string | null) => void) | null = null;
  private closed = false;

  constructor(
    private readonly output: NodeJS.WritableStream,
    onInterrupt: () => void,
  ) {
    const terminal = Boolean(process.stdin.isTTY);
    this.rl = createInterface({ input: process.stdin, output: terminal ? output : undefined, terminal });
    this.rl.on('line', (line) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        if (!terminal) output.write(line + '\n'); // a terminal echoes; piped input is shown like typed input
        w(line);
      } else this.queue.push(line);
    });
    this.rl.on('close', () => {
      this.closed = true;
      this.waiter?.(null);
      this.waiter = null;
    });
    // On a terminal readline turns Ctrl-C into this event instead of a process signal.
    this.rl.on('SIGINT', onInterrupt);
  }

  /** The next line (after showing `prompt`), or null once stdin has ended. */
  ask(prompt: string): Promise<string | null> {
    if (this.queue.length) {
      this.output.write(prompt + this.queue[0] + '\n');
      return Promise.resolve(this.queue.shift()!);
    }
    if (this.closed) return Promise.resolve(null);
    if (process.stdin.isTTY) {
      this.rl.setPrompt(prompt);
      this.rl.prompt();
    } else this.output.write(prompt);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  /** Gives up the pending question: its ask() resolves to null, as if stdin had ended. */
  abandon(): void {
    const w = this.waiter;
    this.waiter = null;
    if (w) {
      if (process.stdin.isTTY) this.output.write('\n');
      w(null);
    }
  }

  /** Shows the current prompt again (after a notice printed over it). */
  redisplay(): void {
    if (process.stdin.isTTY && this.waiter) this.rl.prompt();
  }

  close(): void {
    this.rl.close();
  }
}

/** Asks on the terminal without echoing what is typed. */
export function askHidden(prompt: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  return new Promise((resolve, reject) => {
    rl.on('SIGINT', () => {
      rl.close();
      process.stderr.write('\n');
      reject(Object.assign(new Error('interrupted'), { exitCode: 130 }));
    });
    rl.question(prompt, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
  });
}

/** Reads stdin to its end (for --password-stdin). */
export async function readAllStdin(): Promise<string> {
  let text = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) text += chunk;
  return text;
}
