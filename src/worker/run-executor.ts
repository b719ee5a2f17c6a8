// One `run.execute` job (api.md §27): guard, budget, input, persona, tools, route, then the
// agent loop — stream the model, run tool calls, repeat within budgets — and finish. A run
// that paused for input is resumed by a new job; its state so far is rebuilt from its events.
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { AppContext } from '../app-context.js';
import type { JobRow } from '../engine/jobs.js';
import { eventCtes, eventsOf, listRunEvents, type NewEvent, type RunEvent } from '../engine/events.js';
import { LlmError, createProvider, isAbortError, type LlmMessage, type LlmProvider, type LlmToolCall, type LlmUsage } from '../llm/index.js';
import { defaultPersona, resolvePersonaId } from '../modules/personas/builtin.js';
import { effectiveRunConfig } from '../modules/personas/effective.js';
import { resolveRoutes, type RouteCandidate } from '../modules/runs/routing.js';
import { addUsage, monthTokens, recordModelCall, usageInsertSql, type UsageRecord } from '../modules/usage/store.js';
import { ASK_USER_TOOL_NAME, askUserQuestion, askUserResult, createBuiltinToolRegistry, isAskUser } from '../tools/builtins.js';
import { ToolBudget, offeredTools, runToolWithTimeout } from '../tools/policy.js';
import { ToolError, type Tool } from '../tools/types.js';
import { finishRun, isRetryableClass, type Outcome } from './finish.js';
import { isConnectionError } from '../db/connection-errors.js';
import { DeltaBuffer } from './delta-buffer.js';
import { loadRun, type LoadedRun, type RunRecord } from './run-load.js';

const MAX_RETRY_WAIT_MS = 30_000;

/** What the run's events say happened before this job (a resume after input). */
interface PriorState {
  conversation: LlmMessage[];
  text: string;
  iterations: number;
  calls: number;
  toolCalls: number;
  routeSelected: boolean;
}

function priorState(events: RunEvent[]): PriorState {
  const conversation: LlmMessage[] = [];
  let text = '';
  let segmentText = '';
  let segmentCalls: LlmToolCall[] = [];
  let iterations = 0;
  let calls = 0;
  let toolCalls = 0;
  let routeSelected = false;
  // A model turn started but never ended: the previous worker was lost (or stopped) in the
  // middle of it before any output (otherwise the run fails with internal.worker_lost), so
  // the turn is played again — its iteration and the interrupted call are not counted.
  let openSegment = false;
  let pausedForTool = false;
  const flushAssistant = () => {
    if (segmentText || segmentCalls.length) conversation.push({ role: 'assistant', content: segmentText, toolCalls: segmentCalls.length ? segmentCalls : undefined });
    segmentText = '';
    segmentCalls = [];
  };
  for (const e of events) {
    const d = e.data as Record<string, unknown>;
    switch (e.type) {
      case 'run.route.selected':
        routeSelected = true;
        break;
      case 'run.segment.start':
        flushAssistant();
        iterations++;
        calls++;
        openSegment = true;
        break;
      case 'run.segment.end':
        openSegment = false;
        break;
      case 'run.llm.retry':
      case 'run.provider_fallback':
        calls++;
        break;
      case 'message.delta':
        if (d.channel !== 'thinking') {
          segmentText += String(d.content_delta ?? '');
          text += String(d.content_delta ?? '');
        }
        break;
      case 'tool.call':
        toolCalls++;
        segmentCalls.push({ id: String(d.tool_call_id), name: String(d.tool_name), arguments: (d.arguments ?? {}) as Record<string, unknown> });
        break;
      case 'tool.result':
      case 'tool.denied':
        flushAssistant();
        conversation.push({
          role: 'tool',
          toolCallId: String(d.tool_call_id),
          toolName: String(d.tool_name),
          content: JSON.stringify(e.type === 'tool.denied' ? { error: { error_class: d.error_class, message: d.message } } : d.error ? { error: d.error } : d.result),
        });
        break;
      case 'run.waiting_for_input':
        pausedForTool = d.tool_call_id != null;
        break;
      case 'run.input_provided':
        // After an ask_user pause the answer travels as that call's tool.result instead.
        if (!pausedForTool) {
          flushAssistant();
          conversation.push({ role: 'user', content: String(d.content ?? '') });
        }
        pausedForTool = false;
        break;
    }
  }
  flushAssistant();
  if (openSegment) {
    iterations--;
    calls--;
  }
  return { conversation, text, iterations, calls, toolCalls, routeSelected };
}

