import type { FastifyInstance } from 'fastify';

/**
 * The Content-Security-Policy of every HTML page ccard serves (/docs today, the web console later): scripts and
 * fonts from ccard itself only, no plugins, never inside a frame. Inline styles are allowed (Swagger UI sets one;
 * a style cannot run code), inline scripts are not. A route that needs another policy sets its own
 * Content-Security-Policy header; this hook never overrides one.
 */
export const HTML_CSP =
  "default-src 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; " +
  "script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'";

/** Paths whose answers may be cached (static, public documentation assets). Everything else is no-store. */
const CACHEABLE = /^\/docs\/static\//;

/**
 * Headers on every answer: `X-Content-Type-Options: nosniff`; on HTML, the CSP above and `X-Frame-Options: DENY`
 * (frame protection for browsers without frame-ancestors); `Cache-Control: no-store` unless the route set one or
 * serves static documentation, since answers carry balances, tokens and PIN exports.
 */
export function registerSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    const type = String(reply.getHeader('content-type') ?? '');
    if (/^text\/html\b/i.test(type)) {
      if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', HTML_CSP);
      if (!reply.hasHeader('x-frame-options')) reply.header('x-frame-options', 'DENY');
    }
    if (!reply.hasHeader('cache-control') && !CACHEABLE.test(req.url)) reply.header('cache-control', 'no-store');
    return payload;
  });
}
