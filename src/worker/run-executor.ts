// One `run.execute` job (api.md §27), as named steps of a RunExecution:
//   begin        load the run (or take what its creator read), deliver an ask_user answer,
//                rebuild the state of earlier jobs, and decide: already ended, cancelled,
//                internal.worker_lost (§26.6), or go
//   checkBudget  credits and the monthly token quota before the first model call
//   setup        persona → effective config, offered tools and their budget, model routes
//   loop         per turn: callModel (retries and fallback, §27.4) → endTurn, which completes,
//                pauses for input, or records the turn and runs its tools (runTools)
//   finish       the terminal statement (modules/runs/finish.ts)
// A run that paused for input is resumed by a new job; its state so far is rebuilt from its
// events. A database outage ends the attempt, not the run: the error goes to the worker,
// which hands the job back.
import { entitlementInt } from '../modules/entitlements/resolve.js';
import { monthTokens } from '../modules/usage/store.js';
import type { Logger } from 'pino';
import type { AppContext } from '../app-context.js';
import type { JobRow } from '../engine/jobs.js';
import { listRunEvents, type NewEvent } from '../engine/events.js';
import { LlmError, advancedRequestParts, createProvider, isAbortError, type LlmMessage, type LlmProvider, type LlmToolCall, type LlmUsage } from '../llm/index.js';
import { resolveAccountRunPersona } from '../modules/personas/store.js';
import { effectiveRunConfig } from '../modules/personas/effective.js';
import { callCostUsd, resolveRoutes, type RouteCandidate } from '../modules/runs/routing.js';
import { loadRouteCatalogue } from '../modules/runs/route-catalogue.js';
import { creditsInFlight, spendState } from '../modules/runs/spend.js';
import { addUsage, recordModelCall, type UsageRecord, type UsageTotals } from '../modules/usage/store.js';
import { askUserQuestion, createBuiltinToolRegistry, isAskUser } from '../tools/builtins.js';
import { webTools } from '../tools/web/index.js';
import { mcpTools } from '../mcp/runtime.js';
import { ToolBudget, offeredTools, runToolWithTimeout } from '../tools/policy.js';
import { approvalPrompt, argumentsSha256, needsApproval } from '../tools/approval.js';
import { ToolError, type Tool } from '../tools/types.js';
import { finishRun, isRetryableClass, type Outcome } from '../modules/runs/finish.js';
import { loadRun, type LoadedRun, type RunRecord } from '../modules/runs/load.js';
import { isConnectionError } from '../db/connection-errors.js';
import { DeltaBuffer } from './delta-buffer.js';
import { priorState, type PriorState } from './prior-state.js';
import { deliverAskUserAnswer, pauseForInput } from './pause.js';
import { envValue } from '../config/env.js';

const MAX_RETRY_WAIT_MS = 30_000;

class RunFailure extends Error {
  constructor(
    readonly errorClass: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const tokensQuotaFailure = (limit: number) => new RunFailure('budget.tokens_quota_exceeded', 'the monthly token quota is used up', { limit });

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
  const execution = new RunExecution(ctx, job, jobSignal, log);
  await execution.execute(preload as LoadedRun | undefined);
  return execution.ended;
}

/** What setup decided for this job: the model's instructions, tools and routes. */
interface Setup {
  cfg: ReturnType<typeof effectiveRunConfig>;
  offered: Tool[];
  offeredByName: Map<string, Tool>;
  budget: ToolBudget;
  candidates: RouteCandidate[];
  /** `run.route.selected`, written with the first segment's start; null once written. */
  routeEvent: NewEvent | null;
  maxAttempts: number;
  baseDelay: number;
  debugEvents: boolean;
}

/** What one model turn produced. */
interface Turn {
  iteration: number;
  started: number;
  text: string;
  toolCalls: LlmToolCall[];
  usage: LlmUsage | null;
  finishReason: 'stop' | 'tool_calls' | 'length';
  askInput: string | null;
}

type ToolOutcome =
  | { kind: 'denied'; errorClass: string; message: string }
  | { kind: 'ran'; result: unknown; error: { error_class: string; message: string } | null; durationMs: number };

class RunExecution {
  readonly runId: string;
  /** The run reached its terminal statement (which also removed the job). */
  ended = false;
  private run!: RunRecord;
  private loaded!: LoadedRun;
  private prior!: PriorState;
  private tokensQuota = 0;
  /** The assistant text of the whole run (earlier jobs included). */
  private text = '';
  private model: string | null = null;
  private readonly deltas: DeltaBuffer;
  /** Usage of the run's model calls recorded so far (earlier jobs included). */
  private recorded!: UsageTotals;
  /** Aborted by a cancel (seen as an event) or by the job's own signal. */
  private readonly abort = new AbortController();
  private cancelSeen = false;
  private readonly providers = new Map<RouteCandidate, LlmProvider>();
  private calls = 0;
  private candidateIndex = 0;

