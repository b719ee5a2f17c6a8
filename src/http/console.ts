// The web console (issue 11), served by the API itself at `/`: no CDN, no build step.
//
// Stack, and why: Preact (4 KB virtual DOM) with htm (tagged templates, so no JSX compiler),
// marked for markdown (raw HTML in model output is rendered as text, DOMPurify cleans the
// result as a second guard) and eventsource-parser for the run stream read over fetch (so the
// access token travels in a header and a dropped stream resumes from its last seq). Every one
// is a maintained ES module the browser loads as is, straight from node_modules, through an
// import map: `npm install && npm start` is all it takes, and the first load stays small.
//
//   GET /                     web/index.html, with the import map and a strict CSP
//   GET /assets/app/*         the console's own modules (web/), revalidated by ETag
//   GET /assets/vendor/NAME   a fixed list of library files; NAME carries the version, so
//                             they are cached for a year
// all compressed (@fastify/compress, in this scope only: the API's answers and streams are not)
//   any other GET accepting HTML outside /v1: index.html again (client-side routing)
import { createHash } from 'node:crypto';
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import fastifyCompress from '@fastify/compress';

const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));
const require = createRequire(import.meta.url);

/** The library files the browser may load: import-map name → package and file in it. */
const VENDOR: Array<{ specifier: string; pkg: string; file: string }> = [
  { specifier: 'preact', pkg: 'preact', file: 'dist/preact.mjs' },
  { specifier: 'preact/hooks', pkg: 'preact', file: 'hooks/dist/hooks.mjs' },
  { specifier: 'htm', pkg: 'htm', file: 'dist/htm.mjs' },
  { specifier: 'marked', pkg: 'marked', file: 'lib/marked.esm.js' },
  { specifier: 'eventsource-parser', pkg: 'eventsource-parser', file: 'dist/index.js' },
  { specifier: 'dompurify', pkg: 'dompurify', file: 'dist/purify.es.mjs' },
];

/** The directory of an installed package (its own exports may hide package.json). */
function packageDir(pkg: string): string {
  let dir = dirname(require.resolve(pkg));
  while (!existsSync(join(dir, 'package.json')) || JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== pkg) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`package ${pkg} not found`);
    dir = up;
  }
  return dir;
}

interface VendorFile {
  url: string;
  specifier: string;
  body: Buffer;
}

function loadVendor(): Map<string, VendorFile> {
  const files = new Map<string, VendorFile>();
  for (const v of VENDOR) {
    const dir = packageDir(v.pkg);
    const version = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version as string;
    const name = `${v.pkg}@${version}-${v.file.replace(/\//g, '_')}`;
    files.set(name, { url: `/assets/vendor/${name}`, specifier: v.specifier, body: readFileSync(join(dir, v.file)) });
  }
  return files;
}

interface ConsolePage {
  html: string;
  csp: string;
}

/** The console's own modules, as URLs under /assets/app/. */
function appModules(dir = WEB_DIR, prefix = '/assets/app/'): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? appModules(join(dir, e.name), `${prefix}${e.name}/`) : e.name.endsWith('.js') ? [`${prefix}${e.name}`] : [],
  );
}

/**
 * index.html with the import map, the classic vendor scripts and a modulepreload link for every
 * module filled in (so the browser fetches them all at once instead of import by import); the
 * CSP allows the one inline script, the import map, by its hash.
 */
function buildPage(vendor: Map<string, VendorFile>): ConsolePage {
  const imports: Record<string, string> = {};
  for (const f of vendor.values()) imports[f.specifier] = f.url;
  const tags = [...Object.values(imports), ...appModules()].map((url) => `<link rel="modulepreload" href="${url}" />`);
  const map = JSON.stringify({ imports });
  const hash = createHash('sha256').update(map).digest('base64');
  const template = readFileSync(join(WEB_DIR, 'index.html'), 'utf8');
  const html = template.replace('<!-- vendor -->', [`<script type="importmap">${map}</script>`, ...tags].join('\n    '));
  const csp = [
    "default-src 'none'",
    `script-src 'self' 'sha256-${hash}'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, csp };
}

function sendPage(page: ConsolePage, reply: FastifyReply): FastifyReply {
  return reply
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', page.csp)
    .header('cache-control', 'no-cache')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .send(page.html);
}

/** A GET the console answers with its page when no route matched: outside /v1, from a browser. */
function wantsConsolePage(req: FastifyRequest): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const path = req.url.split('?')[0];
  if (path === '/v1' || path.startsWith('/v1/') || path.startsWith('/assets/')) return false;
  return String(req.headers.accept ?? '').includes('text/html');
}

export interface Console {
  /** For the not-found handler: answers with the console page when it applies; false otherwise. */
  fallback(req: FastifyRequest, reply: FastifyReply): boolean;
}

export async function registerConsole(app: FastifyInstance): Promise<Console> {
  const vendor = loadVendor();
  const page = buildPage(vendor);

  // One encapsulated scope: its responses are compressed (gzip/brotli as the browser accepts),
  // the API's (event streams included) are not.
  await app.register(async (scope) => {
    await scope.register(fastifyCompress, { global: true, encodings: ['br', 'gzip'], threshold: 1024 });
    scope.get('/', { schema: { hide: true } }, (_req, reply) => sendPage(page, reply));
    scope.get('/assets/vendor/:name', { schema: { hide: true } }, (req, reply) => {
      const file = vendor.get((req.params as { name: string }).name);
      if (!file) return reply.callNotFound();
      return reply
        .header('content-type', 'text/javascript; charset=utf-8')
        .header('cache-control', 'public, max-age=31536000, immutable')
        .header('x-content-type-options', 'nosniff')
        .send(file.body);
    });
    await scope.register(fastifyStatic, {
      root: WEB_DIR,
      prefix: '/assets/app/',
      decorateReply: false,
      index: false,
      cacheControl: false,
      setHeaders: (reply) => {
        reply.header('cache-control', 'no-cache');
        reply.header('x-content-type-options', 'nosniff');
      },
      schemaHide: true,
    });
  });

  return {
    fallback(req, reply) {
      if (!wantsConsolePage(req)) return false;
      sendPage(page, reply);
      return true;
    },
  };
}
