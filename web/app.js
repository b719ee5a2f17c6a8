// The console's shell: the sign-in pages, or the app (chat, settings, admin) for the current
// path, once main.js has tried to restore the session through the refresh cookie.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { html } from './lib/html.js';
import { api, isSignedIn, onSignedOut, selectAccount, selectedAccount, signOut } from './lib/api.js';
import { match, navigate, onLinkClick, usePath } from './lib/router.js';
import { AuthPage } from './views/auth.js';
import { ChatPage } from './views/chat.js';
import { SettingsPage } from './views/settings.js';
import { AdminPage } from './views/admin.js';
import { InvitationPage, VerifyEmailPage } from './views/links.js';

const SESSION_CHECK_MS = 10_000;

function Nav({ me, path }) {
  const link = (href, label, active) => html`<a href=${href} onClick=${onLinkClick} aria-current=${active ? 'page' : undefined}>${label}</a>`;
  return html`<header class="topbar">
    <a class="brand" href="/" onClick=${onLinkClick}>Arkloop</a>
    <nav aria-label="Main">
      ${link('/', 'Chat', path === '/' || path.startsWith('/t/'))}
      ${link('/settings', 'Settings', path.startsWith('/settings'))}
      ${me.is_platform_admin ? link('/admin', 'Admin', path.startsWith('/admin')) : null}
    </nav>
    <span class="who" title=${me.email ?? ''}>${me.username}</span>
    <button type="button" class="link" onClick=${() => signOut()}>Sign out</button>
  </header>`;
}

function Shell({ me, reloadMe }) {
  const path = usePath();
  let page;
  if (path === '/' || match('/t/:id', path)) page = html`<${ChatPage} me=${me} threadId=${match('/t/:id', path)?.id ?? null} />`;
  else if (path.startsWith('/settings')) page = html`<${SettingsPage} me=${me} path=${path} reloadMe=${reloadMe} />`;
  else if (match('/invitations/:token', path)) page = html`<${InvitationPage} token=${match('/invitations/:token', path).token} reloadMe=${reloadMe} />`;
  else if (path.startsWith('/admin') && me.is_platform_admin) page = html`<${AdminPage} me=${me} path=${path} />`;
  else page = html`<main class="page"><h1>Not found</h1><p><a href="/" onClick=${onLinkClick}>Back to chat</a></p></main>`;
  return html`<div class="shell">
    <a class="skip" href="#main">Skip to content</a>
    <${Nav} me=${me} path=${path} />
    <div id="main" class="main-area">${page}</div>
  </div>`;
}

function App({ session }) {
  const [state, setState] = useState({ phase: 'loading', me: null });

  const loadMe = async () => {
    try {
      setState({ phase: 'in', me: await api('GET', '/v1/me') });
    } catch (err) {
      if (err.code === 'accounts.not_found' && selectedAccount()) {
        selectAccount(null); // the workspace this tab had selected is gone: back to the personal account
        return loadMe();
      }
      setState({ phase: 'out', me: null });
    }
  };

  useEffect(() => {
    (async () => {
      if (await session) await loadMe();
      else setState({ phase: 'out', me: null });
    })();
    return onSignedOut(() => {
      setState({ phase: 'out', me: null });
      const p = location.pathname;
      if (p !== '/signin' && p !== '/signup') navigate(`/signin${p === '/' ? '' : `?next=${encodeURIComponent(p)}`}`, { replace: true });
    });
  }, []);

  // A suspended or signed-out-elsewhere session ends here too: its next call fails to refresh.
  useEffect(() => {
    if (state.phase !== 'in') return;
    const check = () => { if (document.visibilityState === 'visible' && isSignedIn()) api('GET', '/v1/me').catch(() => undefined); };
    const timer = setInterval(check, SESSION_CHECK_MS);
    addEventListener('focus', check);
    document.addEventListener('visibilitychange', check);
    return () => { clearInterval(timer); removeEventListener('focus', check); document.removeEventListener('visibilitychange', check); };
  }, [state.phase]);

  if (location.pathname === '/verify-email') return html`<${VerifyEmailPage} />`;
  if (state.phase === 'loading') return html`<p class="loading" role="status">Loading…</p>`;
  if (state.phase === 'out') return html`<${AuthPage} onSignedIn=${loadMe} />`;
  return html`<${Shell} me=${state.me} reloadMe=${loadMe} />`;
}

/** Renders the console; `session` resolves to whether the refresh cookie signed us in. */
export function start(session) {
  render(html`<${App} session=${session} />`, document.getElementById('app'));
}
