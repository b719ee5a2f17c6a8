// The web console in a real browser (issue 11): headless Debian Chromium driven by
// playwright-core against the API listening on a real socket, with the stub model streaming
// slowly (a platform stub provider with chunk_delay_ms is the default route). Sign up, chat
// with a streamed answer, approve a tool call, reload mid-run, model output with HTML, and an
// admin suspending a user whose open console is signed out. Screenshots go to test-artifacts/.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { uniq, type TestUser } from './helpers/app.js';
import { hasChromium, NO_CHROMIUM } from './helpers/browser.js';
import { signIn, startConsoleRig, type ConsoleRig } from './helpers/console.js';

if (!hasChromium) console.log(NO_CHROMIUM);

describe('web console in Chromium', { skip: hasChromium ? false : NO_CHROMIUM }, () => {
  let rig: ConsoleRig;
  let base: string;
  let admin: TestUser;
  let ctx: BrowserContext;
  let page: Page;
  const login = uniq('web');

  before(async () => {
    rig = await startConsoleRig();
    ({ base, admin } = rig);
    ctx = await rig.b.context(1280);
    page = await rig.open(ctx);
  });
  after(async () => {
    await rig?.close();
  });

  const shoot = (p: Page, name: string) => rig.shoot(p, name);

  const live = () => page.locator('.msg.live .md').last();
  const lastAnswer = () => page.locator('.msg.assistant:not(.live) .md').last();

  async function send(text: string): Promise<void> {
    await page.getByLabel('Message').fill(text);
    await page.getByRole('button', { name: 'Send', exact: true }).click();
  }

  /** The live answer's text, sampled until it stops changing and the run is over; every distinct value in order. */
  async function sampleLive(untilDone: () => Promise<boolean>): Promise<string[]> {
    const seen: string[] = [];
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const text = await live().innerText({ timeout: 50 }).catch(() => null);
      if (text !== null && text !== seen[seen.length - 1]) seen.push(text);
      if (await untilDone()) break;
      await page.waitForTimeout(15);
    }
    return seen;
  }

  it('signs up', async () => {
    await page.goto(`${base}/signin`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await shoot(page, 'signin-1280');
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByLabel('Login').fill(login);
    await page.getByLabel('Email').fill(`${login}@example.com`);
    await page.getByLabel('Password').fill('correct horse battery');
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.getByRole('heading', { name: 'New chat' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/');
    // The access token is kept in memory only: nothing in storage, the refresh token in an HttpOnly cookie.
    assert.deepEqual(await page.evaluate(() => Object.keys(localStorage)), []);
    const cookies = await ctx.cookies();
    const refresh = cookies.find((c) => c.name === 'arkloop_refresh_token');
    assert.ok(refresh?.httpOnly, 'refresh cookie is HttpOnly');
    // A reload signs in again through the refresh cookie.
    await page.reload();
    await page.getByRole('heading', { name: 'New chat' }).waitFor();
  });

  it('creates a thread, sends a message and shows the answer streaming token by token', async () => {
    const words = 'the quick brown fox jumps over the lazy dog again and again, then once more from the start: the quick brown fox jumps over the lazy dog';
    // Every text the live answer shows, recorded in the page as it changes.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { __seen: string[] }).__seen = seen;
      new MutationObserver(() => {
        const text = document.querySelector('.msg.live .md')?.textContent;
        if (text && text !== seen[seen.length - 1]) seen.push(text);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await send(words);
    await page.waitForURL(/\/t\/[0-9a-f-]{36}$/);
    await page.locator('.msg.user', { hasText: words }).waitFor();
    await page.locator('.msg.assistant:not(.live)').waitFor();
    const expected = `[stub] ${words}`;
    const seen = await page.evaluate(() => (window as unknown as { __seen: string[] }).__seen);
    assert.ok(seen.length >= 8, `the answer grew word by word, saw ${JSON.stringify(seen)}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].startsWith(seen[i - 1].trimEnd()), `each step extends the last: ${JSON.stringify(seen)}`);
    assert.equal(seen[seen.length - 1].trim(), expected);
    assert.equal((await lastAnswer().innerText()).trim(), expected);
    // The new thread is in the list.
    await page.locator('.threads a', { hasText: words.slice(0, 20) }).first().waitFor();
    await shoot(page, 'chat-1280');
  });

  it('asks for approval with the exact arguments, and runs the tool once approved', async () => {
    await page.getByRole('link', { name: 'New chat' }).click();
    await page.getByLabel('Persona').selectOption('careful');
    const args = { text: 'hi <there>', n: 2 };
    await send(JSON.stringify({ stub: { steps: [{ tool_call: { name: 'echo', arguments: args } }, { text: 'echo **done**' }] } }));
    const card = page.getByRole('region', { name: 'Approval needed' });
    await card.waitFor();
    assert.deepEqual(JSON.parse(await card.locator('pre.args').innerText()), args);
    await shoot(page, 'approval-1280');
    await card.getByRole('button', { name: 'Approve' }).click();
    await page.locator('.msg.assistant:not(.live) strong', { hasText: 'done' }).waitFor();
    assert.equal((await lastAnswer().innerText()).trim(), 'echo done');
    const tool = page.locator('details.tool').last();
    assert.match(await tool.locator('summary').innerText(), /echo · done \(approved\)/);
    await tool.locator('summary').click();
    assert.match(await tool.innerText(), /hi <there>/);
  });

  it('continues the stream after a reload mid-run, without duplicates', async () => {
    await page.getByRole('link', { name: 'New chat' }).click();
    const words = Array.from({ length: 100 }, (_, i) => `w${i}`).join(' ');
    await send(words);
    await page.waitForURL(/\/t\//);
    await page.waitForFunction(() => (document.querySelector('.msg.live .md')?.textContent ?? '').split(' ').length >= 6);
    const resumed: string[] = [];
    page.on('request', (r) => {
      const m = /\/events\?after_seq=(\d+)/.exec(r.url());
      if (m) resumed.push(m[1]);
    });
    await page.reload();
    await live().waitFor();
    // Right after the reload the answer so far is back at once, then keeps growing.
    const seen = await sampleLive(async () => (await page.locator('.msg.live').count()) === 0);
    assert.ok(Number(resumed[0]) > 0, `the stream resumed after its last seq (after_seq=${resumed[0]})`);
    assert.ok(seen.length >= 2 && seen[0].split(' ').length >= 6, `resumed with the text so far: ${JSON.stringify(seen.slice(0, 3))}`);
    assert.equal((await lastAnswer().innerText()).trim(), `[stub] ${words}`);
  });

  it('answers a question from the agent, cancels a run and retries it', async () => {
    await page.getByRole('link', { name: 'New chat' }).click();
    await send(JSON.stringify({ stub: { steps: [{ ask_input: 'Which colour?' }, { text: 'noted' }] } }));
    const form = page.getByRole('form', { name: 'Input requested' });
    await form.getByText('Which colour?').waitFor();
    await form.getByLabel('Your answer').fill('blue');
    await form.getByRole('button', { name: 'Send answer' }).click();
    await page.locator('.msg.assistant:not(.live) .md', { hasText: 'noted' }).waitFor();

    await page.getByRole('link', { name: 'New chat' }).click();
    const words = Array.from({ length: 30 }, (_, i) => `c${i}`).join(' ');
    await send(words);
    await page.waitForFunction(() => (document.querySelector('.msg.live .md')?.textContent ?? '').split(' ').length >= 3);
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await page.locator('.msg.live .note', { hasText: 'Cancelled.' }).waitFor();
    await page.getByRole('button', { name: 'Retry' }).click();
    await page.locator('.msg.assistant:not(.live) .md', { hasText: 'c29' }).waitFor({ timeout: 15_000 });
    // The cancelled answer was replaced: one answer, complete.
    assert.equal(await page.locator('.msg.assistant').count(), 1);
    assert.equal((await lastAnswer().innerText()).trim(), `[stub] ${words}`);
  });

  it('renames, stars, searches and files threads in projects', async () => {
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByLabel('Thread title').fill('Counting words');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'Counting words' }).waitFor();
    await page.locator('.threads a', { hasText: 'Counting words' }).waitFor();

    await page.getByRole('button', { name: '☆ Star' }).click();
    await page.getByRole('button', { name: 'Star Counting words' }).and(page.locator('[aria-pressed=true]')).waitFor();
    await page.getByLabel('Show threads').selectOption('starred');
    await page.waitForFunction(() => document.querySelectorAll('.threads li a').length === 1);

    await page.getByLabel('Show threads').selectOption('all');
    await page.getByLabel('Search threads').fill('quick brown');
    await page.waitForFunction(() => [...document.querySelectorAll('.threads li a')].map((a) => a.textContent).join('|').startsWith('the quick brown fox jumps over the lazy dog again and again'));
    assert.equal(await page.locator('.threads li a').count(), 1);

    await page.getByLabel('Search threads').fill('');
    await page.getByRole('button', { name: 'New project' }).click();
    await page.getByLabel('Project name').fill('Numbers');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.locator('.threads .empty').waitFor();
    await page.getByLabel('Project', { exact: true }).selectOption({ label: 'Numbers' });
    await page.locator('.threads a', { hasText: 'Counting words' }).waitFor();
    assert.equal(await page.locator('.threads li a').count(), 1);
  });

  it('renders HTML in model output as text, and runs none of it', async () => {
    await page.getByRole('link', { name: 'New chat' }).click();
    const evil = 'look <img src=x onerror="window.__xss=1"> and <script>window.__xss=2</script> **bold** [x](javascript:window.__xss=3)';
    await send(JSON.stringify({ stub: { steps: [{ text: evil }] } }));
    await page.locator('.msg.assistant:not(.live) strong', { hasText: 'bold' }).waitFor();
    const answer = lastAnswer();
    const text = await answer.innerText();
    assert.match(text, /<img src=x onerror="window.__xss=1">/);
    assert.match(text, /<script>window.__xss=2<\/script>/);
    assert.equal(await answer.locator('img, script').count(), 0);
    const hrefs = await answer.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.ok(hrefs.every((h) => !h || !/^javascript:/i.test(h)), `no javascript: link: ${hrefs}`);
    await page.locator('a', { hasText: 'x' }).last().click({ trial: false }).catch(() => undefined);
    assert.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
  });

  it('names every control, and sends a message by keyboard alone', async () => {
    const unnamed = async () =>
      page.evaluate(() =>
        [...document.querySelectorAll('input, select, textarea, button, a[href]')]
          .filter((el) => {
            const named = (el as HTMLInputElement).labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
            return !named && !(el.textContent ?? '').trim() && (el as HTMLInputElement).type !== 'hidden';
          })
          .map((el) => el.outerHTML.slice(0, 80)),
      );
    // Each page once its content is in (the thread list; a settings table or its empty note).
    for (const [path, ready] of [['/', '.threads li a'], ['/settings/api-keys', 'section .note, section table'], ['/settings/providers', 'section table'], ['/settings/webhooks', 'section > .note:last-child, section table']]) {
      await page.goto(`${base}${path}`);
      await page.locator(ready).first().waitFor();
      assert.deepEqual(await unnamed(), [], path);
    }
    await page.goto(`${base}/`);
    await page.getByRole('heading', { name: 'New chat' }).waitFor();
    for (let i = 0; i < 40 && (await page.evaluate(() => document.activeElement?.id)) !== 'composer-text'; i++) await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'composer-text', 'Tab reaches the composer');
    await page.keyboard.type('typed with keys');
    await page.keyboard.press('Enter');
    await page.locator('.msg.assistant:not(.live) .md', { hasText: '[stub] typed with keys' }).waitFor();
  });

  it('shows the main pages at phone width, and signs out', async () => {
    const phone = await rig.b.context(360);
    const p = await rig.open(phone);
    // A session of its own (copying the first context's refresh cookie would reuse a rotated token).
    await signIn(p, base, { login, password: 'correct horse battery' });
    await p.getByRole('heading', { name: 'New chat' }).waitFor();
    await shoot(p, 'chat-home-360');
    await p.locator('.threads a').first().click();
    await p.locator('.msg.assistant').first().waitFor();
    await shoot(p, 'chat-thread-360');
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling at 360 px (${overflow} px)`);
    await p.goto(`${base}/settings`);
    await p.getByRole('heading', { name: 'Settings' }).waitFor();
    await shoot(p, 'settings-360');
    // Signing out ends that session: a reload stays signed out; the first context is untouched.
    await p.getByRole('button', { name: 'Sign out' }).click();
    await p.getByRole('heading', { name: 'Sign in' }).waitFor();
    await p.reload();
    await p.getByRole('heading', { name: 'Sign in' }).waitFor();
    await phone.close();
  });

  it('signs out the open console of a user an admin suspends, and lets them back once reactivated', async () => {
    // Still signed in before the suspension: the session check on focus passes.
    await page.evaluate(() => window.dispatchEvent(new Event('focus')));
    await page.waitForLoadState('networkidle');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    const adminCtx = await rig.b.context(1280);
    const ap = await rig.open(adminCtx);
    await signIn(ap, base, admin);
    await ap.getByRole('link', { name: 'Admin' }).click();
    await ap.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await shoot(ap, 'admin-dashboard-1280');
    await ap.getByRole('link', { name: 'Users' }).click();
    await ap.getByLabel('Search users').fill(login);
    const row = ap.locator('tr', { hasText: login });
    await row.getByRole('button', { name: 'Suspend' }).click();
    await row.getByText('suspended').waitFor();
    await shoot(ap, 'admin-users-1280');

    // The user's console notices on its next call (here: the tab regains focus).
    await page.evaluate(() => window.dispatchEvent(new Event('focus')));
    await page.getByRole('heading', { name: 'Sign in' }).waitFor({ timeout: 5000 });
    await page.getByLabel('Login or email').fill(login);
    await page.getByLabel('Password').fill('correct horse battery');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('auth.user_suspended').waitFor();

    // Reactivated, the user signs in again.
    await row.getByRole('button', { name: 'Reactivate' }).click();
    await row.getByRole('cell', { name: 'active', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Back in the thread that was open when the console signed out.
    await page.getByRole('heading', { name: 'typed with keys' }).waitFor();
    await adminCtx.close();
    assert.deepEqual(rig.problems, []);
  });
});
