// Mail as an outbox (api.md §26.7 `email.send`): the job is written in the same transaction as
// what the mail carries (a verification token, a sign-in code), so a committed token's mail
// survives a restart and an SMTP outage (the queue retries with backoff), and a rolled-back
// one is never sent. The subject and body can hold the secret (the code is in the subject), so
// they are sealed with the platform key; the job row is deleted once sent, and a mail whose
// secret has expired meanwhile is dropped rather than sent.
import type { Logger } from 'pino';
import type { AppContext } from '../app-context.js';
import type { JobRow, NewJob } from '../engine/jobs.js';
import { decryptSecret, encryptSecret } from '../lib/crypto.js';
import type { Mail } from './mailer.js';

export const EMAIL_SEND_JOB = 'email.send';
/** 1 s doubled per retry, at most an hour apart (jobs.failJob): sixteen attempts span about four hours. */
const MAX_ATTEMPTS = 16;

interface EmailPayload {
  v: 1;
  to: string;
  /** `{subject, text}` sealed with the platform key. */
  sealed: string;
  /** After this instant the mail is useless (its code or token expired): dropped. */
  valid_until: string | null;
}

export function emailJob(ctx: AppContext, mail: Mail, validUntil: Date | null = null): NewJob {
  const payload: EmailPayload = {
    v: 1,
    to: mail.to,
    sealed: encryptSecret(JSON.stringify({ subject: mail.subject, text: mail.text }), ctx.secrets.encryptionKey),
    valid_until: validUntil ? validUntil.toISOString() : null,
  };
  return { type: EMAIL_SEND_JOB, payload: payload as unknown as Record<string, unknown>, maxAttempts: MAX_ATTEMPTS };
}

/** The `email.send` handler: a throw is retried by the worker with backoff. */
export async function sendEmailJob(ctx: AppContext, job: JobRow, signal: AbortSignal, log: Logger): Promise<void> {
  const p = job.payload as unknown as EmailPayload;
  if (p?.v !== 1 || typeof p.to !== 'string' || typeof p.sealed !== 'string') throw new Error('email.send: unsupported payload');
  if (p.valid_until && Date.parse(p.valid_until) <= Date.now()) {
    log.info({ to: p.to }, 'mail not sent: what it carries has expired');
    return;
  }
  const { subject, text } = JSON.parse(decryptSecret(p.sealed, ctx.secrets.encryptionKey)) as { subject: string; text: string };
  await ctx.mailer.send({ to: p.to, subject, text }, { signal });
}
