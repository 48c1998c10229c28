import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AdminContext } from '../../store/admin/context.ts';
import { deviceSignature, findDirectoryDevice } from '../../store/devices.ts';
import { dialplanXml, directoryXml, NOT_FOUND_XML, regexLiteral } from '../../xmlcurl/documents.ts';

/** mod_xml_curl's bindings served by ccard (README "Wiring FreeSWITCH"). */
export interface XmlCurlOptions {
  /** The enabled access numbers, in memory (AccessNumberMap). */
  accessNumbers: { has(did: string): boolean };
  /** Dialplan contexts where access numbers are answered (the access profile's context, e.g. public). */
  contexts: readonly string[];
  /** The context of device calls (the directory's user_context): every destination goes to ccard. */
  deviceContext: string;
  /** socket targets, in order (the second is the failover). */
  sockets: string[];
  /** CCARD_SOUNDS_PREFIX: the default sound_prefix (ccard sets the access number's language itself). */
  soundsPrefix: string;
  /** HTTP basic auth mod_xml_curl must send (gateway-credentials); unset: none. */
  credentials?: { user: string; password: string };
  /** Client addresses allowed; '*' = any. */
  allowIps: readonly string[] | '*';
}

const XML = 'text/xml';

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** ::ffff:127.0.0.1 (an IPv4 client on a dual-stack socket) is 127.0.0.1. */
const plainIp = (ip: string) => (ip.startsWith('::ffff:') ? ip.slice(7) : ip);

/**
 * POST /fs/dialplan and POST /fs/directory, for mod_xml_curl (form-urlencoded bodies, as recorded in
 * ../shared/freeswitch/xml_curl). Refused clients get a 401/403, which FreeSWITCH treats like a dead server:
 * static dialplan fallback, and 403 to a device.
 */
export function registerFreeswitchRoutes(app: FastifyInstance, ctx: AdminContext, opts: XmlCurlOptions): void {
  const contexts = new Set(opts.contexts);
  const allow = opts.allowIps === '*' ? null : new Set(opts.allowIps.map(plainIp));
  const expectedAuth = opts.credentials
    ? `Basic ${Buffer.from(`${opts.credentials.user}:${opts.credentials.password}`).toString('base64')}`
    : undefined;
  const settings: Array<[string, string]> = [
    ['sound_prefix', `${opts.soundsPrefix}/en`],
    ['sound_prefix_enforced', 'true'],
    ['continue_on_fail', 'true'],
    ['hangup_after_bridge', 'false'],
  ];

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, new URLSearchParams(body as string));
  });
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (allow && !allow.has(plainIp(req.ip))) {
      req.log.warn({ ip: req.ip }, 'mod_xml_curl request from an address not in CCARD_XMLCURL_ALLOW');
      return reply.code(403).type(XML).send('');
    }
    if (expectedAuth && !sameSecret(req.headers.authorization ?? '', expectedAuth)) {
      return reply.code(401).header('www-authenticate', 'Basic realm="ccard"').type(XML).send('');
    }
  });

  const form = (req: FastifyRequest): URLSearchParams => (req.body instanceof URLSearchParams ? req.body : new URLSearchParams());
  const hide = { schema: { hide: true } };

  app.post('/fs/dialplan', hide, async (req, reply) => {
    const f = form(req);
    reply.type(XML);
    if (f.get('section') !== 'dialplan') return NOT_FOUND_XML;
    const context = f.get('Hunt-Context') ?? '';
    const number = f.get('Hunt-Destination-Number') ?? '';
    if (contexts.has(context) && opts.accessNumbers.has(number)) {
      return dialplanXml({ context, extension: 'ccard', expression: `^${regexLiteral(number)}$`, sockets: [...opts.sockets], set: settings });
    }
    // A call from a device, authenticated by ccard's own directory: any destination goes to ccard, which trusts
    // it only after checking the directory's signed variables itself.
    if (context === opts.deviceContext && f.get('variable_sip_authorized') === 'true' && /^\+?[0-9*#]{1,32}$/.test(number)) {
      return dialplanXml({ context, extension: 'ccard_device', expression: '^(.+)$', sockets: [...opts.sockets], set: settings });
    }
    return NOT_FOUND_XML;
  });

  app.post('/fs/directory', hide, async (req, reply) => {
    const f = form(req);
    reply.type(XML);
    if (f.get('section') !== 'directory' || f.get('action') !== 'sip_auth') return NOT_FOUND_XML;
    const user = f.get('user') ?? '';
    const domain = f.get('domain') ?? '';
    const d = await findDirectoryDevice(ctx.pool, user, domain);
    if (!d) return NOT_FOUND_XML;
    return directoryXml({
      domain: d.realm,
      user: d.username,
      a1Hash: d.a1Hash,
      variables: [
        ['cc_card_id', d.cardId],
        ['cc_device_id', d.deviceId],
        ['cc_device_user', d.username],
        ['cc_device_lines', String(d.lines)],
        ['cc_device_sig', deviceSignature(ctx.pinKeys, d.cardId, d.deviceId, d.username)],
        ['user_context', opts.deviceContext],
      ],
    });
  });
}
