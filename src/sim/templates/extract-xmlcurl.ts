/**
 * Regenerates xmlcurl-templates.json from the recorded mod_xml_curl requests (test/fixtures/freeswitch/xml_curl):
 * the fields of a directory lookup (REGISTER and INVITE) and of a dialplan lookup, in FreeSWITCH's order.
 * Run: node --import tsx src/sim/templates/extract-xmlcurl.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dir = join(here, '../../../test/fixtures/freeswitch/xml_curl');

function fields(file: string): Array<[string, string]> {
  const raw = readFileSync(join(dir, file), 'latin1');
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  return body.split('&').map((p) => {
    const i = p.indexOf('=');
    return [decodeURIComponent(p.slice(0, i)), decodeURIComponent(p.slice(i + 1))];
  });
}

const out = {
  source: 'FreeSWITCH 1.11.3-dev mod_xml_curl, recorded (test/fixtures/freeswitch/xml_curl)',
  directoryRegister: fields('register-auth.http'),
  directoryInvite: fields('invite-auth.http'),
  dialplan: fields('dialplan/found-15550001111.http'),
};
writeFileSync(join(here, 'xmlcurl-templates.json'), JSON.stringify(out, null, 1) + '\n');
console.log('wrote xmlcurl-templates.json');
