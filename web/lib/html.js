// htm bound to Preact: components write html`<div>…</div>` with no build step.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
