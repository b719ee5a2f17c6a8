// Small shared pieces: labelled fields, error notes, relative dates.
import { useId } from 'preact/hooks';
import { html } from '../lib/html.js';

export function Field({ label, type = 'text', textarea = false, hint, ...rest }) {
  const id = useId();
  const input = textarea ? html`<textarea id=${id} ...${rest}></textarea>` : html`<input id=${id} type=${type} ...${rest} />`;
  return html`<div class="field"><label for=${id}>${label}</label>${input}${hint ? html`<small>${hint}</small>` : null}</div>`;
}

export function SelectField({ label, options, ...rest }) {
  const id = useId();
  return html`<div class="field"><label for=${id}>${label}</label>
    <select id=${id} ...${rest}>${options.map((o) => html`<option value=${o.value}>${o.label}</option>`)}</select></div>`;
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message}${error.code ? html` <code>${error.code}</code>` : null}</p>`;
}

export function when(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
