// The API-side rate limits of the auth endpoints (api.md §1.8).
import type { AppContext } from '../../app-context.js';
import { rateLimited } from '../../http/errors.js';

const FAIL_WINDOW = 15 * 60;
const FAIL_PER_LOGIN = 10;
const FAIL_PER_IP = 30;

/**
 * What failed sign-ins are counted against: the user when the identifier names one (so a
 * login and its email share one allowance), else the identifier as typed.
 */
export function failureSubject(ident: string, user: { id: string } | undefined): string {
  return user ? `user:${user.id}` : `ident:${ident.trim().toLowerCase()}`;
}

/** Refuses a sign-in attempt when recent failures for this subject or IP reached the limit. */
export async function checkLoginFailures(ctx: AppContext, subject: string, ip: string): Promise<void> {
  const [byLogin, byIp] = await Promise.all([
    ctx.counters.get(`fail:login:${subject}`, FAIL_WINDOW),
    ctx.counters.get(`fail:ip:${ip}`, FAIL_WINDOW),
  ]);
  if (byLogin.count >= FAIL_PER_LOGIN) throw rateLimited(byLogin.resetIn);
  if (byIp.count >= FAIL_PER_IP) throw rateLimited(byIp.resetIn);
}

export async function recordLoginFailure(ctx: AppContext, subject: string, ip: string): Promise<void> {
  await Promise.all([
    ctx.counters.incr(`fail:login:${subject}`, FAIL_WINDOW),
    ctx.counters.incr(`fail:ip:${ip}`, FAIL_WINDOW),
  ]);
}

export async function clearLoginFailures(ctx: AppContext, subject: string): Promise<void> {
  await ctx.counters.reset(`fail:login:${subject}`);
}

/** 30 requests per client IP per minute (check, resolve). */
export async function limitPerIp(ctx: AppContext, name: string, ip: string): Promise<void> {
  const w = await ctx.counters.incr(`${name}:ip:${ip}`, 60);
  if (w.count > 30) throw rateLimited(w.resetIn);
}

/** Mails: 1 per recipient per 60 s and 10 per hour, counted per requested address or login. */
export async function limitMail(ctx: AppContext, recipient: string): Promise<void> {
  const r = recipient.trim().toLowerCase();
  const minute = await ctx.counters.incr(`mail:m:${r}`, 60);
  if (minute.count > 1) throw rateLimited(minute.resetIn);
  const hour = await ctx.counters.incr(`mail:h:${r}`, 3600);
  if (hour.count > 10) throw rateLimited(hour.resetIn);
}
