// Chat: the thread list (search, starred, projects) and a conversation with its live run:
// streamed markdown, folded tool calls, approval and input cards, cancel and retry. A run in
// progress is followed after a reload from the last seq this tab saw (lib/run-view.js).
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { followRun } from '../lib/stream.js';
import { applyEvent, emptyRun, savedRun, saveRun } from '../lib/run-view.js';
import { renderMarkdown } from '../lib/markdown.js';
import { navigate, onLinkClick } from '../lib/router.js';
import { ErrorNote } from './ui.js';

const list = (x) => (Array.isArray(x) ? x : x?.data ?? []);
const threadTitle = (t) => t.title || 'Untitled chat';

function Markdown({ text, live }) {
  return html`<div class="md" data-live=${live ? 'true' : undefined} dangerouslySetInnerHTML=${{ __html: renderMarkdown(text) }}></div>`;
}

function ThreadList({ currentId, version, onChanged }) {
  const [q, setQ] = useState('');
  const [show, setShow] = useState('all');
  const [threads, setThreads] = useState([]);
  const [projects, setProjects] = useState([]);
  const [newProject, setNewProject] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => { api('GET', '/v1/projects?limit=100').then((p) => setProjects(list(p))).catch(setError); }, [version]);
  useEffect(() => {
    const ctrl = { stale: false };
    const timer = setTimeout(async () => {
      try {
        let rows;
        if (q.trim()) rows = await api('GET', `/v1/threads/search?q=${encodeURIComponent(q.trim())}&limit=50`);
        else if (show === 'starred') rows = await api('GET', '/v1/threads/starred?limit=50');
        else if (show !== 'all') rows = await api('GET', `/v1/threads?limit=50&project_id=${show}`);
        else rows = await api('GET', '/v1/threads?limit=50');
        if (!ctrl.stale) { setThreads(list(rows)); setError(null); }
      } catch (err) {
        if (!ctrl.stale) setError(err);
      }
    }, q ? 200 : 0);
    return () => { ctrl.stale = true; clearTimeout(timer); };
  }, [q, show, version]);

  const toggleStar = async (t) => {
    await api(t.starred ? 'DELETE' : 'POST', `/v1/threads/${t.id}/star`).catch(setError);
    onChanged();
  };
  const createProject = async (e) => {
    e.preventDefault();
    try {
      const p = await api('POST', '/v1/projects', { name: newProject.trim() });
      setNewProject(null);
      setShow(p.id);
      onChanged();
    } catch (err) {
      setError(err);
    }
  };

  return html`<aside class="sidebar" aria-label="Threads">
    <a class="button primary" href="/" onClick=${onLinkClick}>New chat</a>
    <input type="search" aria-label="Search threads" placeholder="Search threads" value=${q} onInput=${(e) => setQ(e.currentTarget.value)} />
    <div class="row">
      <select aria-label="Show threads" value=${show} onChange=${(e) => setShow(e.currentTarget.value)}>
        <option value="all">All my threads</option>
        <option value="starred">Starred</option>
        ${projects.map((p) => html`<option value=${p.id}>Project: ${p.name}</option>`)}
      </select>
      <button type="button" onClick=${() => setNewProject('')} aria-label="New project">+ Project</button>
    </div>
    ${newProject !== null
      ? html`<form class="row" onSubmit=${createProject}>
          <input aria-label="Project name" value=${newProject} onInput=${(e) => setNewProject(e.currentTarget.value)} required />
          <button type="submit">Create</button>
        </form>`
      : null}
    <${ErrorNote} error=${error} />
    <ul class="threads">
      ${threads.map((t) => html`<li key=${t.id} class=${t.id === currentId ? 'current' : ''}>
        <a href=${`/t/${t.id}`} onClick=${onLinkClick} aria-current=${t.id === currentId ? 'page' : undefined}>${threadTitle(t)}</a>
        <button type="button" class="star" aria-pressed=${t.starred ? 'true' : 'false'} aria-label=${`Star ${threadTitle(t)}`} onClick=${() => toggleStar(t)}>${t.starred ? '★' : '☆'}</button>
      </li>`)}
      ${threads.length === 0 ? html`<li class="empty">No threads yet.</li>` : null}
    </ul>
  </aside>`;
}

