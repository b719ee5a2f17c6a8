// Account settings: profile and workspace, members and invitations, API keys, LLM providers
// and models, personas, MCP servers, tool providers, webhooks, usage and credits.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api, selectAccount, selectedAccount } from '../lib/api.js';
import { onLinkClick } from '../lib/router.js';
import { ActionButton, ResourceTable, Stats } from './resource.js';
import { ErrorNote, when } from './ui.js';

const SECTIONS = [
  ['account', 'Account'],
  ['members', 'Members'],
  ['api-keys', 'API keys'],
  ['providers', 'LLM providers'],
  ['personas', 'Personas'],
  ['mcp', 'MCP servers'],
  ['tools', 'Tool providers'],
  ['webhooks', 'Webhooks'],
  ['usage', 'Usage and credits'],
];

const csv = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
const yesNo = (b) => (b ? 'yes' : 'no');

function AccountSection({ me, reloadMe }) {
  const [accounts, setAccounts] = useState([]);
  const [error, setError] = useState(null);
  useEffect(() => { api('GET', '/v1/accounts/me').then(setAccounts).catch(setError); }, [me.org_id]);
  const use = async (id) => {
    selectAccount(id === accounts[0]?.id ? null : id);
    await reloadMe();
  };
  return html`<section aria-labelledby="section-title">
    <h2 id="section-title">Account</h2>
    <${Stats} items=${[['Signed in as', me.login], ['Email', me.email], ['Current account', me.org_name], ['Role', me.role]]} />
    <h3>Your accounts</h3>
    <${ErrorNote} error=${error} />
    <ul>${accounts.map((a) => html`<li>${a.name} (${a.type}, ${a.role})
      ${a.id === me.org_id ? html` — <strong>current</strong>` : html` <button type="button" onClick=${() => use(a.id)}>Use this account</button>`}</li>`)}</ul>
    <${ResourceTable} title="New workspace" load=${async () => []} columns=${[]} empty="A workspace is an account you share with others."
      create=${{ title: 'Create a workspace', fields: [{ name: 'name', label: 'Name', required: true }, { name: 'slug', label: 'Slug (a-z, 0-9, -)', required: true }],
        submit: async (v) => { const a = await api('POST', '/v1/accounts', v); setAccounts(await api('GET', '/v1/accounts/me')); return a; } }} />
  </section>`;
}

function MembersSection({ me }) {
  const acc = me.org_id;
  return html`
    <${ResourceTable} title="Members" load=${() => api('GET', `/v1/accounts/${acc}/members`)} deps=${[acc]}
      columns=${[{ label: 'Login', render: (r) => r.login }, { label: 'Email', render: (r) => r.email }, { label: 'Role', render: (r) => r.role }, { label: 'Joined', render: (r) => when(r.created_at) }]} />
    ${me.org_type === 'workspace'
      ? html`<${ResourceTable} title="Invitations" load=${() => api('GET', `/v1/accounts/${acc}/invitations`)} deps=${[acc]}
          columns=${[{ label: 'Email', render: (r) => r.email }, { label: 'Role', render: (r) => r.role }, { label: 'Status', render: (r) => r.status }, { label: 'Expires', render: (r) => when(r.expires_at) }]}
          create=${{ title: 'Invite someone', button: 'Invite', fields: [{ name: 'email', label: 'Email', type: 'email', required: true }, { name: 'role', label: 'Role', options: [{ value: 'member', label: 'member' }, { value: 'admin', label: 'admin' }] }],
            submit: (v) => api('POST', `/v1/accounts/${acc}/invitations`, v), reveal: (c) => ({ label: 'Invitation link', value: `${location.origin}/invitations/${c.token}` }) }}
          actions=${(r, reload, setError) => r.status === 'pending' ? html`<${ActionButton} label="Revoke" danger run=${() => api('DELETE', `/v1/account-invitations/${r.id}`)} reload=${reload} setError=${setError} />` : null} />`
      : html`<p class="note">Invitations belong to workspaces: create one under Account, then switch to it.</p>`}`;
}

function ApiKeysSection() {
  return html`<${ResourceTable} title="API keys" intro="Keys act as you in the current account; scripts send them as Authorization: Bearer al_…"
    load=${() => api('GET', '/v1/api-keys')}
    columns=${[{ label: 'Name', render: (r) => r.name }, { label: 'Prefix', render: (r) => html`<code>${r.key_prefix}</code>` }, { label: 'Scopes', render: (r) => r.scopes.join(', ') || 'all of yours' },
      { label: 'Last used', render: (r) => when(r.last_used_at) }, { label: 'Status', render: (r) => (r.revoked_at ? 'revoked' : 'active') }]}
    create=${{ title: 'New API key', fields: [{ name: 'name', label: 'Name', required: true }, { name: 'scopes', label: 'Scopes (comma-separated, empty = all of yours)' }],
      submit: (v) => api('POST', '/v1/api-keys', { name: v.name, scopes: csv(v.scopes) }), reveal: (c) => ({ label: 'Your new API key', value: c.key }) }}
    actions=${(r, reload, setError) => r.revoked_at ? null : html`<${ActionButton} label="Revoke" danger confirmText="Revoke this key?" run=${() => api('DELETE', `/v1/api-keys/${r.id}`)} reload=${reload} setError=${setError} />`} />`;
}

