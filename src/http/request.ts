// What the authentication hook attaches to each request: the caller (Principal) and the
// account it acts in, as Fastify request decorations.
import type { AccountRole } from '../db/schema.js';

export interface PrincipalUser {
  id: string;
  login: string;
  username: string;
  email: string | null;
  emailVerified: boolean;
  isPlatformAdmin: boolean;
}

export interface Principal {
  kind: 'user' | 'api_key';
  user: PrincipalUser;
  sessionId: string | null;
  apiKeyId: string | null;
}

export interface CurrentAccount {
  id: string;
  type: 'personal' | 'workspace';
  name: string;
  slug: string;
  /** The caller's role; a platform admin who is not a member acts as `owner`. */
  role: AccountRole;
  isMember: boolean;
  points: ReadonlySet<string>;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    account: CurrentAccount | null;
    clientIp: string;
  }
  interface FastifyContextConfig {
    /** The route declares a body schema (decides whether a sent body is parsed at all). */
    hasBody?: boolean;
  }
}