const tokensQuotaFailure = (limit: number) => new RunFailure('budget.tokens_quota_exceeded', 'the monthly token quota is used up', { limit });

class RunFailure extends Error {
  constructor(
    readonly errorClass: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Executes a `run.execute` job; true when the run ended, which also removed the job.
 * `preload`: what the run's creator already read (local dispatch), instead of loading it.
 */
export async function executeRun(ctx: AppContext, job: JobRow, jobSignal: AbortSignal, log: Logger, preload?: unknown): Promise<boolean> {
  const state = { ended: false };
  await execute(ctx, job, jobSignal, log, state, preload as LoadedRun | undefined);
  return state.ended;
}

async function execute(ctx: AppContext, job: JobRow, jobSignal: AbortSignal, log: Logger, state: { ended: boolean }, preload: LoadedRun | undefined): Promise<void> {
  const runId = String((job.payload as { run_id?: unknown }).run_id ?? '');
  const tokensQuota = await ctx.settings.int('quota.tokens_per_month');
  const loaded = preload && (tokensQuota === 0 || preload.monthTokens !== null) ? preload : await loadRun(ctx, runId, { monthTokens: tokensQuota > 0 });
  if (!loaded || ['completed', 'failed', 'cancelled'].includes(loaded.run.status)) return;
  const run = loaded.run;
  let events = loaded.events;
  if (await deliverAskUserAnswer(ctx, runId, events)) events = await listRunEvents(ctx.db, runId, 0, 100_000);
  const prior = priorState(events);
  let text = prior.text;
  let model: string | null = null;
  const deltas = new DeltaBuffer(ctx, runId);
  /** Usage of the run's model calls recorded so far (earlier jobs included). */
  let recorded = loaded.priorTotals;
  /** Appends one event after any buffered deltas. */
  const emit = (type: string, data: Record<string, unknown>, opts?: { outputEmitted?: boolean }) => deltas.flushWith([{ type, data }], opts);
  const finish = async (outcome: Outcome, usage: UsageRecord[] = []) => {
    state.ended = true;
    return finishRun(ctx, {
      runId,
      orgId: run.org_id,
      threadId: run.thread_id,
      userId: run.created_by_user_id,
      createdAt: run.created_at,
      text,
      model,
      outcome,
      events: await deltas.take(),
      usage,
      priorTotals: recorded,
    });
  };
  const cancelled = () => finish({ status: 'cancelled', reason: run.cancel_reason ?? 'user', cancelledBy: run.cancel_requested_by });

  if (run.cancel_requested) return void (await cancelled());
  // A run that already streamed output cannot be replayed by another worker (§26.6).
  const resumed = events.some((e) => e.type === 'run.input_provided');
  if (job.attempts > 1 && run.output_emitted && !resumed) {
    return void (await finish({ status: 'failed', errorClass: 'internal.worker_lost', message: 'the worker executing the run was lost', retryable: true }));
  }

  // Cancel arrives as an event: abort the model stream and tools at once.
  const abort = new AbortController();
  const onJobAbort = () => abort.abort(jobSignal.reason);
  jobSignal.addEventListener('abort', onJobAbort, { once: true });
  let cancelSeen = false;
  const unsubscribe = ctx.engine.hub.subscribe(runId, (e) => {
    if (e.type === 'run.cancel_requested') {
      cancelSeen = true;
      const d = e.data as { reason?: string; requested_by_user_id?: string };
      run.cancel_reason = d.reason ?? 'user';
      run.cancel_requested_by = d.requested_by_user_id ?? null;
      abort.abort(new Error('cancelled'));
    }
  });
  const signal = abort.signal;

  try {
    if (loaded.balance <= 0) throw new RunFailure('budget.insufficient_credits', 'the account has no credits left');
    if (loaded.monthTokens !== null && loaded.monthTokens >= tokensQuota) throw tokensQuotaFailure(tokensQuota);

    const resolved = run.persona_id ? resolvePersonaId(run.persona_id) : null;
    if (run.persona_id && !resolved) throw new RunFailure('internal.error', `persona ${run.persona_id} no longer exists`);
    const persona = resolved ? resolved.persona : defaultPersona();
    const cfg = effectiveRunConfig(persona, run.role ?? 'member', {
      agentReasoningIterations: await ctx.settings.int('limit.agent_reasoning_iterations'),
      toolContinuationBudget: await ctx.settings.int('limit.tool_continuation_budget'),
    });

    const registry = createBuiltinToolRegistry();
    const offered = offeredTools(registry.list(), cfg.toolAllowlist, cfg.toolDenylist);
    const offeredByName = new Map(offered.map((t) => [t.name, t] as const));
    const budget = new ToolBudget(cfg.toolContinuationBudget, cfg.perToolSoftLimits);
    for (let i = 0; i < prior.toolCalls; i++) budget.consume('__prior__');

    const routes = resolveRoutes(ctx.config.env, { routeId: run.route_id, requestedModel: run.requested_model, personaModel: cfg.model });
    if (!routes.ok) throw new RunFailure(routes.errorClass, 'no model route matches the run');
    const candidates = routes.candidates;
    // Emitted together with the first segment's start (one statement).
    let routeEvent: { type: string; data: Record<string, unknown> } | null = null;
    if (!prior.routeSelected) {
      const c = candidates[0];
      routeEvent = { type: 'run.route.selected', data: {
        route_id: c.routeId,
        provider_id: c.providerId,
        provider_name: c.config.name,
        provider_kind: c.config.kind,
        model: c.model,
        selector: c.selector,
        source: c.source,
      } };
    }

    // The conversation: the thread's messages up to the run's start, then this run's turns.
    const conversation: LlmMessage[] = [...loaded.history, ...prior.conversation];

    const debugEvents = ctx.config.env.ARKLOOP_LLM_DEBUG_EVENTS === '1';
    const maxAttempts = await ctx.settings.int('llm.retry.max_attempts');
    const baseDelay = await ctx.settings.int('llm.retry.base_delay_ms');
    const providers = new Map<RouteCandidate, LlmProvider>();
    const providerFor = (c: RouteCandidate) => {
      let p = providers.get(c);
      if (!p) providers.set(c, (p = createProvider(c.config)));
      return p;
    };
    let calls = prior.calls;
    let candidateIndex = 0;
    let iteration = prior.iterations;

    for (;;) {
      if (jobSignal.aborted) throw jobSignal.reason;
      if (cancelSeen || signal.aborted) return void (await cancelled());
      iteration++;
      // Before every model call but the first, which the load checked (§27 budget check).
      if (tokensQuota > 0 && iteration > prior.iterations + 1 && (await monthTokens(ctx.db, run.org_id)) >= tokensQuota) throw tokensQuotaFailure(tokensQuota);
      // Written with the first output (or whatever comes next), a few ms later at most.
      deltas.queue([...(routeEvent ? [routeEvent] : []), { type: 'run.segment.start', data: { iteration } }]);
      routeEvent = null;
      const started = Date.now();
      let segmentText = '';
      const toolCalls: LlmToolCall[] = [];
      let usage: LlmUsage | null = null;
      let finishReason: 'stop' | 'tool_calls' | 'length' = 'stop';
      let askInput: string | null = null;

      // One model call, with retries and fallback while nothing of it was emitted (§27.4).
      for (let attempt = 1; ; attempt++) {
        const candidate = candidates[candidateIndex];
        let emitted = false;
        try {
          model = candidate.model;
          const request = {
            model: candidate.model,
            system: cfg.systemPrompt,
            messages: conversation,
            tools: offered.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema })),
            maxOutputTokens: cfg.maxOutputTokens ?? undefined,
            temperature: cfg.temperature ?? undefined,
            topP: cfg.topP ?? undefined,
            reasoningEffort: cfg.reasoningEffort,
            turn: calls++,
          };
          if (debugEvents) {
            // Local debugging only (ARKLOOP_LLM_DEBUG_EVENTS=1): never credentials, never the system prompt.
            const { system: _system, ...visible } = request;
            await emit('llm.request', { provider_name: candidate.config.name, provider_kind: candidate.config.kind, request: visible });
          }
          const stream = providerFor(candidate).stream(request, signal);
          for await (const chunk of stream) {
            if (chunk.type === 'text') {
              emitted = true;
              segmentText += chunk.text;
              text += chunk.text;
              deltas.add({ content_delta: chunk.text, content: chunk.text, role: 'assistant' });
            } else if (chunk.type === 'thinking') {
              if (cfg.streamThinking) {
                deltas.add({ content_delta: chunk.text, content: chunk.text, role: 'assistant', channel: 'thinking' });
              }
            } else if (chunk.type === 'tool_call') {
              emitted = true;
              toolCalls.push(chunk.call);
            } else if (chunk.type === 'usage') {
              usage = chunk.usage;
            } else if (chunk.type === 'finish') {
              finishReason = chunk.reason;
            } else if (chunk.type === 'ask_input') {
              askInput = chunk.prompt;
            } else if (chunk.type === 'raw' && debugEvents) {
              await emit('llm.response.chunk', { provider_name: candidate.config.name, data: chunk.data as Record<string, unknown> });
            }
          }
          break;
        } catch (err) {
          if (jobSignal.aborted) throw err;
          if (!(err instanceof LlmError) && isConnectionError(err)) throw err; // our database, not the model's
          if (isAbortError(err) || signal.aborted) return void (await cancelled());
          const e = err instanceof LlmError ? err : new LlmError('provider.unavailable', (err as Error).message, { status: null, retryable: false });
          if (emitted) throw new RunFailure('provider.stream_interrupted', e.message);
          if (e.opts.retryable && attempt < maxAttempts) {
            const delay = Math.min(MAX_RETRY_WAIT_MS, Math.max(baseDelay * 2 ** (attempt - 1), e.opts.retryAfterMs ?? 0));
            await emit('run.llm.retry', {
              attempt,
              max_attempts: maxAttempts,
              delay_ms: delay,
              status: e.opts.status,
              error_class: e.errorClass,
              provider_name: candidate.config.name,
              model: candidate.model,
            });
            await sleep(delay, signal);
            continue;
          }
          if (candidateIndex + 1 < candidates.length) {
            const next = candidates[candidateIndex + 1];
            await emit('run.provider_fallback', {
              from: { route_id: candidate.routeId, provider_name: candidate.config.name, model: candidate.model },
              to: { route_id: next.routeId, provider_name: next.config.name, model: next.model },
              error_class: e.errorClass,
              message: e.message,
            });
            candidateIndex++;
            attempt = 0;
            continue;
          }
          throw new RunFailure(e.errorClass, e.message, { status: e.opts.status });
        }
      }

      const u = usage ?? {
        inputTokens: Math.ceil(conversation.reduce((n, m) => n + m.content.length, 0) / 4),
        outputTokens: Math.ceil(segmentText.length / 4),
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
      };
      const candidate = candidates[candidateIndex];
      // Environment, ad-hoc and stub routes cost nothing (§27.7).
      const cost = 0;
      const call: UsageRecord = {
        orgId: run.org_id,
        userId: run.created_by_user_id,
        runId,
        threadId: run.thread_id,
        providerName: candidate.config.name,
        providerKind: candidate.config.kind,
        model: candidate.model,
        inputTokens: u.inputTokens,
        outputTokens: u.outputTokens,
        cacheReadTokens: u.cacheReadTokens,
        cacheWriteTokens: u.cacheWriteTokens,
        costUsd: cost,
      };
      const segmentFinish = askInput !== null ? 'input' : toolCalls.length ? 'tool_calls' : finishReason;
      const segmentEnd = {
        type: 'run.segment.end',
        data: {
          iteration,
          finish_reason: segmentFinish,
          usage: { input_tokens: u.inputTokens, output_tokens: u.outputTokens, cache_read_tokens: u.cacheReadTokens, cache_write_tokens: u.cacheWriteTokens },
          cost_usd: cost,
          duration_ms: Date.now() - started,
        },
      };
      // The last turn's usage and end ride with the terminal statement.
      if (askInput === null && toolCalls.length === 0) {
        deltas.queue([segmentEnd]);
        return void (await finish({ status: 'completed' }, [call]));
      }
      // A pause for input likewise: the turn's usage, its end and the pause in one statement.
      if (askInput !== null) {
        deltas.queue([segmentEnd]);
        const paused = await pauseForInput(ctx, runId, askInput, null, await deltas.take(), [call]);
        recorded = addUsage(recorded, [call]); // written by the pause whatever happened
        if (!paused) return void (await cancelled());
        return;
      }
      await recordModelCall(ctx.db, call);
      recorded = addUsage(recorded, [call]);
      deltas.queue([segmentEnd]);

      if (iteration >= cfg.maxIterations) {
        throw new RunFailure('budget.max_iterations', `the model still asked for tools after ${cfg.maxIterations} turns`);
      }

      conversation.push({ role: 'assistant', content: segmentText, toolCalls });
      // The turn's end and all its calls in one statement, before any tool runs.
      await deltas.flushWith(
        toolCalls.map((c) => ({
          type: 'tool.call',
          data: { tool_call_id: c.id, tool_name: c.name, arguments: c.arguments, source: offeredByName.get(c.name)?.source ?? 'builtin' },
        })),
        { outputEmitted: true },
      );
      // ask_user pauses the run; its answer arrives as input and becomes its tool.result.
      let question: { call: LlmToolCall; prompt: string } | null = null;
      const outcomes = await Promise.all(
        toolCalls.map(async (call): Promise<ToolOutcome | null> => {
          if (!isAskUser(call.name) || !offeredByName.has(call.name) || question) return runToolCall(run, call, offeredByName, budget, signal, log);
          const decision = budget.consume(call.name);
          if (!decision.allowed) return { kind: 'denied', errorClass: decision.errorClass, message: decision.message };
          try {
            question = { call, prompt: askUserQuestion(call.arguments) };
            return null;
          } catch (err) {
            const e = err as ToolError;
            return { kind: 'ran', result: null, error: { error_class: e.errorClass ?? 'tool.invalid_arguments', message: e.message }, durationMs: 0 };
          }
        }),
      );
      const results: NewEvent[] = [];
      for (let i = 0; i < toolCalls.length; i++) {
        const call = toolCalls[i];
        const o = outcomes[i];
        if (o === null) continue;
        if (o.kind === 'denied') {
          results.push({ type: 'tool.denied', data: { tool_call_id: call.id, tool_name: call.name, error_class: o.errorClass, message: o.message } });
          conversation.push({ role: 'tool', toolCallId: call.id, toolName: call.name, content: JSON.stringify({ error: { error_class: o.errorClass, message: o.message } }) });
        } else {
          results.push({ type: 'tool.result', data: { tool_call_id: call.id, tool_name: call.name, result: o.result, error: o.error, duration_ms: o.durationMs } });
          conversation.push({ role: 'tool', toolCallId: call.id, toolName: call.name, content: JSON.stringify(o.error ? { error: o.error } : o.result) });
        }
      }
      // The results ride with what comes next: the next turn's start, or the pause.
      deltas.queue(results);
      if (question) {
        const q = question as { call: LlmToolCall; prompt: string };
        if (!(await pauseForInput(ctx, runId, q.prompt, q.call.id, await deltas.take()))) return void (await cancelled());
        return;
      }
    }
  } catch (err) {
    if (jobSignal.aborted) throw err; // shutdown or lost lease: another worker takes the job over
    // A database outage ends this attempt, not the run: the worker hands the job back (§26.6).
    if (!(err instanceof RunFailure) && !(err instanceof LlmError) && isConnectionError(err)) throw err;
    if (cancelSeen || (isAbortError(err) && signal.aborted)) return void (await cancelled());
    const f = err instanceof RunFailure ? err : new RunFailure('internal.error', (err as Error).message);
    if (!(err instanceof RunFailure)) log.error({ err, run_id: runId }, 'run failed unexpectedly');
    await finish({ status: 'failed', errorClass: f.errorClass, message: f.message, retryable: isRetryableClass(f.errorClass), details: f.details });
  } finally {
    unsubscribe();
    jobSignal.removeEventListener('abort', onJobAbort);
    abort.abort(new Error('run attempt ended')); // a model stream or tool left behind by an early exit
  }
}