function AddModel({ provider, reload }) {
  const [model, setModel] = useState('');
  const [error, setError] = useState(null);
  const add = async (e) => {
    e.preventDefault();
    try { await api('POST', `/v1/llm-providers/${provider.id}/models`, { model: model.trim() }); setModel(''); await reload(); } catch (err) { setError(err); }
  };
  return html`<form class="row" onSubmit=${add}><input aria-label=${`Model name for ${provider.name}`} placeholder="model name" value=${model} onInput=${(e) => setModel(e.currentTarget.value)} required /><button type="submit">Add model</button><${ErrorNote} error=${error} /></form>`;
}

function ProvidersSection({ me }) {
  const scopes = [{ value: 'org', label: 'this account' }, ...(me.is_platform_admin ? [{ value: 'platform', label: 'platform (every account)' }] : [])];
  return html`<${ResourceTable} title="LLM providers" intro="Runs are routed to a model by selector provider^model; without providers the built-in stub answers."
    load=${() => api('GET', '/v1/llm-providers?scope=all')}
    columns=${[{ label: 'Name', render: (r) => r.name }, { label: 'Kind', render: (r) => r.provider }, { label: 'Scope', render: (r) => r.scope }, { label: 'Key', render: (r) => (r.key_prefix ? html`<code>${r.key_prefix}…</code>` : '—') },
      { label: 'Models', render: (r) => r.models.map((m) => html`<div><code>${r.name}^${m.model}</code>${m.is_default ? ' (default)' : ''}</div>`) }]}
    create=${{ title: 'Add a provider', fields: [{ name: 'name', label: 'Name', required: true }, { name: 'provider', label: 'Kind', options: ['openai', 'anthropic', 'stub'].map((k) => ({ value: k, label: k })) },
      { name: 'api_key', label: 'API key', type: 'password' }, { name: 'base_url', label: 'Base URL (optional)', type: 'url' }, { name: 'scope', label: 'Scope', options: scopes }],
      submit: (v) => api('POST', '/v1/llm-providers', { name: v.name, provider: v.provider, scope: v.scope, ...(v.api_key ? { api_key: v.api_key } : {}), ...(v.base_url ? { base_url: v.base_url } : {}) }) }}
    actions=${(r, reload, setError) => (r.scope === 'org' || me.is_platform_admin) ? html`<${AddModel} provider=${r} reload=${reload} />
      <${ActionButton} label="Delete" ariaLabel=${`Delete provider ${r.name}`} danger confirmText="Delete this provider and its models?" run=${() => api('DELETE', `/v1/llm-providers/${r.id}`)} reload=${reload} setError=${setError} />` : null} />`;
}

function PersonasSection() {
  return html`<${ResourceTable} title="Personas" intro="A persona is a system prompt with a tool policy, budgets and a model; the built-in ones are always there."
    load=${() => api('GET', '/v1/personas')}
    columns=${[{ label: 'Key', render: (r) => html`<code>${r.persona_key}@${r.version}</code>` }, { label: 'Name', render: (r) => r.display_name }, { label: 'Model', render: (r) => r.model ?? '—' },
      { label: 'Needs approval', render: (r) => (r.tool_approval ?? []).join(', ') || '—' }, { label: 'Active', render: (r) => yesNo(r.is_active) }]}
    create=${{ title: 'New persona', fields: [{ name: 'persona_key', label: 'Key', required: true }, { name: 'display_name', label: 'Display name', required: true },
      { name: 'prompt_md', label: 'System prompt', textarea: true, required: true }, { name: 'model', label: 'Model selector (optional)', placeholder: 'provider^model' },
      { name: 'tool_approval', label: 'Tools that need approval (comma-separated)' }],
      submit: (v) => api('POST', '/v1/personas', { persona_key: v.persona_key, display_name: v.display_name, prompt_md: v.prompt_md, tool_approval: csv(v.tool_approval), ...(v.model ? { model: v.model } : {}) }) }}
    actions=${(r, reload, setError) => html`<${ActionButton} label="Delete" ariaLabel=${`Delete persona ${r.persona_key}@${r.version}`} danger confirmText="Delete this persona version?" run=${() => api('DELETE', `/v1/personas/${r.id}`)} reload=${reload} setError=${setError} />`} />`;
}

