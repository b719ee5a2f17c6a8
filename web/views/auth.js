// Sign in and sign up. Both answer an access token (kept in memory) and set the refresh cookie.
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { signIn, signUp } from '../lib/api.js';
import { navigate, onLinkClick, usePath } from '../lib/router.js';
import { Field, ErrorNote } from './ui.js';

export function AuthPage({ onSignedIn }) {
  const path = usePath();
  const signingUp = path === '/signup';
  const [form, setForm] = useState({ login: '', email: '', password: '', invite: '' });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (signingUp) await signUp(form.login.trim(), form.email.trim(), form.password, form.invite.trim());
      else await signIn(form.login.trim(), form.password);
      // Back to where the sign-in was asked for: ?next=, or the deep link this page was opened at.
      const here = location.pathname === '/signin' || location.pathname === '/signup' ? null : location.pathname + location.search;
      const next = new URLSearchParams(location.search).get('next') ?? here;
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true });
      await onSignedIn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return html`<main class="auth" id="main">
    <h1>Arkloop</h1>
    <form class="card" onSubmit=${submit} aria-labelledby="auth-title">
      <h2 id="auth-title">${signingUp ? 'Create your account' : 'Sign in'}</h2>
      <${Field} label=${signingUp ? 'Login' : 'Login or email'} name="login" value=${form.login} onInput=${set('login')} autocomplete="username" required />
      ${signingUp ? html`<${Field} label="Email" name="email" type="email" value=${form.email} onInput=${set('email')} autocomplete="email" required />` : null}
      <${Field} label="Password" name="password" type="password" value=${form.password} onInput=${set('password')}
        autocomplete=${signingUp ? 'new-password' : 'current-password'} minlength=${signingUp ? 8 : undefined} required />
      ${signingUp ? html`<${Field} label="Invite code (if you have one)" name="invite" value=${form.invite} onInput=${set('invite')} />` : null}
      <${ErrorNote} error=${error} />
      <button type="submit" class="primary" disabled=${busy}>${signingUp ? 'Sign up' : 'Sign in'}</button>
      <p class="alt">${signingUp
        ? html`Already have an account? <a href="/signin" onClick=${onLinkClick}>Sign in</a>`
        : html`New here? <a href="/signup" onClick=${onLinkClick}>Create an account</a>`}</p>
    </form>
  </main>`;
}
