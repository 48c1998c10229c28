import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';

/** Where `npm run build:web` (vite, web/vite.config.ts) writes the console. */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../dist/web/', import.meta.url));

/** Paths that belong to the API: an unknown one is a JSON 404, never the SPA's page. */
const API_PREFIXES = ['/v1', '/auth', '/selfcare', '/docs', '/cdr', '/metrics'];

/**
 * The first path segments of the console's own pages (web/src/App.tsx, /my for self-care): the SPA's page is served
 * under these only, so any other path is a real 404, not a 200 page that says "not found".
 */
export const PAGE_SECTIONS = new Set(['', 'series', 'cards', 'access-numbers', 'caller-ids', 'rate-tables', 'tax-profiles', 'api-keys', 'operators', 'audit', 'calls', 'reports', 'my']);

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>ccard</title>
<p>The ccard console has not been built. Run <code>npm run build:web</code> (or start ccard with <code>npm start</code> /
<code>npm run demo</code>, which build it when it is missing), then reload. The HTTP API is at <a href="/docs">/docs</a>.</p>`;

/**
 * Serves the single-page console (one index.html for the operators' pages at / and the cardholders' at /my):
 * a file of the build when it exists (hashed /assets/* cached for a year), the SPA's index.html for any other
 * page path (its router decides), and a JSON 404 for unknown API paths and for missing files (a path with an
 * extension, or under /assets/). The root is read per request, so a build made while ccard runs is served.
 */
export function registerWeb(app: FastifyInstance, root = DEFAULT_WEB_ROOT): void {
  const base = path.resolve(root);
  app.register(fastifyStatic, { root: base, serve: false });
  const handler = async (req: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
    const urlPath = decodeURIComponent(req.url.split('?')[0]!);
    if (API_PREFIXES.some((p) => urlPath === p || urlPath.startsWith(`${p}/`))) return reply.callNotFound();
    const file = path.resolve(base, `.${urlPath}`);
    if (!file.startsWith(base + path.sep) && file !== base) return reply.callNotFound();
    if (file !== base && existsSync(file) && statSync(file).isFile()) {
      const rel = path.relative(base, file);
      const immutable = rel.startsWith(`assets${path.sep}`);
      return reply
        .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
        .sendFile(rel, { cacheControl: false });
    }
    const last = urlPath.split('/').pop() ?? '';
    if (last.includes('.') || urlPath.startsWith('/assets/')) return reply.callNotFound();
    if (!PAGE_SECTIONS.has(urlPath.split('/')[1] ?? '')) return reply.callNotFound();
    if (!existsSync(path.join(base, 'index.html'))) return reply.code(503).type('text/html; charset=utf-8').send(NOT_BUILT);
    return reply.header('cache-control', 'no-cache').sendFile('index.html', { cacheControl: false });
  };
  app.get('/', { schema: { hide: true } }, handler);
  app.get('/*', { schema: { hide: true } }, handler);
}

export const webBuilt = (root = DEFAULT_WEB_ROOT): boolean => existsSync(path.join(root, 'index.html'));