function McpTools({ config }) {
  const [tools, setTools] = useState(null);
  const [error, setError] = useState(null);
  const discover = async () => {
    setError(null);
    try { setTools((await api('GET', `/v1/mcp-configs/${config.id}/tools`)).tools); } catch (err) { setError(err); }
  };
  return html`<div><button type="button" onClick=${discover}>Discover tools</button><${ErrorNote} error=${error} />
    ${tools ? html`<ul>${tools.map((t) => html`<li><code>${t.name}</code> — ${t.description}</li>`)}</ul>` : null}</div>`;
}

function McpSection() {
  return html`<${ResourceTable} title="MCP servers" load=${() => api('GET', '/v1/mcp-configs')}
    columns=${[{ label: 'Name', render: (r) => r.name }, { label: 'Transport', render: (r) => r.transport }, { label: 'Target', render: (r) => html`<code>${r.url ?? [r.command, ...r.args].join(' ')}</code>` },
      { label: 'Active', render: (r) => yesNo(r.is_active) }, { label: 'Tools', render: (r) => html`<${McpTools} config=${r} />` }]}
    create=${{ title: 'Add an MCP server', fields: [{ name: 'name', label: 'Name', required: true },
      { name: 'transport', label: 'Transport', options: ['streamable_http', 'http_sse', 'stdio'].map((k) => ({ value: k, label: k })) },
      { name: 'url', label: 'URL (remote transports)', type: 'url' }, { name: 'bearer_token', label: 'Bearer token (optional)', type: 'password' },
      { name: 'command', label: 'Command (stdio, platform admins only)' }, { name: 'args', label: 'Arguments (comma-separated)' }],
      submit: (v) => api('POST', '/v1/mcp-configs', { name: v.name, transport: v.transport, ...(v.url ? { url: v.url } : {}), ...(v.bearer_token ? { bearer_token: v.bearer_token } : {}),
        ...(v.command ? { command: v.command, args: csv(v.args) } : {}) }) }}
    actions=${(r, reload, setError) => html`<${ActionButton} label="Delete" ariaLabel=${`Delete MCP server ${r.name}`} danger confirmText="Delete this MCP server?" run=${() => api('DELETE', `/v1/mcp-configs/${r.id}`)} reload=${reload} setError=${setError} />`} />`;
}

function ToolsSection({ me }) {
  const [scope, setScope] = useState('org');
  const base = (r) => `/v1/tool-providers/${r.group_name}/${r.provider_name}`;
  return html`<div>
    ${me.is_platform_admin ? html`<label>Scope <select value=${scope} onChange=${(e) => setScope(e.currentTarget.value)}><option value="org">this account</option><option value="platform">platform</option></select></label>` : null}
    <${ResourceTable} title="Tool providers" deps=${[scope]} intro="Backends of the web_search and web_fetch tools."
      load=${async () => (await api('GET', `/v1/tool-providers?scope=${scope}`)).groups.flatMap((g) => g.providers.map((p) => ({ ...p, id: p.provider_name })))}
      columns=${[{ label: 'Group', render: (r) => r.group_name }, { label: 'Provider', render: (r) => r.provider_name }, { label: 'Active', render: (r) => yesNo(r.is_active) },
        { label: 'Configured', render: (r) => yesNo(r.configured) }, { label: 'Key', render: (r) => r.key_prefix ?? '—' }]}
      actions=${(r, reload, setError) => html`
        <${ActionButton} label=${r.is_active ? 'Deactivate' : 'Activate'} ariaLabel=${`${r.is_active ? 'Deactivate' : 'Activate'} ${r.provider_name}`}
          run=${() => api('PUT', `${base(r)}/${r.is_active ? 'deactivate' : 'activate'}?scope=${scope}`)} reload=${reload} setError=${setError} />
        ${r.requires_api_key ? html`<${ActionButton} label="Set key" ariaLabel=${`Set the API key of ${r.provider_name}`}
          run=${async () => { const key = prompt(`API key for ${r.provider_name}`); if (key) await api('PUT', `${base(r)}/credential?scope=${scope}`, { api_key: key }); }} reload=${reload} setError=${setError} />` : null}`} />
  </div>`;
}

