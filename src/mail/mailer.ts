// Outgoing mail over SMTP (nodemailer), configured by the email.* settings. With no
// sender or host configured the message is written to the log instead, never dropped.
// Mail of a write goes through an `email.send` job (email-job.ts); only the admin's test mail
// is sent directly.
import type { Logger } from 'pino';
import type { SettingsService } from '../modules/settings/service.js';

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

export interface EmailSettings {
  from: string;
  host: string;
  port: number;
  user: string;
  pass: string;
  tlsMode: 'starttls' | 'tls' | 'none';
}

export class Mailer {
  constructor(
    private readonly settings: SettingsService,
    private readonly log: Logger,
  ) {}

  async emailSettings(): Promise<EmailSettings> {
    const s = this.settings;
    return {
      from: await s.string('email.from'),
      host: await s.string('email.smtp_host'),
      port: await s.int('email.smtp_port'),
      user: await s.string('email.smtp_user'),
      pass: await s.string('email.smtp_pass'),
      tlsMode: (await s.string('email.smtp_tls_mode')) as EmailSettings['tlsMode'],
    };
  }

  async isConfigured(): Promise<boolean> {
    const e = await this.emailSettings();
    return e.from !== '' && e.host !== '';
  }

  /**
   * Sends now; resolves to false (and logs the mail) when email is not configured. Gives up
   * (throws) after `timeoutMs` or when `signal` aborts (a worker shutting down).
   */
  async send(mail: Mail, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<boolean> {
    const e = await this.emailSettings();
    if (!e.from || !e.host) {
      this.log.info({ mail: { to: mail.to, subject: mail.subject, text: mail.text } }, 'email not configured; mail written to log');
      return false;
    }
    opts.signal?.throwIfAborted();
    // Loaded on the first mail sent, not at start (most installs never configure SMTP).
    const { default: nodemailer } = await import('nodemailer');
    const transport = nodemailer.createTransport({
      host: e.host,
      port: e.port,
      secure: e.tlsMode === 'tls',
      requireTLS: e.tlsMode === 'starttls',
      ignoreTLS: e.tlsMode === 'none',
      auth: e.user ? { user: e.user, pass: e.pass } : undefined,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
    });
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const sending = transport.sendMail({ from: e.from, to: mail.to, subject: mail.subject, text: mail.text });
      sending.catch(() => undefined);
      const givingUp = new Promise<never>((_, reject) => {
        if (opts.timeoutMs !== undefined) timer = setTimeout(() => reject(new Error(`no answer from the SMTP server within ${opts.timeoutMs} ms`)), opts.timeoutMs);
        onAbort = () => reject(new Error('mail sending aborted'));
        opts.signal?.addEventListener('abort', onAbort, { once: true });
      });
      await Promise.race([sending, givingUp]);
      return true;
    } finally {
      clearTimeout(timer);
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
      transport.close();
    }
  }
}
