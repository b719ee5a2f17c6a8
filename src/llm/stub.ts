// The built-in stub model (DECISIONS.md "The stub model, exactly"; api.md §27.10):
// deterministic, in process, scriptable through the last user message.
import { randomBytes } from 'node:crypto';
import { abortableSleep, abortError, httpError } from './errors.js';
import type { LlmChunk, LlmMessage, LlmProvider, LlmRequest, ProviderConfig } from './types.js';
import { estimateUsage } from './usage.js';

export const STUB_PREFIX = '[stub] ';

/** One scripted step as written by the user (unknown keys are ignored). */
export interface StubStep {
  text?: string;
  tool_call?: { name: string; arguments?: Record<string, unknown> };
  error?: { status: number; message?: string };
  ask_input?: string;
  delay_ms?: number;
}

/**
 * What one model call does: wait `delayMs`, then play `step` (null: nothing, only a delay).
 * Steps that are nothing but `delay_ms` are folded into the play that follows them.
 */
export interface StubPlay {
  delayMs: number;
  step: StubStep | null;
}

/** Splits text into chunks on word boundaries, each word keeping the whitespace after it. */
export function splitWords(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

/** The steps of a `{"stub": {"steps": [...]}}` message, or null when it is not a script. */
export function parseStubScript(content: string): StubStep[] | null {
  const trimmed = content.trim();
  if (!trimmed.startsWith('{')) return null;
  let v: unknown;
  try {
    v = JSON.parse(trimmed);
  } catch {
    return null;
  }
  if (!isObject(v) || !('stub' in v)) return null;
  const stub = v.stub;
  const steps = isObject(stub) && Array.isArray(stub.steps) ? stub.steps : [];
  return steps.map((s) => (isObject(s) ? (s as StubStep) : {}));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isDelayOnly(step: StubStep): boolean {
  return step.text === undefined && step.tool_call === undefined && step.error === undefined && step.ask_input === undefined;
}

function delayOf(step: StubStep): number {
  const n = Number(step.delay_ms ?? 0);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

export function toPlays(steps: StubStep[]): StubPlay[] {
  const plays: StubPlay[] = [];
  let pending = 0;
  for (const step of steps) {
    if (isDelayOnly(step)) {
      pending += delayOf(step);
      continue;
    }
    plays.push({ delayMs: pending + delayOf(step), step });
    pending = 0;
  }
  if (pending > 0) plays.push({ delayMs: pending, step: null });
  return plays;
}

/** The play of call number `turn`: past the end, a trailing error repeats, anything else is silence. */
export function playForTurn(plays: StubPlay[], turn: number): StubPlay | null {
  if (turn < plays.length) return plays[turn];
  const last = plays[plays.length - 1];
  if (last?.step?.error) return { delayMs: delayOf(last.step), step: last.step };
  return null;
}

function lastUserMessage(messages: LlmMessage[]): string | null {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m.role === 'user') return m.content;
  }
  return null;
}

/**
 * The script of this run. A run starts (turn 0) from its last user message; later calls of the
 * same run may have a newer user message (the input given after `ask_input`), so they look
 * back for the newest script message.
 */
export function findScript(req: LlmRequest): StubStep[] | null {
  const last = lastUserMessage(req.messages);
  const direct = last === null ? null : parseStubScript(last);
  if (direct || req.turn === 0) return direct;
  for (let i = req.messages.length - 1; i >= 0; i--) {
    const m = req.messages[i];
    if (m.role !== 'user') continue;
    const steps = parseStubScript(m.content);
    if (steps) return steps;
  }
  return null;
}

export function createStubProvider(config: Pick<ProviderConfig, 'name' | 'advancedJson'>): LlmProvider {
  const rawDelay = Number(config.advancedJson?.chunk_delay_ms ?? 0);
  const chunkDelayMs = Number.isFinite(rawDelay) && rawDelay > 0 ? rawDelay : 0;
  return {
    kind: 'stub',
    name: config.name,
    stream: (req, signal) => streamStub(req, signal, chunkDelayMs),
  };
}

async function* streamStub(req: LlmRequest, signal: AbortSignal, chunkDelayMs: number): AsyncGenerator<LlmChunk> {
  if (signal.aborted) throw abortError();
  const script = findScript(req);
  if (!script) {
    const text = STUB_PREFIX + (lastUserMessage(req.messages) ?? '');
    yield* streamText(text, signal, chunkDelayMs);
    yield { type: 'usage', usage: estimateUsage(req, text.length) };
    yield { type: 'finish', reason: 'stop' };
    return;
  }

  const play = playForTurn(toPlays(script), req.turn);
  if (play && play.delayMs > 0) await abortableSleep(play.delayMs, signal);
  const step = play?.step ?? null;

  if (step?.error) {
    const status = Number(step.error.status) || 500;
    throw httpError(status, step.error.message ?? `stub error ${status}`);
  }
  if (step?.text !== undefined) {
    const text = String(step.text);
    yield* streamText(text, signal, chunkDelayMs);
    yield { type: 'usage', usage: estimateUsage(req, text.length) };
    yield { type: 'finish', reason: 'stop' };
    return;
  }
  if (step?.tool_call) {
    const name = String(step.tool_call.name ?? '');
    const args = isObject(step.tool_call.arguments) ? step.tool_call.arguments : {};
    const id = `call_${randomBytes(12).toString('hex')}`;
    yield { type: 'tool_call', call: { id, name, arguments: args } };
    yield { type: 'usage', usage: estimateUsage(req, name.length + JSON.stringify(args).length) };
    yield { type: 'finish', reason: 'tool_calls' };
    return;
  }
  if (step?.ask_input !== undefined) {
    const prompt = String(step.ask_input);
    yield { type: 'ask_input', prompt };
    yield { type: 'usage', usage: estimateUsage(req, prompt.length) };
    yield { type: 'finish', reason: 'stop' };
    return;
  }
  // Steps used up (or a trailing delay): the turn ends without output.
  yield { type: 'usage', usage: estimateUsage(req, 0) };
  yield { type: 'finish', reason: 'stop' };
}

async function* streamText(text: string, signal: AbortSignal, chunkDelayMs: number): AsyncGenerator<LlmChunk> {
  const words = splitWords(text);
  for (let i = 0; i < words.length; i++) {
    if (i > 0 && chunkDelayMs > 0) await abortableSleep(chunkDelayMs, signal);
    if (signal.aborted) throw abortError();
    yield { type: 'text', text: words[i] };
  }
}
