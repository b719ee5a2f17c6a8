// Pages reached from a mailed link: accepting an account invitation (signed in) and confirming
// an email address (no sign-in needed: the token proves the mailbox).
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api, selectAccount } from '../lib/api.js';
import { navigate } from '../lib/router.js';
import { ErrorNote } from './ui.js';

export function InvitationPage({ token, reloadMe }) {
  const [preview, setPreview] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { api('GET', `/v1/account-invitations/${encodeURIComponent(token)}`).then(setPreview).catch(setError); }, [token]);
  const accept = async () => {
    try {
      const res = await api('POST', `/v1/account-invitations/${encodeURIComponent(token)}/accept`);
      selectAccount(res.account_id);
      await reloadMe();
      navigate('/settings/members');
    } catch (err) {
      setError(err);
    }
  };
  return html`<main class="page"><h1>Invitation</h1>
    <${ErrorNote} error=${error} />
    ${preview ? html`<div class="card">
      <p>You are invited to <strong>${preview.account_name}</strong> as <strong>${preview.role}</strong> (${preview.email}).</p>
      ${preview.status === 'pending' ? html`<button type="button" class="primary" onClick=${accept}>Accept and join</button>` : html`<p class="note">This invitation is ${preview.status}.</p>`}
    </div>` : null}
  </main>`;
}

export function VerifyEmailPage() {
  const [state, setState] = useState('checking');
  const [error, setError] = useState(null);
  useEffect(() => {
    const token = new URLSearchParams(location.search).get('token') ?? '';
    fetch('/v1/auth/email/verify/confirm', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) })
      .then(async (res) => {
        if (res.ok) return setState('done');
        const body = await res.json().catch(() => ({}));
        setError({ message: body.message ?? 'the link is not valid', code: body.code });
        setState('failed');
      })
      .catch((err) => { setError(err); setState('failed'); });
  }, []);
  return html`<main class="auth"><h1>Arkloop</h1><div class="card" role="status">
    ${state === 'checking' ? html`<p>Confirming your email…</p>` : state === 'done' ? html`<p>Your email address is confirmed.</p>` : html`<${ErrorNote} error=${error} />`}
    <p><a href="/">Continue to Arkloop</a></p>
  </div></main>`;
}
