// Platform admin: dashboard, users (suspend, reactivate), runs with their event timeline,
// platform settings and the audit log.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api, authedFetch } from '../lib/api.js';
import { navigate, onLinkClick } from '../lib/router.js';
import { ActionButton, ResourceTable, Stats } from './resource.js';
import { ErrorNote, when } from './ui.js';

const SECTIONS = [['', 'Dashboard'], ['users', 'Users'], ['runs', 'Runs'], ['settings', 'Platform settings'], ['audit', 'Audit log']];

function Dashboard() {
  const [d, setD] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { api('GET', '/v1/admin/dashboard').then(setD).catch(setError); }, []);
  return html`<section aria-labelledby="section-title"><h2 id="section-title">Dashboard</h2><${ErrorNote} error=${error} />
    ${d ? html`<${Stats} items=${[['Users', d.total_users], ['Active users (30 days)', d.active_users_30d], ['Runs', d.total_runs], ['Runs today', d.runs_today],
      ['Input tokens', d.total_input_tokens], ['Output tokens', d.total_output_tokens], ['Cost (USD)', Number(d.total_cost_usd).toFixed(4)], ['Active accounts (30 days)', d.active_orgs]]} />` : null}
  </section>`;
}

function Users({ me }) {
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  useEffect(() => { const t = setTimeout(() => setQuery(q.trim()), 200); return () => clearTimeout(t); }, [q]);
  return html`<div>
    <input type="search" aria-label="Search users" placeholder="Search login, name or email" value=${q} onInput=${(e) => setQ(e.currentTarget.value)} />
    <${ResourceTable} title="Users" deps=${[query]} load=${() => api('GET', `/v1/admin/users?limit=100${query ? `&q=${encodeURIComponent(query)}` : ''}`)}
      columns=${[{ label: 'Login', render: (r) => r.login }, { label: 'Email', render: (r) => r.email }, { label: 'Status', render: (r) => r.status },
        { label: 'Admin', render: (r) => (r.is_platform_admin ? 'yes' : '') }, { label: 'Last login', render: (r) => when(r.last_login_at) }, { label: 'Joined', render: (r) => when(r.created_at) }]}
      actions=${(r, reload, setError) => r.id === me.id ? null : r.status === 'active'
        ? html`<${ActionButton} label="Suspend" ariaLabel="Suspend" danger run=${() => api('PATCH', `/v1/admin/users/${r.id}`, { status: 'suspended' })} reload=${reload} setError=${setError} />`
        : html`<${ActionButton} label="Reactivate" run=${() => api('PATCH', `/v1/admin/users/${r.id}`, { status: 'active' })} reload=${reload} setError=${setError} />`} />
  </div>`;
}

function Runs() {
  const [id, setId] = useState('');
  return html`<div>
    <form class="row" onSubmit=${(e) => { e.preventDefault(); if (id.trim()) navigate(`/admin/runs/${id.trim()}`); }}>
      <input aria-label="Run id" placeholder="run id" value=${id} onInput=${(e) => setId(e.currentTarget.value)} required />
      <button type="submit">Open run</button>
    </form>
    <${ResourceTable} title="Runs" intro="Recent runs of the current account; open any run of any account by its id."
      load=${() => api('GET', '/v1/runs?limit=50')}
      columns=${[{ label: 'Run', render: (r) => html`<a href=${`/admin/runs/${r.run_id}`} onClick=${onLinkClick}><code>${r.run_id.slice(0, 8)}</code></a>` },
        { label: 'Status', render: (r) => r.status }, { label: 'Model', render: (r) => r.model ?? '—' }, { label: 'By', render: (r) => r.created_by_user_name },
        { label: 'Tokens in/out', render: (r) => `${r.total_input_tokens}/${r.total_output_tokens}` }, { label: 'Started', render: (r) => when(r.created_at) }]} />
  </div>`;
}