  constructor(
    private readonly ctx: AppContext,
    private readonly job: JobRow,
    private readonly jobSignal: AbortSignal,
    private readonly log: Logger,
  ) {
    this.runId = String((job.payload as { run_id?: unknown }).run_id ?? '');
    this.deltas = new DeltaBuffer(ctx, this.runId);
  }

  private get signal(): AbortSignal {
    return this.abort.signal;
  }

  async execute(preload: LoadedRun | undefined): Promise<void> {
    if (!(await this.begin(preload))) return;
    if (this.run.cancel_requested) return this.cancelled();
    // A run that already streamed output cannot be replayed by another worker (§26.6).
    const resumed = this.loaded.events.some((e) => e.type === 'run.input_provided');
    if (this.job.attempts > 1 && this.run.output_emitted && !resumed) {
      return this.finish({ status: 'failed', errorClass: 'internal.worker_lost', message: 'the worker executing the run was lost', retryable: true });
    }
    const stopWatching = this.watchForCancel();
    try {
      this.checkBudget();
      const setup = await this.setup();
      await this.loop(setup);
    } catch (err) {
      await this.fail(err);
    } finally {
      stopWatching();
      this.abort.abort(new Error('run attempt ended')); // a model stream or tool left behind by an early exit
    }
  }

  /** Loads the run and its earlier state; false when there is nothing to do (gone or ended). */
  private async begin(preload: LoadedRun | undefined): Promise<boolean> {
    const { ctx, runId } = this;
    const loaded = preload ?? (await loadRun(ctx, runId, { monthTokens: false }));
    if (!loaded || ['completed', 'failed', 'cancelled'].includes(loaded.run.status)) return false;
    this.tokensQuota = await entitlementInt(ctx, loaded.run.org_id, 'quota.tokens_per_month');
    if (this.tokensQuota > 0 && loaded.monthTokens === null) loaded.monthTokens = await monthTokens(ctx.db, loaded.run.org_id);
    if (await deliverAskUserAnswer(ctx, runId, loaded.events)) loaded.events = await listRunEvents(ctx.db, runId, 0, 100_000);
    this.loaded = loaded;
    this.run = loaded.run;
    this.prior = priorState(loaded.events);
    this.text = this.prior.text;
    this.recorded = loaded.priorTotals;
    this.calls = this.prior.calls;
    return true;
  }

  /** Cancel arrives as an event: abort the model stream and tools at once. */
  private watchForCancel(): () => void {
    const onJobAbort = () => this.abort.abort(this.jobSignal.reason);
    this.jobSignal.addEventListener('abort', onJobAbort, { once: true });
    const unsubscribe = this.ctx.engine.hub.subscribe(this.runId, (e) => {
      if (e.type !== 'run.cancel_requested') return;
      this.cancelSeen = true;
      const d = e.data as { reason?: string; requested_by_user_id?: string };
      this.run.cancel_reason = d.reason ?? 'user';
      this.run.cancel_requested_by = d.requested_by_user_id ?? null;
      this.abort.abort(new Error('cancelled'));
    });
    return () => {
      unsubscribe();
      this.jobSignal.removeEventListener('abort', onJobAbort);
    };
  }

  /** Credits and the monthly token quota, as loaded (§27.2). */
  private checkBudget(): void {
    if (this.loaded.balance <= 0) throw new RunFailure('budget.insufficient_credits', 'the account has no credits left');
    if (this.loaded.monthTokens !== null && this.loaded.monthTokens >= this.tokensQuota) throw tokensQuotaFailure(this.tokensQuota);
  }