function ToolItem({ item }) {
  const state = item.state === 'running' ? (item.decision ? 'running' : 'pending') : item.state;
  return html`<details class=${`tool ${item.state}`}>
    <summary>Tool <code>${item.name}</code> · ${state}${item.decision ? ` (${item.decision}d)` : ''}</summary>
    <p class="label">Arguments</p><pre>${JSON.stringify(item.args, null, 2)}</pre>
    ${item.result !== undefined && item.result !== null ? html`<p class="label">Result</p><pre>${typeof item.result === 'string' ? item.result : JSON.stringify(item.result, null, 2)}</pre>` : null}
    ${item.error ? html`<p class="label">Error</p><pre>${item.error.error_class}: ${item.error.message}</pre>` : null}
  </details>`;
}

function WaitingCard({ run, onAnswer }) {
  const w = run.waiting;
  const [answer, setAnswer] = useState('');
  const [busy, setBusy] = useState(false);
  const send = async (body) => {
    setBusy(true);
    try { await onAnswer(body); } finally { setBusy(false); }
  };
  if (w.kind === 'tool_approval') {
    return html`<section class="card approval" aria-label="Approval needed">
      <h3>Approve tool call?</h3>
      <p>${w.prompt}</p>
      <p>The agent wants to run <code>${w.tool_name}</code> with exactly these arguments:</p>
      <pre class="args">${JSON.stringify(w.arguments, null, 2)}</pre>
      <div class="row">
        <button type="button" class="primary" disabled=${busy} onClick=${() => send({ approval: { tool_call_id: w.tool_call_id, decision: 'approve', arguments_sha256: w.arguments_sha256 } })}>Approve</button>
        <button type="button" disabled=${busy} onClick=${() => send({ approval: { tool_call_id: w.tool_call_id, decision: 'deny', arguments_sha256: w.arguments_sha256 } })}>Deny</button>
      </div>
    </section>`;
  }
  return html`<form class="card input-request" aria-label="Input requested" onSubmit=${(e) => { e.preventDefault(); if (answer.trim()) send({ content: answer }); }}>
    <h3>The agent asks</h3>
    <p>${w.prompt}</p>
    <label for="run-answer">Your answer</label>
    <textarea id="run-answer" value=${answer} onInput=${(e) => setAnswer(e.currentTarget.value)} required></textarea>
    <button type="submit" class="primary" disabled=${busy}>Send answer</button>
  </form>`;
}

function LiveRun({ run, onAnswer }) {
  return html`<article class="msg assistant live" aria-live="polite" aria-busy=${run.status === 'running' ? 'true' : 'false'}>
    ${run.items.map((it) =>
      it.kind === 'tool' ? html`<${ToolItem} item=${it} />`
      : it.kind === 'thinking' ? html`<details class="thinking"><summary>Thinking</summary><p>${it.text}</p></details>`
      : html`<${Markdown} text=${it.text} live />`)}
    ${run.status === 'running' && !run.items.length ? html`<p class="typing" role="status">Thinking…</p>` : null}
    ${run.waiting ? html`<${WaitingCard} run=${run} onAnswer=${onAnswer} />` : null}
    ${run.status === 'failed' ? html`<p class="error" role="alert">The run failed: ${run.error?.message ?? ''} <code>${run.error?.error_class ?? ''}</code></p>` : null}
    ${run.status === 'cancelled' ? html`<p class="note">Cancelled.</p>` : null}
  </article>`;
}

