import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../http/context.js';

export function invitationRoutes(_app: FastifyInstance, _ctx: AppContext): void {}
