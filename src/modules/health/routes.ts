// Health & system (api.md §25): liveness, readiness with the schema version.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../app-context.js';
import { currentSchemaVersion } from '../../db/migrator.js';
import { T } from '../../http/schemas.js';

export function healthRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness', tags: ['system'], response: { 200: T.Object({ status: T.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: database reachable and schema up to date',
        tags: ['system'],
        response: {
          200: T.Object({ status: T.Literal('ok'), schema_version: T.String() }),
          503: T.Object({ status: T.Literal('unavailable'), reason: T.String() }),
        },
      },
    },
    async (_req, reply) => {
      try {
        await ctx.database.ping(2000);
        const applied = await Promise.race([
          currentSchemaVersion(ctx.database),
          new Promise<never>((_, rej) => setTimeout(() => rej(new Error('database timed out')), 2000)),
        ]);
        if (applied !== ctx.schemaVersion) {
          return reply.code(503).send({
            status: 'unavailable',
            reason: `schema version mismatch: expected ${ctx.schemaVersion}, got ${applied ?? 'none'}`,
          });
        }
        return { status: 'ok' as const, schema_version: applied };
      } catch (err) {
        return reply.code(503).send({ status: 'unavailable', reason: `database unreachable: ${(err as Error).message}` });
      }
    },
  );
}
