/**
 * POST /cdr: FreeSWITCH's mod_json_cdr delivers every leg's CDR here.
 *
 * What mod_json_cdr sends (mod_json_cdr.c, process_cdr): `Content-Type: application/json` with the raw document
 * (encode=false, what ccard requires), `application/x-www-form-urlencoded` with `cdr=<url-encoded>` (encode=true:
 * not decodable exactly, see src/cdr/json-cdr.ts) or `application/x-www-form-base64-encoded` with `cdr=<base64>`
 * (encode=base64). Only the first and the last are taken; anything else is 415 (in particular text/plain and
 * form-urlencoded, which a web page could post cross-site without a CORS preflight). Bodies are capped at 1 MiB
 * (a real CDR is ~10-30 KB). Credentials: mod_json_cdr's `cred` (user:password) with `auth-scheme` basic, checked
 * against CCARD_CDR_CREDENTIALS; without configured credentials only loopback clients may post.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { apiErrorHandler, errorBody } from '../errors.ts';

export const CDR_BODY_LIMIT = 1024 * 1024;
const CONTENT_TYPES = ['application/json', 'application/x-www-form-base64-encoded'];

export interface CdrRouteOptions {
  /** Bills one document; its status and body are the answer (a thrown error is a 5xx: mod_json_cdr retries). */
  handler: (body: string) => Promise<{ status: number; body: unknown }>;
  /** `user:password` (CCARD_CDR_CREDENTIALS); unset: loopback clients only. */
  credentials?: string | undefined;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** True when the Authorization header carries exactly these Basic credentials (constant-time comparison). */
export function basicAuthMatches(header: string | undefined, credentials: string): boolean {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1]!, 'base64').toString('utf8');
  return timingSafeEqual(digest(given), digest(credentials));
}

const LOOPBACK_RE = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/;
export const isLoopback = (addr: string | undefined) => addr !== undefined && LOOPBACK_RE.test(addr);

export function registerCdrRoute(app: FastifyInstance, opts: CdrRouteOptions): void {
  app.register(async (cdr) => {
    cdr.removeAllContentTypeParsers();
    cdr.addContentTypeParser(CONTENT_TYPES, { parseAs: 'string', bodyLimit: CDR_BODY_LIMIT }, (_req, body, done) => done(null, body));
    cdr.addHook('onRequest', async (req, reply) => {
      if (opts.credentials) {
        if (!basicAuthMatches(req.headers.authorization, opts.credentials)) {
          req.log.warn({ remote: req.socket.remoteAddress }, 'POST /cdr refused: wrong or missing credentials');
          reply.header('WWW-Authenticate', 'Basic realm="ccard cdr", charset="UTF-8"');
          return reply.code(401).send(errorBody('UNAUTHORIZED', 'POST /cdr needs the credentials of CCARD_CDR_CREDENTIALS (mod_json_cdr cred)'));
        }
      } else if (!isLoopback(req.socket.remoteAddress)) {
        req.log.warn({ remote: req.socket.remoteAddress }, 'POST /cdr refused: another host without CCARD_CDR_CREDENTIALS');
        return reply.code(403).send(errorBody('FORBIDDEN', 'POST /cdr from another host needs CCARD_CDR_CREDENTIALS'));
      }
    });
    // logLevel warn: fastify's two info lines per request (4 per call, each serializing the request) were most of
    // the log volume and ~2 ms of CPU per call; the ingest's own outcome is counted in the metrics, refusals and
    // errors are still logged.
    cdr.post('/cdr', { schema: { hide: true }, bodyLimit: CDR_BODY_LIMIT, logLevel: 'warn' }, async (req, reply) => {
      const r = await opts.handler(typeof req.body === 'string' ? req.body : '');
      return reply.code(r.status).send(r.body);
    });
  });
}

/** POST /cdr alone, for its own listener (CCARD_CDR_HOST/CCARD_CDR_PORT): nothing else is reachable there. */
export function buildCdrApp(logger: FastifyBaseLogger | undefined, opts: CdrRouteOptions): FastifyInstance {
  const app = Fastify({ ...(logger ? { loggerInstance: logger } : { logger: false }), bodyLimit: CDR_BODY_LIMIT }) as unknown as FastifyInstance;
  app.setErrorHandler(apiErrorHandler);
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
  });
  registerCdrRoute(app, opts);
  return app;
}