  /** §27.2 in-run spend stop: the balance less what unfinished runs spent, and the month's tokens with this run's. */
  private async spendStop(): Promise<void> {
    // Re-read (cached) so an entitlement change reaches a long run at its next model call.
    this.tokensQuota = await entitlementInt(this.ctx, this.run.org_id, 'quota.tokens_per_month');
    const s = await spendState(this.ctx.db, this.run.org_id, this.tokensQuota > 0);
    if (s.balance - creditsInFlight(s, await this.ctx.settings.int('credit.per_usd')) <= 0) {
      throw new RunFailure('budget.insufficient_credits', 'the account ran out of credits during the run', { balance: s.balance });
    }
    if (s.monthTokens !== null && s.monthTokens >= this.tokensQuota) throw tokensQuotaFailure(this.tokensQuota);
  }

  /** Persona → effective config, the tools offered and their budget, the model routes. */
  private async setup(): Promise<Setup> {
    const { ctx, run } = this;
    const resolved = await resolveAccountRunPersona(ctx.db, run.org_id, run.persona_id);
    if (!resolved) throw new RunFailure('internal.error', `persona ${run.persona_id ?? 'default'} no longer exists`);
    const persona = resolved.persona;
    const cfg = effectiveRunConfig(persona, run.role ?? 'member', {
      agentReasoningIterations: await entitlementInt(ctx, run.org_id, 'limit.agent_reasoning_iterations'),
      toolContinuationBudget: await entitlementInt(ctx, run.org_id, 'limit.tool_continuation_budget'),
    });

    const registry = createBuiltinToolRegistry();
    for (const t of await mcpTools(ctx, run.org_id, this.log)) registry.register(t);
    for (const t of webTools(ctx)) registry.register(t);
    const offered = offeredTools(registry.list(), cfg.toolAllowlist, cfg.toolDenylist);
    const budget = new ToolBudget(cfg.toolContinuationBudget, cfg.perToolSoftLimits);
    for (const name of this.prior.ranToolCalls) budget.consume(name);

    const routes = resolveRoutes(
      ctx.config.env,
      { routeId: run.route_id, requestedModel: run.requested_model, personaModel: cfg.model, preferredCredential: cfg.preferredCredential, personaKey: persona.persona_key, role: run.role ?? 'member' },
      await loadRouteCatalogue(ctx, run.org_id),
    );
    if (!routes.ok) throw new RunFailure(routes.errorClass, 'no model route matches the run');
    const c = routes.candidates[0];
    const routeEvent = this.prior.routeSelected
      ? null
      : {
          type: 'run.route.selected',
          data: { route_id: c.routeId, provider_id: c.providerId, provider_name: c.config.name, provider_kind: c.config.kind, model: c.model, selector: c.selector, source: c.source },
        };
    return {
      cfg,
      offered,
      offeredByName: new Map(offered.map((t) => [t.name, t] as const)),
      budget,
      candidates: routes.candidates,
      routeEvent,
      maxAttempts: await ctx.settings.int('llm.retry.max_attempts'),
      baseDelay: await ctx.settings.int('llm.retry.base_delay_ms'),
      debugEvents: envValue(ctx.config.env, 'ARKLOOP_LLM_DEBUG_EVENTS') === '1',
    };
  }

  /** The agent loop: model turn after model turn until one ends the run or pauses it. */
  private async loop(setup: Setup): Promise<void> {
    // The conversation: the thread's messages up to the run's start, then this run's turns.
    const conversation: LlmMessage[] = [...this.loaded.history, ...this.prior.conversation];
    let iteration = this.prior.iterations;
    // A turn paused for approvals (§27.5a) goes on where it stopped: its calls, then the next turn.
    const pending = this.prior.pendingTurn;
    if (pending && !this.cancelSeen && !this.signal.aborted && !(await this.runTools(setup, conversation, pending.calls, pending.decisions))) return;
    for (;;) {
      if (this.jobSignal.aborted) throw this.jobSignal.reason;
      if (this.cancelSeen || this.signal.aborted) return this.cancelled();
      iteration++;
      // Before every model call but the run's first, which the load checked: the spend stop (§27.2).
      if (iteration > 1) await this.spendStop();
      // Written with the first output (or whatever comes next), a few ms later at most.
      this.deltas.queue([...(setup.routeEvent ? [setup.routeEvent] : []), { type: 'run.segment.start', data: { iteration } }]);
      setup.routeEvent = null;
      const turn = await this.callModel(setup, conversation, iteration);
      if (!turn) return this.cancelled();
      if (!(await this.endTurn(setup, conversation, turn))) return;
    }
  }