function RunDetail({ runId }) {
  const [run, setRun] = useState(null);
  const [events, setEvents] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api('GET', `/v1/admin/runs/${runId}`).then(setRun).catch(setError);
    fetchEvents(runId).then(setEvents).catch(() => setEvents(null));
  }, [runId]);
  return html`<section aria-labelledby="section-title">
    <h2 id="section-title">Run <code>${runId}</code></h2>
    <${ErrorNote} error=${error} />
    ${run ? html`<${Stats} items=${[['Status', run.status], ['Provider', run.provider_kind ? `${run.credential_name ?? ''} (${run.provider_kind})` : '—'], ['Model', run.model],
      ['Persona', run.persona_id ?? 'default'], ['Tokens in/out', `${run.total_input_tokens}/${run.total_output_tokens}`], ['Cost (USD)', Number(run.total_cost_usd).toFixed(6)],
      ['Duration', run.duration_ms === null ? '—' : `${run.duration_ms} ms`], ['Error', run.error_class ?? '—'], ['Trace', run.trace_id], ['By', run.created_by_user_name]]} />` : null}
    <h3>Event timeline</h3>
    ${events === null ? html`<p class="note">The events of this run are not visible from the current account.</p>`
      : html`<ol class="timeline">${events.map((e) => html`<li><details><summary><code>${e.seq}</code> ${e.type} · ${new Date(e.ts).toISOString().slice(11, 23)}</summary><pre>${JSON.stringify(e.data, null, 2)}</pre></details></li>`)}</ol>`}
  </section>`;
}

async function fetchEvents(runId) {
  const out = [];
  let after = 0;
  for (;;) {
    const page = await fetchEventsPage(runId, after);
    out.push(...page.data);
    if (page.data.length === 0 || page.last_seq <= after || out.length >= 5000) return out;
    after = page.data[page.data.length - 1].seq;
    if (after >= page.last_seq) return out;
  }
}

const fetchEventsPage = async (runId, after) =>
  (await authedFetch(`/v1/runs/${runId}/events?after_seq=${after}&limit=1000&follow=false`, { headers: { accept: 'application/json' } })).json();

function PlatformSettings() {
  return html`<${ResourceTable} title="Platform settings" load=${() => api('GET', '/v1/admin/platform-settings')}
    columns=${[{ label: 'Key', render: (r) => html`<code>${r.key}</code>` }, { label: 'Value', render: (r) => html`<code>${JSON.stringify(r.effective)}</code>` },
      { label: 'Source', render: (r) => r.source }, { label: 'About', render: (r) => r.description }]}
    actions=${(r, reload, setError) => r.source === 'env' ? null : html`<${ActionButton} label="Edit" ariaLabel=${`Edit ${r.key}`} run=${async () => {
      const raw = prompt(`New value for ${r.key} (JSON; empty = back to the default)`, r.value === null ? '' : JSON.stringify(r.value));
      if (raw === null) return;
      await api('PUT', `/v1/admin/platform-settings/${encodeURIComponent(r.key)}`, { value: raw.trim() === '' ? null : JSON.parse(raw) });
    }} reload=${reload} setError=${setError} />`} />`;
}

function AuditLog() {
  const [action, setAction] = useState('');
  const [query, setQuery] = useState('');
  return html`<div>
    <form class="row" onSubmit=${(e) => { e.preventDefault(); setQuery(action.trim()); }}>
      <input aria-label="Filter by action" placeholder="action, e.g. user.* " value=${action} onInput=${(e) => setAction(e.currentTarget.value)} />
      <button type="submit">Filter</button>
    </form>
    <${ResourceTable} title="Audit log" deps=${[query]} load=${() => api('GET', `/v1/audit-logs?limit=100${query ? `&action=${encodeURIComponent(query)}` : ''}`)}
      columns=${[{ label: 'When', render: (r) => when(r.created_at) }, { label: 'Action', render: (r) => html`<code>${r.action}</code>` }, { label: 'Actor', render: (r) => r.actor_user_id?.slice(0, 8) ?? '—' },
        { label: 'Target', render: (r) => (r.target_type ? `${r.target_type} ${r.target_id?.slice(0, 8) ?? ''}` : '—') }, { label: 'IP', render: (r) => r.ip_address ?? '—' }]} />
  </div>`;
}

export function AdminPage({ me, path }) {
  const parts = path.split('/');
  const section = parts[2] ?? '';
  let view;
  if (section === 'runs' && parts[3]) view = html`<${RunDetail} runId=${parts[3]} />`;
  else if (section === 'users') view = html`<${Users} me=${me} />`;
  else if (section === 'runs') view = html`<${Runs} />`;
  else if (section === 'settings') view = html`<${PlatformSettings} />`;
  else if (section === 'audit') view = html`<${AuditLog} />`;
  else view = html`<${Dashboard} />`;
  return html`<main class="page">
    <h1>Admin</h1>
    <div class="section-layout">
      <nav class="section-nav" aria-label="Admin sections">
        ${SECTIONS.map(([k, label]) => html`<a href=${`/admin${k ? `/${k}` : ''}`} onClick=${onLinkClick} aria-current=${k === section ? 'page' : undefined}>${label}</a>`)}
      </nav>
      <div>${view}</div>
    </div>
  </main>`;
}
