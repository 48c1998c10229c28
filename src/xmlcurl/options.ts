import type { Config } from '../config/env.ts';
import type { XmlCurlOptions } from '../api/routes/freeswitch.ts';

/**
 * mod_xml_curl settings from the configuration. The socket targets default to this ccard's own event socket
 * (a wildcard bind address becomes 127.0.0.1); `eslPort` is the port actually listened on.
 */
export function xmlCurlOptions(config: Config, accessNumbers: XmlCurlOptions['accessNumbers'], eslPort: number): XmlCurlOptions {
  const host = ['0.0.0.0', '::', ''].includes(config.CCARD_ESL_HOST) ? '127.0.0.1' : config.CCARD_ESL_HOST;
  return {
    accessNumbers,
    contexts: config.CCARD_DIALPLAN_CONTEXTS.split(','),
    deviceContext: config.CCARD_DEVICE_CONTEXT,
    sockets: config.CCARD_DIALPLAN_SOCKETS ? config.CCARD_DIALPLAN_SOCKETS.split(',') : [`${host}:${eslPort}`],
    soundsPrefix: config.CCARD_SOUNDS_PREFIX,
    ...(config.CCARD_XMLCURL_USER && config.CCARD_XMLCURL_PASSWORD && {
      credentials: { user: config.CCARD_XMLCURL_USER, password: config.CCARD_XMLCURL_PASSWORD },
    }),
    allowIps: config.CCARD_XMLCURL_ALLOW === '*' ? '*' : config.CCARD_XMLCURL_ALLOW.split(','),
  };
}