  /** One model call, with retries and fallback while nothing of it was emitted (§27.4); null = cancelled. */
  private async callModel(setup: Setup, conversation: LlmMessage[], iteration: number): Promise<Turn | null> {
    const { cfg, candidates, debugEvents } = setup;
    const turn: Turn = { iteration, started: Date.now(), text: '', toolCalls: [], usage: null, finishReason: 'stop', askInput: null };
    for (let attempt = 1; ; attempt++) {
      const candidate = candidates[this.candidateIndex];
      let emitted = false;
      try {
        this.model = candidate.model;
        const request = {
          model: candidate.model,
          system: cfg.systemPrompt,
          messages: conversation,
          tools: setup.offered.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema })),
          maxOutputTokens: cfg.maxOutputTokens ?? undefined,
          temperature: cfg.temperature ?? undefined,
          topP: cfg.topP ?? undefined,
          reasoningEffort: cfg.reasoningEffort,
          turn: this.calls++,
          ...advancedRequestParts(candidate.advanced),
        };
        if (debugEvents) {
          // Local debugging only (ARKLOOP_LLM_DEBUG_EVENTS=1): never credentials, never the system prompt.
          const { system: _system, ...visible } = request;
          await this.emit('llm.request', { provider_name: candidate.config.name, provider_kind: candidate.config.kind, request: visible });
        }
        for await (const chunk of this.providerFor(candidate).stream(request, this.signal)) {
          if (chunk.type === 'text') {
            emitted = true;
            turn.text += chunk.text;
            this.text += chunk.text;
            this.deltas.add({ content_delta: chunk.text, content: chunk.text, role: 'assistant' });
          } else if (chunk.type === 'thinking') {
            if (cfg.streamThinking) this.deltas.add({ content_delta: chunk.text, content: chunk.text, role: 'assistant', channel: 'thinking' });
          } else if (chunk.type === 'tool_call') {
            emitted = true;
            turn.toolCalls.push(chunk.call);
          } else if (chunk.type === 'usage') {
            turn.usage = chunk.usage;
          } else if (chunk.type === 'finish') {
            turn.finishReason = chunk.reason;
          } else if (chunk.type === 'ask_input') {
            turn.askInput = chunk.prompt;
          } else if (chunk.type === 'raw' && debugEvents) {
            await this.emit('llm.response.chunk', { provider_name: candidate.config.name, data: chunk.data as Record<string, unknown> });
          }
        }
        return turn;
      } catch (err) {
        if (this.jobSignal.aborted) throw err;
        if (!(err instanceof LlmError) && isConnectionError(err)) throw err; // our database, not the model's
        if (isAbortError(err) || this.signal.aborted) return null;
        const e = err instanceof LlmError ? err : new LlmError('provider.unavailable', (err as Error).message, { status: null, retryable: false });
        if (emitted) throw new RunFailure('provider.stream_interrupted', e.message);
        if (e.opts.retryable && attempt < setup.maxAttempts) {
          const delay = Math.min(MAX_RETRY_WAIT_MS, Math.max(setup.baseDelay * 2 ** (attempt - 1), e.opts.retryAfterMs ?? 0));
          await this.emit('run.llm.retry', {
            attempt,
            max_attempts: setup.maxAttempts,
            delay_ms: delay,
            status: e.opts.status,
            error_class: e.errorClass,
            provider_name: candidate.config.name,
            model: candidate.model,
          });
          await sleep(delay, this.signal);
          continue;
        }
        if (this.candidateIndex + 1 < candidates.length) {
          const next = candidates[this.candidateIndex + 1];
          await this.emit('run.provider_fallback', {
            from: { route_id: candidate.routeId, provider_name: candidate.config.name, model: candidate.model },
            to: { route_id: next.routeId, provider_name: next.config.name, model: next.model },
            error_class: e.errorClass,
            message: e.message,
          });
          this.candidateIndex++;
          attempt = 0;
          continue;
        }
        throw new RunFailure(e.errorClass, e.message, { status: e.opts.status });
      }
    }
  }

  /**
   * What follows a model turn: the run completes, pauses for input, or the turn's end and
   * its tool calls are written and the tools run. True when the loop goes on.
   */
  private async endTurn(setup: Setup, conversation: LlmMessage[], turn: Turn): Promise<boolean> {
    const { run, runId } = this;
    const u = turn.usage ?? {
      inputTokens: Math.ceil(conversation.reduce((n, m) => n + m.content.length, 0) / 4),
      outputTokens: Math.ceil(turn.text.length / 4),
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    };
    const candidate = setup.candidates[this.candidateIndex];
    // Environment, ad-hoc and stub routes have no prices and cost nothing (§27.7).
    const cost = callCostUsd(candidate.pricing, u);
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
      multiplier: candidate.pricing?.multiplier ?? 1,
    };
    const segmentEnd = {
      type: 'run.segment.end',
      data: {
        iteration: turn.iteration,
        finish_reason: turn.askInput !== null ? 'input' : turn.toolCalls.length ? 'tool_calls' : turn.finishReason,
        usage: { input_tokens: u.inputTokens, output_tokens: u.outputTokens, cache_read_tokens: u.cacheReadTokens, cache_write_tokens: u.cacheWriteTokens },
        cost_usd: cost,
        duration_ms: Date.now() - turn.started,
      },
    };
    // The last turn's usage and end ride with the terminal statement.
    if (turn.askInput === null && turn.toolCalls.length === 0) {
      this.deltas.queue([segmentEnd]);
      await this.finish({ status: 'completed' }, [call]);
      return false;
    }
    // A pause for input likewise: the turn's usage, its end and the pause in one statement.
    if (turn.askInput !== null) {
      this.deltas.queue([segmentEnd]);
      const paused = await pauseForInput(this.ctx, { id: runId, orgId: this.run.org_id }, { kind: 'input', prompt: turn.askInput, toolCallId: null }, await this.deltas.take(), [call]);
      this.recorded = addUsage(this.recorded, [call]); // written by the pause whatever happened
      if (!paused) await this.cancelled();
      return false;
    }
    await recordModelCall(this.ctx.db, call);
    this.recorded = addUsage(this.recorded, [call]);
    this.deltas.queue([segmentEnd]);
    if (turn.iteration >= setup.cfg.maxIterations) {
      throw new RunFailure('budget.max_iterations', `the model still asked for tools after ${setup.cfg.maxIterations} turns`);
    }
    conversation.push({ role: 'assistant', content: turn.text, toolCalls: turn.toolCalls });
    return this.runTools(setup, conversation, turn.toolCalls);
  }

  /**
   * Writes the turn's end and all its calls in one statement, runs the tools, and queues
   * their results to ride with what comes next; an ask_user call pauses the run (false).
   */
  private async runTools(setup: Setup, conversation: LlmMessage[], toolCalls: LlmToolCall[], decisions?: Map<string, 'approve' | 'deny'>): Promise<boolean> {
    const { offeredByName, budget } = setup;
    // `decisions` given: the turn's calls were written by an earlier job, which paused for approval.
    if (!decisions) {
      await this.deltas.flushWith(
        toolCalls.map((c) => ({
          type: 'tool.call',
          data: { tool_call_id: c.id, tool_name: c.name, arguments: c.arguments, source: offeredByName.get(c.name)?.source ?? 'builtin' },
        })),
        { outputEmitted: true },
      );
    }
    // No call of the turn runs before each one needing approval has its decision, asked one at a time (§27.5a).
    const unapproved = toolCalls.find((c) => offeredByName.has(c.name) && needsApproval(c.name, setup.cfg.toolApproval) && !decisions?.has(c.id));
    if (unapproved) {
      const wait = {
        kind: 'tool_approval' as const,
        prompt: approvalPrompt(unapproved.name),
        toolCallId: unapproved.id,
        toolName: unapproved.name,
        arguments: unapproved.arguments,
        argumentsSha256: argumentsSha256(unapproved.arguments),
      };
      if (!(await pauseForInput(this.ctx, { id: this.runId, orgId: this.run.org_id }, wait, await this.deltas.take()))) await this.cancelled();
      return false;
    }
    // ask_user pauses the run; its answer arrives as input and becomes its tool.result.
    let question: { call: LlmToolCall; prompt: string } | null = null;
    const outcomes = await Promise.all(
      toolCalls.map(async (call): Promise<ToolOutcome | null> => {
        if (decisions?.get(call.id) === 'deny') return { kind: 'denied', errorClass: 'policy.approval_denied', message: `a person denied this call of ${call.name}` };
        if (!isAskUser(call.name) || !offeredByName.has(call.name) || question) return this.runToolCall(call, offeredByName, budget);
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
    this.deltas.queue(results);
    if (!question) return true;
    const q = question as { call: LlmToolCall; prompt: string };
    if (!(await pauseForInput(this.ctx, { id: this.runId, orgId: this.run.org_id }, { kind: 'input', prompt: q.prompt, toolCallId: q.call.id }, await this.deltas.take()))) await this.cancelled();
    return false;
  }

  private async runToolCall(call: LlmToolCall, offered: Map<string, Tool>, budget: ToolBudget): Promise<ToolOutcome> {
    const tool = offered.get(call.name);
    if (!tool) return { kind: 'denied', errorClass: 'policy.tool_denied', message: `tool ${call.name} is not available to this run` };
    const decision = budget.consume(call.name);
    if (!decision.allowed) return { kind: 'denied', errorClass: decision.errorClass, message: decision.message };
    const started = Date.now();
    const { run } = this;
    try {
      const result = await runToolWithTimeout(tool, call.arguments, { runId: run.id, orgId: run.org_id, userId: run.created_by_user_id, signal: this.signal, log: this.log });
      return { kind: 'ran', result, error: null, durationMs: Date.now() - started };
    } catch (err) {
      const e = err instanceof ToolError ? err : new ToolError('tool.execution_failed', (err as Error).message);
      return { kind: 'ran', result: e.result ?? null, error: { error_class: e.errorClass, message: e.message }, durationMs: Date.now() - started };
    }
  }

  private providerFor(c: RouteCandidate): LlmProvider {
    let p = this.providers.get(c);
    if (!p) this.providers.set(c, (p = createProvider(c.config)));
    return p;
  }

  /** Appends one event after any buffered deltas. */
  private emit(type: string, data: Record<string, unknown>): Promise<void> {
    return this.deltas.flushWith([{ type, data }]);
  }

  /** How an error ends the run — unless the job itself was taken away or the database went. */
  private async fail(err: unknown): Promise<void> {
    if (this.jobSignal.aborted) throw err; // shutdown or lost lease: another worker takes the job over
    // A database outage ends this attempt, not the run: the worker hands the job back (§26.6).
    if (!(err instanceof RunFailure) && !(err instanceof LlmError) && isConnectionError(err)) throw err;
    if (this.cancelSeen || (isAbortError(err) && this.signal.aborted)) return this.cancelled();
    const f = err instanceof RunFailure ? err : new RunFailure('internal.error', (err as Error).message);
    if (!(err instanceof RunFailure)) this.log.error({ err, run_id: this.runId }, 'run failed unexpectedly');
    await this.finish({ status: 'failed', errorClass: f.errorClass, message: f.message, retryable: isRetryableClass(f.errorClass), details: f.details });
  }

  private cancelled(): Promise<void> {
    return this.finish({ status: 'cancelled', reason: this.run.cancel_reason ?? 'user', cancelledBy: this.run.cancel_requested_by });
  }

  /** The terminal statement, with whatever is still buffered and the last turn's usage. */
  private async finish(outcome: Outcome, usage: UsageRecord[] = []): Promise<void> {
    this.ended = true;
    const { run } = this;
    await finishRun(this.ctx, {
      runId: this.runId,
      orgId: run.org_id,
      threadId: run.thread_id,
      userId: run.created_by_user_id,
      createdAt: run.created_at,
      text: this.text,
      model: this.model,
      outcome,
      events: await this.deltas.take(),
      usage,
      priorTotals: this.recorded,
    });
  }
}
