/**
 * The XML documents ccard answers mod_xml_curl with. Every value that goes into a document is escaped, including
 * ccard's own (a DID, a domain): nothing a caller or a device sent is ever echoed unescaped.
 */

/** What FreeSWITCH recorded as "not found": it goes on with its static XML (dialplan) or refuses (directory: 403). */
export const NOT_FOUND_XML = '<document type="freeswitch/xml"><section name="result"><result status="not found"/></section></document>';

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escapes text for an XML attribute value or text node; control characters (never legitimate here) are dropped. */
export function xmlEscape(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '').replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

/** A regular expression matching exactly `s` (the DID, which may start with '+'). */
export function regexLiteral(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

export interface DialplanAnswer {
  /** The context asked for (Hunt-Context): FreeSWITCH honours no other (recording context-other). */
  context: string;
  /** The extension's name (shows in FreeSWITCH's log as `parsing [public->ccard]`). */
  extension: string;
  /** The destination_number expression, e.g. ^15550001111$ */
  expression: string;
  /** socket targets in order: the first that connects takes the call, the next is the failover. */
  sockets: string[];
  /** set actions before the socket (name=value), e.g. sound_prefix. */
  set: Array<[string, string]>;
}

/**
 * The extension that hands a call to ccard's socket, as the shipped static dialplan does: the settings, one socket
 * action per ccard (a failed connect returns and the dialplan goes on), then `respond 503` so the carrier reroutes.
 */
export function dialplanXml(a: DialplanAnswer): string {
  const actions = [
    ...a.set.map(([k, v]) => `<action application="set" data="${xmlEscape(`${k}=${v}`)}"/>`),
    ...a.sockets.map((s) => `<action application="socket" data="${xmlEscape(`${s} async full`)}"/>`),
    '<action application="respond" data="503 Service Unavailable"/>',
  ];
  return (
    '<document type="freeswitch/xml"><section name="dialplan">' +
    `<context name="${xmlEscape(a.context)}"><extension name="${xmlEscape(a.extension)}">` +
    `<condition field="destination_number" expression="${xmlEscape(a.expression)}">${actions.join('')}</condition>` +
    '</extension></context></section></document>'
  );
}

export interface DirectoryUserAnswer {
  domain: string;
  user: string;
  /** md5(user:realm:password), hex: mod_sofia uses it instead of its own digest of the password. */
  a1Hash: string;
  /** Become channel variables of every call the device makes (variable_<name> on the socket). */
  variables: Array<[string, string]>;
}

export function directoryXml(u: DirectoryUserAnswer): string {
  const vars = u.variables.map(([k, v]) => `<variable name="${xmlEscape(k)}" value="${xmlEscape(v)}"/>`).join('');
  return (
    '<document type="freeswitch/xml"><section name="directory">' +
    `<domain name="${xmlEscape(u.domain)}"><user id="${xmlEscape(u.user)}">` +
    `<params><param name="a1-hash" value="${xmlEscape(u.a1Hash)}"/></params>` +
    `<variables>${vars}</variables></user></domain></section></document>`
  );
}