function ThreadHeader({ thread, projects, onChanged, onDeleted }) {
  const [renaming, setRenaming] = useState(null);
  const [error, setError] = useState(null);
  const patch = async (body) => {
    try { await api('PATCH', `/v1/threads/${thread.id}`, body); onChanged(); } catch (err) { setError(err); }
  };
  const rename = async (e) => { e.preventDefault(); await patch({ title: renaming.trim() || null }); setRenaming(null); };
  const star = async () => { await api(thread.starred ? 'DELETE' : 'POST', `/v1/threads/${thread.id}/star`).catch(setError); onChanged(); };
  const remove = async () => {
    if (!confirm('Delete this thread?')) return;
    try { await api('DELETE', `/v1/threads/${thread.id}`); onDeleted(); } catch (err) { setError(err); }
  };
  return html`<header class="thread-head">
    <a class="back" href="/" onClick=${onLinkClick}>‹ Threads</a>
    ${renaming !== null
      ? html`<form class="row" onSubmit=${rename}>
          <input aria-label="Thread title" value=${renaming} onInput=${(e) => setRenaming(e.currentTarget.value)} maxlength="200" />
          <button type="submit">Save</button><button type="button" onClick=${() => setRenaming(null)}>Cancel</button>
        </form>`
      : html`<h1>${threadTitle(thread)}</h1>`}
    <div class="row tools">
      <button type="button" aria-pressed=${thread.starred ? 'true' : 'false'} onClick=${star}>${thread.starred ? '★ Starred' : '☆ Star'}</button>
      <button type="button" onClick=${() => setRenaming(thread.title ?? '')}>Rename</button>
      <select aria-label="Project" value=${thread.project_id ?? ''} onChange=${(e) => patch({ project_id: e.currentTarget.value || null })}>
        <option value="">No project</option>
        ${projects.map((p) => html`<option value=${p.id}>${p.name}</option>`)}
      </select>
      <button type="button" class="danger" onClick=${remove}>Delete</button>
    </div>
    <${ErrorNote} error=${error} />
  </header>`;
}

