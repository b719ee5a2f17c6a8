// One shape for the settings and admin pages: a table loaded from a list endpoint, an optional
// create form (whose answer may carry a secret shown once), and per-row actions.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { ErrorNote, Field, SelectField } from './ui.js';

function CreateForm({ create, onCreated }) {
  const initial = Object.fromEntries(create.fields.map((f) => [f.name, f.value ?? (f.options ? f.options[0].value : '')]));
  const [values, setValues] = useState(initial);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const created = await create.submit(values);
      setValues(initial);
      onCreated(created);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card create-form" onSubmit=${submit} aria-label=${create.title}>
    <h3>${create.title}</h3>
    ${create.fields.map((f) => {
      const onInput = (e) => setValues({ ...values, [f.name]: f.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value });
      if (f.options) return html`<${SelectField} label=${f.label} options=${f.options} value=${values[f.name]} onChange=${onInput} />`;
      if (f.type === 'checkbox') return html`<label class="row"><input type="checkbox" checked=${values[f.name]} onChange=${onInput} /> ${f.label}</label>`;
      return html`<${Field} label=${f.label} type=${f.type ?? 'text'} textarea=${f.textarea} hint=${f.hint} required=${f.required}
        placeholder=${f.placeholder} value=${values[f.name]} onInput=${onInput} />`;
    })}
    <${ErrorNote} error=${error} />
    <button type="submit" class="primary" disabled=${busy}>${create.button ?? 'Create'}</button>
  </form>`;
}

/**
 * props: title, load() → rows, columns [{label, render(row)}], create? {title, fields, submit(values),
 * reveal?(created) → {label, value}}, actions?(row, reload, setError) → vnodes, empty, intro
 */
export function ResourceTable({ title, load, columns, create, actions, empty = 'Nothing here yet.', intro, deps = [] }) {
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const [secret, setSecret] = useState(null);
  const reload = async () => {
    try {
      const r = await load();
      setRows(Array.isArray(r) ? r : r?.data ?? []);
      setError(null);
    } catch (err) {
      setError(err);
      setRows([]);
    }
  };
  useEffect(() => { setSecret(null); reload(); }, [title, ...deps]);

  return html`<section aria-labelledby="section-title">
    <h2 id="section-title">${title}</h2>
    ${intro ? html`<p class="note">${intro}</p>` : null}
    ${secret ? html`<div class="card secret" role="status">
      <p><strong>${secret.label}</strong> — copy it now, it will not be shown again.</p>
      <pre>${secret.value}</pre>
      <button type="button" onClick=${() => setSecret(null)}>Done</button>
    </div>` : null}
    ${create ? html`<${CreateForm} create=${create} onCreated=${(c) => { if (create.reveal) setSecret(create.reveal(c)); reload(); }} />` : null}
    <${ErrorNote} error=${error} />
    ${rows === null ? html`<p class="note" role="status">Loading…</p>`
      : rows.length === 0 ? html`<p class="note">${empty}</p>`
      : html`<div class="table-wrap"><table>
          <thead><tr>${columns.map((c) => html`<th scope="col">${c.label}</th>`)}${actions ? html`<th scope="col"><span class="visually-hidden">Actions</span></th>` : null}</tr></thead>
          <tbody>${rows.map((r) => html`<tr key=${r.id}>
            ${columns.map((c) => html`<td>${c.render(r)}</td>`)}
            ${actions ? html`<td><div class="row">${actions(r, reload, setError)}</div></td>` : null}
          </tr>`)}</tbody>
        </table></div>`}
  </section>`;
}

/** A button that runs an API action, then reloads the table (errors go to the table's note). */
export function ActionButton({ label, run, reload, setError, confirmText, danger, ariaLabel }) {
  const [busy, setBusy] = useState(false);
  const click = async () => {
    if (confirmText && !confirm(confirmText)) return;
    setBusy(true);
    try {
      await run();
      await reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<button type="button" class=${danger ? 'danger' : ''} disabled=${busy} aria-label=${ariaLabel} onClick=${click}>${label}</button>`;
}

export function Stats({ items }) {
  return html`<dl class="stats">${items.map(([k, v]) => html`<div><dt>${k}</dt><dd>${v ?? '—'}</dd></div>`)}</dl>`;
}