type ToolOutcome =
  | { kind: 'denied'; errorClass: string; message: string }
  | { kind: 'ran'; result: unknown; error: { error_class: string; message: string } | null; durationMs: number };

async function runToolCall(
  run: RunRecord,
  call: LlmToolCall,
  offered: Map<string, Tool>,
  budget: ToolBudget,
  signal: AbortSignal,
  log: Logger,
): Promise<ToolOutcome> {
  const tool = offered.get(call.name);
  if (!tool) return { kind: 'denied', errorClass: 'policy.tool_denied', message: `tool ${call.name} is not available to this run` };
  const decision = budget.consume(call.name);
  if (!decision.allowed) return { kind: 'denied', errorClass: decision.errorClass, message: decision.message };
  const started = Date.now();
  try {
    const result = await runToolWithTimeout(tool, call.arguments, { runId: run.id, orgId: run.org_id, userId: run.created_by_user_id, signal, log });
    return { kind: 'ran', result, error: null, durationMs: Date.now() - started };
  } catch (err) {
    const e = err instanceof ToolError ? err : new ToolError('tool.execution_failed', (err as Error).message);
    return { kind: 'ran', result: e.result ?? null, error: { error_class: e.errorClass, message: e.message }, durationMs: Date.now() - started };
  }
}

