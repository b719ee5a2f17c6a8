// Tool policy and execution rules of api.md §27.5 / §27.2: which tools a persona offers, how
// many calls a run may make, and how one call runs (argument check, timeout, error mapping).
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { BUILTIN_TOOL_TIMEOUT_MS } from './builtins.js';
import { ToolError, type Tool, type ToolContext } from './types.js';

// ---- offered set -------------------------------------------------------------------------

/** A policy entry matches a name exactly, or as `prefix*` every name starting with `prefix`. */
export function matchesToolPattern(name: string, pattern: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

/** Allowed by the allowlist (null = every tool, [] = none) and not matched by the denylist. */
export function isToolOffered(name: string, allowlist: readonly string[] | null, denylist: readonly string[]): boolean {
  if (allowlist !== null && !allowlist.some((p) => matchesToolPattern(name, p))) return false;
  return !denylist.some((p) => matchesToolPattern(name, p));
}

/** The tools a run offers the model, in the order given. */
export function offeredTools<T extends { name: string }>(
  all: readonly T[],
  allowlist: readonly string[] | null,
  denylist: readonly string[],
): T[] {
  return all.filter((t) => isToolOffered(t.name, allowlist, denylist));
}

// ---- budgets -----------------------------------------------------------------------------

export const TOOL_CALLS_EXHAUSTED = 'budget.tool_calls_exhausted';

export type ToolBudgetDecision =
  | { allowed: true }
  | { allowed: false; errorClass: typeof TOOL_CALLS_EXHAUSTED; message: string };

/**
 * Counts a run's tool calls against `tool_continuation_budget` (total) and
 * `per_tool_soft_limits` (per tool name). Only allowed calls are counted. Ask in the model's
 * call order so parallel calls are decided deterministically.
 */
export class ToolBudget {
  private usedTotal = 0;
  private readonly usedPerTool = new Map<string, number>();

  constructor(
    readonly total: number,
    readonly perTool: Readonly<Record<string, number>> = {},
  ) {}

  /** Decides one call of `name` and, when allowed, counts it. */
  consume(name: string): ToolBudgetDecision {
    if (this.usedTotal >= this.total) {
      return { allowed: false, errorClass: TOOL_CALLS_EXHAUSTED, message: `tool call budget of ${this.total} calls per run is used up` };
    }
    const limit = Object.hasOwn(this.perTool, name) ? this.perTool[name] : undefined;
    const usedByTool = this.usedPerTool.get(name) ?? 0;
    if (limit !== undefined && usedByTool >= limit) {
      return { allowed: false, errorClass: TOOL_CALLS_EXHAUSTED, message: `${name} may be called at most ${limit} times per run` };
    }
    this.usedTotal += 1;
    this.usedPerTool.set(name, usedByTool + 1);
    return { allowed: true };
  }

  get used(): number {
    return this.usedTotal;
  }

  get remaining(): number {
    return Math.max(0, this.total - this.usedTotal);
  }

  usedBy(name: string): number {
    return this.usedPerTool.get(name) ?? 0;
  }
}

// ---- execution ---------------------------------------------------------------------------

const ajv = new Ajv({ strict: false, allErrors: false, useDefaults: true, coerceTypes: false });
(addFormats as unknown as (a: Ajv) => void)(ajv);
/** Compiled input schemas by schema object; null when a schema does not compile. */
const validators = new WeakMap<object, ValidateFunction | null>();

function validatorFor(tool: Tool, ctx: ToolContext): ValidateFunction | null {
  let v = validators.get(tool.inputSchema);
  if (v === undefined) {
    try {
      v = ajv.compile(tool.inputSchema);
    } catch (err) {
      // A remote (MCP) schema we cannot compile should not make the tool unusable: its
      // server still checks the arguments.
      ctx.log.warn({ tool: tool.name, err: (err as Error).message }, 'tool input schema does not compile; arguments not validated');
      v = null;
    }
    validators.set(tool.inputSchema, v);
  }
  return v;
}

/**
 * Checks call arguments against the tool's input schema and returns a copy with schema
 * defaults filled in. ToolError `tool.invalid_arguments` when they are not an object or do
 * not match.
 */
export function validateToolArguments(tool: Tool, args: unknown, ctx: ToolContext): Record<string, unknown> {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    throw new ToolError('tool.invalid_arguments', `${tool.name}: arguments must be a JSON object`);
  }
  let copy: Record<string, unknown>;
  try {
    copy = structuredClone(args) as Record<string, unknown>;
  } catch {
    throw new ToolError('tool.invalid_arguments', `${tool.name}: arguments must be plain JSON`);
  }
  const validate = validatorFor(tool, ctx);
  if (validate && !validate(copy)) {
    throw new ToolError('tool.invalid_arguments', `${tool.name}: ${ajv.errorsText(validate.errors, { dataVar: 'arguments' })}`);
  }
  return copy;
}

