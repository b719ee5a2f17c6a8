// Email for platform admins (api.md §21.7–21.10): where the configuration comes from, the
// configuration itself (the SMTP password only as `smtp_pass_set`; stored encrypted as the
// sensitive setting `email.smtp_pass`), and a test mail sent synchronously.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { AppError, conflict, fieldError, validationError } from '../../http/errors.js';
import { registerRoute } from '../../http/route.js';
import { Nullable, T } from '../../http/schemas.js';
import { auditOrigin, recordAudit } from '../audit/store.js';
import { Email } from '../auth/routes.js';
import type { SettingValue } from '../settings/registry.js';
import { isSenderAddress } from '../settings/validate.js';
import { writeSettings } from '../settings/write.js';

const TEST_TIMEOUT_MS = 15_000;
const TlsMode = T.Union([T.Literal('none'), T.Literal('starttls'), T.Literal('tls')]);

const EmailConfigSchema = T.Object({
  from: T.String(),
  smtp_host: T.String(),
  smtp_port: T.Integer(),
  smtp_user: T.String(),
  smtp_pass_set: T.Boolean(),
  smtp_tls_mode: TlsMode,
});

async function emailConfig(ctx: AppContext) {
  const e = await ctx.mailer.emailSettings();
  return { from: e.from, smtp_host: e.host, smtp_port: e.port, smtp_user: e.user, smtp_pass_set: e.pass !== '', smtp_tls_mode: e.tlsMode };
}

export function adminEmailRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['admin'];

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/email/status',
    caller: 'padmin',
    summary: 'Whether mail is configured, and from where',
    tags,
    response: T.Object({ configured: T.Boolean(), from: Nullable(T.String()), source: T.Union([T.Literal('db'), T.Literal('env'), T.Literal('none')]) }),
    handler: async () => {
      const from = await ctx.settings.resolve('email.from');
      const configured = await ctx.mailer.isConfigured();
      const sender = from.value as string;
      const source = sender === '' ? 'none' : from.source === 'env' ? 'env' : from.source === 'db' ? 'db' : 'none';
      return { configured, from: sender === '' ? null : sender, source: source as 'db' | 'env' | 'none' };
    },
  });

  registerRoute(app, ctx, {
    method: 'GET',
    url: '/v1/admin/email/config',
    caller: 'padmin',
    summary: 'The effective mail configuration (the password only as smtp_pass_set)',
    tags,
    response: EmailConfigSchema,
    handler: async () => emailConfig(ctx),
  });

  registerRoute(app, ctx, {
    method: 'PUT',
    url: '/v1/admin/email/config',
    caller: 'padmin',
    status: 204,
    summary: 'Store the mail configuration (smtp_pass: absent keeps it, "" clears it)',
    tags,
    body: T.Object({
      from: T.Optional(T.String({ maxLength: 320 })),
      smtp_host: T.Optional(T.String({ maxLength: 253 })),
      smtp_port: T.Optional(T.Integer({ minimum: 1, maximum: 65535 })),
      smtp_user: T.Optional(T.String({ maxLength: 320 })),
      smtp_pass: T.Optional(T.String({ maxLength: 1024 })),
      smtp_tls_mode: T.Optional(TlsMode),
    }),
    trim: ['from', 'smtp_host', 'smtp_user'],
    handler: async (req) => {
      const b = req.body;
      if (b.from !== undefined && b.from !== '' && !isSenderAddress(b.from)) throw fieldError('from', 'must be an email address (optionally "Name <address>") or empty');
      if (b.smtp_host !== undefined && /[\s/]/.test(b.smtp_host)) throw fieldError('smtp_host', 'must be a host name or address');
      const changes = new Map<string, SettingValue>();
      if (b.from !== undefined) changes.set('email.from', b.from);
      if (b.smtp_host !== undefined) changes.set('email.smtp_host', b.smtp_host);
      if (b.smtp_port !== undefined) changes.set('email.smtp_port', b.smtp_port);
      if (b.smtp_user !== undefined) changes.set('email.smtp_user', b.smtp_user);
      if (b.smtp_pass !== undefined) changes.set('email.smtp_pass', b.smtp_pass);
      if (b.smtp_tls_mode !== undefined) changes.set('email.smtp_tls_mode', b.smtp_tls_mode);
      if (changes.size === 0) throw validationError('at least one of from, smtp_host, smtp_port, smtp_user, smtp_pass, smtp_tls_mode is required');
      const before = await emailConfig(ctx);
      const actorUserId = req.principal!.user.id;
      await writeSettings(ctx, auditOrigin(req as FastifyRequest), changes, {
        actorUserId,
        audit: () => [
          {
            orgId: null,
            actorUserId,
            action: 'email_config.update',
            targetType: 'email_config',
            targetId: null,
            metadata: { fields: [...changes.keys()].map((k) => k.slice('email.'.length)).sort() },
            before,
            after: {
              ...before,
              ...Object.fromEntries([...changes].filter(([k]) => k !== 'email.smtp_pass').map(([k, v]) => [k.slice('email.'.length), v])),
              smtp_pass_set: b.smtp_pass === undefined ? before.smtp_pass_set : b.smtp_pass !== '',
            },
          },
        ],
      });
      return null;
    },
  });

  registerRoute(app, ctx, {
    method: 'POST',
    url: '/v1/admin/email/test',
    caller: 'padmin',
    status: 204,
    summary: 'Send a test mail now (answers once the SMTP server accepted it)',
    tags,
    body: T.Object({ to: Email() }),
    trim: ['to'],
    handler: async (req) => {
      if (!(await ctx.mailer.isConfigured())) throw conflict('email.not_configured', 'email is not configured (sender and SMTP host)');
      const to = req.body.to;
      const origin = auditOrigin(req as FastifyRequest);
      const audit = (ok: boolean, error?: string) =>
        recordAudit(ctx.db, origin, {
          orgId: null,
          actorUserId: req.principal!.user.id,
          action: 'email.test',
          targetType: 'email',
          targetId: null,
          metadata: { to, ok, ...(error ? { error } : {}) },
        });
      try {
        await ctx.mailer.send(
          { to, subject: 'Arkloop test mail', text: 'This is a test mail from your Arkloop platform. Mail delivery works.' },
          { timeoutMs: TEST_TIMEOUT_MS },
        );
      } catch (err) {
        const message = ((err as Error).message || 'the SMTP server refused the message').slice(0, 500);
        await audit(false, message);
        throw new AppError('email.send_failed', 'the test mail could not be sent', { message });
      }
      await audit(true);
      return null;
    },
  });
}