function Deliveries({ endpoint }) {
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const load = async () => { try { setRows((await api('GET', `/v1/webhook-endpoints/${endpoint.id}/deliveries?limit=20`)).data); } catch (err) { setError(err); } };
  return html`<details onToggle=${(e) => { if (e.currentTarget.open) load(); }}><summary>Delivery log</summary><${ErrorNote} error=${error} />
    ${rows === null ? null : rows.length === 0 ? html`<p class="note">No deliveries yet.</p>`
      : html`<ul>${rows.map((d) => html`<li>${when(d.created_at)} · ${d.event_type} · <strong>${d.status}</strong> · ${d.attempts} attempt(s)${d.last_status_code ? ` · HTTP ${d.last_status_code}` : ''}${d.last_error ? ` · ${d.last_error}` : ''}</li>`)}</ul>`}
  </details>`;
}

function WebhooksSection() {
  return html`<${ResourceTable} title="Webhooks" load=${() => api('GET', '/v1/webhook-endpoints')}
    columns=${[{ label: 'URL', render: (r) => html`<code>${r.url}</code>` }, { label: 'Events', render: (r) => r.events.join(', ') }, { label: 'Enabled', render: (r) => yesNo(r.enabled) },
      { label: 'Deliveries', render: (r) => html`<${Deliveries} endpoint=${r} />` }]}
    create=${{ title: 'Add an endpoint', fields: [{ name: 'url', label: 'URL', type: 'url', required: true }, { name: 'events', label: 'Events (comma-separated, * = all)', value: '*' }, { name: 'description', label: 'Description' }],
      submit: (v) => api('POST', '/v1/webhook-endpoints', { url: v.url, events: csv(v.events), ...(v.description ? { description: v.description } : {}) }), reveal: (c) => ({ label: 'Signing secret', value: c.secret }) }}
    actions=${(r, reload, setError) => html`
      <${ActionButton} label=${r.enabled ? 'Disable' : 'Enable'} run=${() => api('PATCH', `/v1/webhook-endpoints/${r.id}`, { enabled: !r.enabled })} reload=${reload} setError=${setError} />
      <${ActionButton} label="Delete" danger confirmText="Delete this endpoint?" run=${() => api('DELETE', `/v1/webhook-endpoints/${r.id}`)} reload=${reload} setError=${setError} />`} />`;
}

function UsageSection() {
  const [usage, setUsage] = useState(null);
  const [credits, setCredits] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    Promise.all([api('GET', '/v1/me/usage'), api('GET', '/v1/me/credits')]).then(([u, c]) => { setUsage(u); setCredits(c); }).catch(setError);
  }, []);
  return html`<section aria-labelledby="section-title">
    <h2 id="section-title">Usage and credits</h2>
    <${ErrorNote} error=${error} />
    ${usage ? html`<${Stats} items=${[['Month', `${usage.year}-${String(usage.month).padStart(2, '0')}`], ['Input tokens', usage.total_input_tokens], ['Output tokens', usage.total_output_tokens],
      ['Cost (USD)', Number(usage.total_cost_usd).toFixed(4)], ['Model calls', usage.record_count], ['Credit balance', credits?.balance]]} />` : null}
    ${credits ? html`<h3>Credit history</h3><div class="table-wrap"><table><thead><tr><th scope="col">When</th><th scope="col">Amount</th><th scope="col">Why</th><th scope="col">Balance</th></tr></thead>
      <tbody>${credits.transactions.map((t) => html`<tr><td>${when(t.created_at)}</td><td>${t.amount}</td><td>${t.reference_type}${t.thread_title ? ` · ${t.thread_title}` : ''}</td><td>${t.balance_after}</td></tr>`)}</tbody></table></div>` : null}
  </section>`;
}

export function SettingsPage({ me, path, reloadMe }) {
  const section = path.split('/')[2] || 'account';
  const views = {
    account: () => html`<${AccountSection} me=${me} reloadMe=${reloadMe} />`,
    members: () => html`<${MembersSection} me=${me} />`,
    'api-keys': () => html`<${ApiKeysSection} />`,
    providers: () => html`<${ProvidersSection} me=${me} />`,
    personas: () => html`<${PersonasSection} />`,
    mcp: () => html`<${McpSection} />`,
    tools: () => html`<${ToolsSection} me=${me} />`,
    webhooks: () => html`<${WebhooksSection} />`,
    usage: () => html`<${UsageSection} />`,
  };
  return html`<main class="page">
    <h1>Settings</h1>
    <p class="note">Account: <strong>${me.org_name}</strong>${selectedAccount() ? '' : ' (personal)'}</p>
    <div class="section-layout">
      <nav class="section-nav" aria-label="Settings sections">
        ${SECTIONS.map(([k, label]) => html`<a href=${`/settings/${k}`} onClick=${onLinkClick} aria-current=${k === section ? 'page' : undefined}>${label}</a>`)}
      </nav>
      <div>${(views[section] ?? views.account)()}</div>
    </div>
  </main>`;
}