const MAX_ERROR_MESSAGE = 1000;

function failureOf(tool: Tool, err: unknown): ToolError {
  if (err instanceof ToolError) return err;
  const text = err instanceof Error ? err.message : String(err);
  const message = `${tool.name} failed: ${text || 'unknown error'}`;
  return new ToolError('tool.execution_failed', message.length > MAX_ERROR_MESSAGE ? message.slice(0, MAX_ERROR_MESSAGE) + '…' : message);
}

/**
 * Runs one tool call: validates the arguments, applies the timeout (`tool.timeoutMs`, built-ins
 * 30 s) and the run's abort signal, and maps every failure to a ToolError — nothing else is
 * ever thrown. Timeouts are `tool.timeout` (`mcp.timeout` for MCP tools); a cancelled run
 * rejects at once with `tool.execution_failed` (the loop sees its own signal aborted). The
 * result is JSON-serialisable (`undefined` becomes null).
 */
export async function runToolWithTimeout(
  tool: Tool,
  args: unknown,
  ctx: ToolContext,
  opts: { timeoutMs?: number } = {},
): Promise<unknown> {
  const input = validateToolArguments(tool, args, ctx);
  if (ctx.signal.aborted) throw new ToolError('tool.execution_failed', `${tool.name} was not run: the run was cancelled`);

  const timeoutMs = opts.timeoutMs ?? tool.timeoutMs ?? BUILTIN_TOOL_TIMEOUT_MS;
  const controller = new AbortController();
  const stopped = new Promise<never>((_, reject) => {
    controller.signal.addEventListener(
      'abort',
      () => {
        const reason: unknown = controller.signal.reason;
        reject(reason instanceof ToolError ? reason : new ToolError('tool.execution_failed', `${tool.name} was stopped: the run was cancelled`));
      },
      { once: true },
    );
  });
  const onRunAbort = () => controller.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onRunAbort, { once: true });
  const timer = setTimeout(() => {
    const errorClass = tool.source === 'mcp' ? 'mcp.timeout' : 'tool.timeout';
    controller.abort(new ToolError(errorClass, `${tool.name} did not finish within ${timeoutMs} ms`));
  }, timeoutMs);

  try {
    const running = Promise.resolve().then(() => tool.run(input, { ...ctx, signal: controller.signal }));
    const result = await Promise.race([running, stopped]);
    return jsonResult(tool, result);
  } catch (err) {
    throw failureOf(tool, err);
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener('abort', onRunAbort);
  }
}

function jsonResult(tool: Tool, result: unknown): unknown {
  if (result === undefined) return null;
  try {
    JSON.stringify(result);
  } catch (err) {
    throw new ToolError('tool.execution_failed', `${tool.name} returned a result that is not JSON: ${(err as Error).message}`);
  }
  return result;
}

/** The result the model receives for a failed or refused call (§27.5). */
export function toolErrorResult(err: ToolError): { error: { error_class: string; message: string } } {
  return { error: { error_class: err.errorClass, message: err.message } };
}