function Conversation({ threadId, version, onChanged }) {
  const [thread, setThread] = useState(null);
  const [messages, setMessages] = useState([]);
  const [run, setRun] = useState(null);
  const [tools, setTools] = useState({}); // run id → its tool items, for runs followed in this tab
  const [projects, setProjects] = useState([]);
  const [personas, setPersonas] = useState([]);
  const [persona, setPersona] = useState('');
  const [text, setText] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const follow = useRef(null);
  const bottom = useRef(null);

  const loadMessages = async (id) => setMessages(list(await api('GET', `/v1/threads/${id}/messages?limit=100`)));

  const followLive = (id, runId) => {
    follow.current?.abort();
    const ctrl = new AbortController();
    follow.current = ctrl;
    let state = savedRun(runId) ?? emptyRun(runId);
    setRun(state);
    followRun(runId, {
      afterSeq: state.lastSeq,
      signal: ctrl.signal,
      onEvent: (ev) => {
        state = applyEvent(state, ev);
        saveRun(state);
        setRun(state);
      },
    })
      .then(async () => {
        if (ctrl.signal.aborted) return;
        const toolItems = state.items.filter((i) => i.kind === 'tool');
        if (toolItems.length) setTools((t) => ({ ...t, [runId]: toolItems }));
        await loadMessages(id);
        setRun(state.status === 'completed' ? null : state);
        onChanged();
      })
      .catch((err) => { if (!ctrl.signal.aborted) setError(err); });
  };

  useEffect(() => {
    api('GET', '/v1/me/selectable-personas').then((p) => setPersonas(list(p))).catch(() => setPersonas([]));
  }, []);
  useEffect(() => { api('GET', '/v1/projects?limit=100').then((p) => setProjects(list(p))).catch(() => undefined); }, [version]);

  useEffect(() => {
    setError(null);
    if (!threadId) { setThread(null); setMessages([]); setRun(null); return undefined; }
    let stale = false;
    setThread((cur) => (cur?.id === threadId ? cur : null)); // no other thread's title while this one loads
    (async () => {
      try {
        const t = await api('GET', `/v1/threads/${threadId}`);
        if (stale) return;
        setThread(t);
        await loadMessages(threadId);
        if (t.active_run_id) followLive(threadId, t.active_run_id);
        else setRun(null);
      } catch (err) {
        if (!stale) setError(err);
      }
    })();
    return () => { stale = true; follow.current?.abort(); };
  }, [threadId]);

  useEffect(() => {
    if (threadId) api('GET', `/v1/threads/${threadId}`).then(setThread).catch(() => undefined);
  }, [version]);

  useEffect(() => { bottom.current?.scrollIntoView({ block: 'end' }); }, [messages, run]);

  const active = run && (run.status === 'running' || run.status === 'waiting_for_input');

  const send = async (e) => {
    e?.preventDefault();
    const content = text.trim();
    if (!content || busy || active) return;
    setBusy(true);
    setError(null);
    try {
      let id = threadId;
      if (!id) id = (await api('POST', '/v1/threads', { title: content.slice(0, 80) })).id;
      const msg = await api('POST', `/v1/threads/${id}/messages`, { content });
      setText('');
      const created = await api('POST', `/v1/threads/${id}/runs`, persona ? { persona_id: persona } : {});
      setMessages((m) => (id === threadId ? [...m, msg] : [msg]));
      // Streams at once; for a new chat the thread's page picks the stream up after its last seq.
      followLive(id, created.run_id);
      if (id !== threadId) navigate(`/t/${id}`);
      onChanged();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const cancel = async () => api('POST', `/v1/runs/${run.runId}:cancel`).catch(setError);
  const retry = async () => {
    setError(null);
    try {
      const created = await api('POST', `/v1/threads/${threadId}:retry`, persona ? { persona_id: persona } : {});
      await loadMessages(threadId);
      followLive(threadId, created.run_id);
    } catch (err) {
      setError(err);
    }
  };
  const answer = async (body) => {
    try { await api('POST', `/v1/runs/${run.runId}/input`, body); } catch (err) { setError(err); }
  };
  const onKeyDown = (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) send(e);
  };

  const last = messages[messages.length - 1];
  const canRetry = !active && threadId && messages.length > 0;

  return html`<section class="conversation" aria-label="Conversation">
    ${thread ? html`<${ThreadHeader} thread=${thread} projects=${projects} onChanged=${onChanged} onDeleted=${() => { onChanged(); navigate('/'); }} />`
      : html`<header class="thread-head"><h1>${threadId ? 'Loading…' : 'New chat'}</h1></header>`}
    <div class="messages">
      ${messages.map((m) => html`<article key=${m.id} class=${`msg ${m.role}`} aria-label=${m.role === 'user' ? 'You' : 'Assistant'}>
        ${m.role === 'assistant' && tools[m.run_id] ? tools[m.run_id].map((it) => html`<${ToolItem} item=${it} />`) : null}
        ${m.role === 'assistant' ? html`<${Markdown} text=${m.content} />` : html`<p class="plain">${m.content}</p>`}
      </article>`)}
      ${run ? html`<${LiveRun} run=${run} onAnswer=${answer} />` : null}
      ${!threadId && !messages.length ? html`<p class="hint">Ask anything to start a chat.</p>` : null}
      <div ref=${bottom}></div>
    </div>
    <${ErrorNote} error=${error} />
    <form class="composer" onSubmit=${send}>
      <label for="composer-text" class="visually-hidden">Message</label>
      <textarea id="composer-text" placeholder="Message (Enter to send, Shift+Enter for a new line)" value=${text}
        onInput=${(e) => setText(e.currentTarget.value)} onKeyDown=${onKeyDown} rows="3"></textarea>
      <div class="row">
        <select aria-label="Persona" value=${persona} onChange=${(e) => setPersona(e.currentTarget.value)}>
          <option value="">Default persona</option>
          ${personas.map((p) => html`<option value=${p.persona_key}>${p.display_name ?? p.persona_key}</option>`)}
        </select>
        ${active
          ? html`<button type="button" class="danger" onClick=${cancel} disabled=${run.cancelRequested}>${run.cancelRequested ? 'Cancelling…' : 'Cancel run'}</button>`
          : html`<button type="submit" class="primary" disabled=${busy || !text.trim()}>Send</button>`}
        ${canRetry && last?.role === 'assistant' || (run && !active && run.status !== 'completed')
          ? html`<button type="button" onClick=${retry}>Retry</button>` : null}
      </div>
    </form>
  </section>`;
}

export function ChatPage({ threadId }) {
  const [version, setVersion] = useState(0);
  const onChanged = () => setVersion((v) => v + 1);
  return html`<main class=${`chat ${threadId ? 'has-thread' : ''}`}>
    <${ThreadList} currentId=${threadId} version=${version} onChanged=${onChanged} />
    <${Conversation} threadId=${threadId} version=${version} onChanged=${onChanged} />
  </main>`;
}
