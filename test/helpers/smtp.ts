// A real SMTP server (the `smtp-server` package) on 127.0.0.1 with an ephemeral port that
// keeps every message it receives, so tests can read verification links and sign-in codes.
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface CapturedMail {
  /** Envelope sender and recipients (MAIL FROM / RCPT TO). */
  from: string;
  to: string[];
  /** Header fields, names lower-cased, folded lines joined. */
  headers: Record<string, string>;
  subject: string;
  /** The decoded text body. */
  text: string;
  raw: string;
}

export interface SmtpCapture {
  host: string;
  port: number;
  messages: CapturedMail[];
  /** The ARKLOOP_EMAIL_* variables that point the app at this server. */
  env(from?: string): Record<string, string>;
  /** Resolves with the first message (already received or arriving) that matches. */
  waitFor(match: (m: CapturedMail) => boolean, timeoutMs?: number): Promise<CapturedMail>;
  /** Resolves with the first message addressed to `to` received after `since` messages. */
  waitForTo(to: string, opts?: { since?: number; timeoutMs?: number }): Promise<CapturedMail>;
  to(address: string): CapturedMail[];
  close(): Promise<void>;
}

function decodeQuotedPrintable(s: string): string {
  const bytes: number[] = [];
  const src = s.replace(/=\r?\n/g, '');
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(src.slice(i + 1, i + 3))) {
      bytes.push(parseInt(src.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** RFC 2047 encoded words (=?utf-8?Q?...?= / =?utf-8?B?...?=) in header values. */
function decodeHeaderValue(v: string): string {
  return v.replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_m, _charset: string, enc: string, text: string) =>
    enc.toUpperCase() === 'B' ? Buffer.from(text, 'base64').toString('utf8') : decodeQuotedPrintable(text.replace(/_/g, ' ')),
  );
}

/** Parses a single-part (or the first text/plain part of a multipart) RFC 5322 message. */
export function parseMessage(raw: string): { headers: Record<string, string>; text: string } {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split === -1 ? raw : raw.slice(0, split);
  let body = split === -1 ? '' : raw.slice(split).replace(/^\r?\n\r?\n/, '');
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = decodeHeaderValue(line.slice(i + 1).trim());
  }
  const type = headers['content-type'] ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (/^multipart\//i.test(type) && boundary) {
    const parts = body.split(`--${boundary}`).slice(1, -1);
    const plain = parts.map((p) => parseMessage(p.replace(/^\r?\n/, ''))).find((p) => /text\/plain/i.test(p.headers['content-type'] ?? 'text/plain'));
    return { headers, text: plain?.text ?? '' };
  }
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  if (encoding === 'quoted-printable') body = decodeQuotedPrintable(body);
  else if (encoding === 'base64') body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return { headers, text: body.replace(/\r\n/g, '\n') };
}

/** `port`: listen there (e.g. a port the app already points at while nothing listened). */
export async function startSmtpCapture(opts: { port?: number } = {}): Promise<SmtpCapture> {
  const messages: CapturedMail[] = [];
  const waiters = new Set<() => void>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const { headers, text } = parseMessage(raw);
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        messages.push({ from, to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()), headers, subject: headers.subject ?? '', text, raw });
        for (const w of waiters) w();
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port;

  const waitFor = (match: (m: CapturedMail) => boolean, timeoutMs = 5000) =>
    new Promise<CapturedMail>((resolve, reject) => {
      const check = () => {
        const found = messages.find(match);
        if (!found) return false;
        clearTimeout(timer);
        waiters.delete(onMessage);
        resolve(found);
        return true;
      };
      const onMessage = () => void check();
      const timer = setTimeout(() => {
        waiters.delete(onMessage);
        reject(new Error(`no matching mail within ${timeoutMs} ms (have ${messages.length}: ${messages.map((m) => `${m.to.join(',')} "${m.subject}"`).join('; ')})`));
      }, timeoutMs);
      if (!check()) waiters.add(onMessage);
    });

  return {
    host: '127.0.0.1',
    port,
    messages,
    env: (from = 'Arkloop <noreply@arkloop.test>') => ({
      ARKLOOP_EMAIL_FROM: from,
      ARKLOOP_EMAIL_SMTP_HOST: '127.0.0.1',
      ARKLOOP_EMAIL_SMTP_PORT: String(port),
      ARKLOOP_EMAIL_SMTP_TLS_MODE: 'none',
    }),
    waitFor,
    waitForTo: (to, opts = {}) => {
      const since = opts.since ?? 0;
      return waitFor((m) => messages.indexOf(m) >= since && m.to.includes(to.toLowerCase()), opts.timeoutMs);
    },
    to: (address) => messages.filter((m) => m.to.includes(address.toLowerCase())),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The token of a verification mail (from its link). */
export function verificationTokenOf(mail: CapturedMail): string {
  const m = /\/verify-email\?token=([A-Za-z0-9_-]+)/.exec(mail.text);
  if (!m) throw new Error(`no verification link in mail: ${mail.text}`);
  return m[1];
}

/** The 6-digit code of a sign-in mail. */
export function otpOf(mail: CapturedMail): string {
  const m = /\b(\d{6})\b/.exec(mail.text) ?? /\b(\d{6})\b/.exec(mail.subject);
  if (!m) throw new Error(`no code in mail: ${mail.subject} ${mail.text}`);
  return m[1];
}