/**
 * On resume after an ask_user pause: the input becomes that call's `tool.result {answer}`
 * (§27.8). Returns true when it appended one.
 */
async function deliverAskUserAnswer(ctx: AppContext, runId: string, events: RunEvent[]): Promise<boolean> {
  let pending: { id: string; name: string } | null = null;
  let answer: string | null = null;
  const answered = new Set(events.filter((e) => e.type === 'tool.result' || e.type === 'tool.denied').map((e) => String(e.data.tool_call_id)));
  for (const e of events) {
    if (e.type === 'run.waiting_for_input' && e.data.tool_call_id != null && !answered.has(String(e.data.tool_call_id))) {
      pending = { id: String(e.data.tool_call_id), name: ASK_USER_TOOL_NAME };
      answer = null;
    } else if (e.type === 'run.input_provided' && pending) {
      answer = String(e.data.content ?? '');
    }
  }
  if (!pending || answer === null) return false;
  await ctx.engine.append(ctx.db, runId, 'tool.result', { tool_call_id: pending.id, tool_name: pending.name, result: askUserResult(answer), error: null, duration_ms: 0 });
  return true;
}

/**
 * Pauses the run until `POST /v1/runs/{id}/input` (§26.1) in one statement: what is still
 * buffered, `run.waiting_for_input`, the status, and the usage of the turn that asked (written
 * whatever happened to the run). The job ends; a new one resumes. False when the run is no
 * longer running or a cancel is pending (then the caller ends it as cancelled).
 */
