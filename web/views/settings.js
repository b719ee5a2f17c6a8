import { html } from '../lib/html.js';
export function SettingsPage() { return html`<main class="page"><h1>Settings</h1></main>`; }
