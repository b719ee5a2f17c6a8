import { html } from '../lib/html.js';
export function AdminPage() { return html`<main class="page"><h1>Admin</h1></main>`; }