async function pauseForInput(
  ctx: AppContext,
  runId: string,
  prompt: string,
  toolCallId: string | null,
  pending: NewEvent[] = [],
  usage: UsageRecord[] = [],
): Promise<boolean> {
  const events = [...pending, { type: 'run.waiting_for_input', data: { prompt, tool_call_id: toolCallId } }];
  const ev = eventCtes(runId, 's', events, ctx.engine.viaNotify);
  const last = usage.at(-1);
  const res = await sql<{ ev_rows: unknown }>`
    WITH s AS (
      UPDATE runs SET status = 'waiting_for_input', waiting_since = now(), running_since = NULL, updated_at = now(),
             running_ms = running_ms + coalesce((extract(epoch FROM now() - running_since) * 1000)::bigint, 0),
             last_seq = last_seq + ${events.length},
             output_emitted = output_emitted OR ${pending.some((e) => e.type === 'message.delta')}
             ${last ? sql`, model = ${last.model}, provider_kind = ${last.providerKind}, credential_name = ${last.providerName}` : sql``}
       WHERE id = ${runId} AND status = 'running' AND NOT cancel_requested
      RETURNING last_seq
    ),
    ${usage.length ? sql`usage AS (${usageInsertSql(usage)}),` : sql``}
    ${ev.ctes}
    SELECT ${ev.columns}`.execute(ctx.db);
  const written = eventsOf(res.rows[0]);
  ctx.engine.wrote(written, 0);
  return written.length > 0;
}
