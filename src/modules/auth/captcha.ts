// Cloudflare Turnstile: enabled when both keys are set; tokens verified server-side.
import type { AppContext } from '../../app-context.js';
import { AppError } from '../../http/errors.js';

export async function captchaConfig(ctx: AppContext): Promise<{ enabled: boolean; siteKey: string | null }> {
  const siteKey = await ctx.settings.string('turnstile.site_key');
  const secret = await ctx.settings.string('turnstile.secret_key');
  return { enabled: siteKey !== '' && secret !== '', siteKey: siteKey || null };
}

export async function requireCaptcha(ctx: AppContext, token: string | null | undefined, ip: string): Promise<void> {
  const cfg = await captchaConfig(ctx);
  if (!cfg.enabled) return;
  if (!token) throw new AppError('auth.captcha_required', 'captcha token required', { field: 'cf_turnstile_token' });
  const secret = await ctx.settings.string('turnstile.secret_key');
  const verifyUrl = await ctx.settings.string('turnstile.verify_url');
  const allowedHost = await ctx.settings.string('turnstile.allowed_host');
  let ok = false;
  try {
    const res = await fetch(verifyUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ secret, response: token, ...(ip ? { remoteip: ip } : {}) }),
      signal: AbortSignal.timeout(5000),
    });
    const data = (await res.json()) as { success?: boolean; hostname?: string };
    ok = data.success === true && (!allowedHost || data.hostname === allowedHost);
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message }, 'captcha verification request failed');
    ok = false;
  }
  if (!ok) throw new AppError('auth.captcha_failed', 'captcha verification failed');
}
