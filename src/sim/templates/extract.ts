/**
 * Regenerates fs-templates.json from the recorded FreeSWITCH traces (test/fixtures/freeswitch).
 * Run: node --import tsx src/sim/templates/extract.ts
 * Values keep their recorded text with call-specific parts replaced by {{TOKENS}} (see channel.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { FrameSplitter, fsUrlDecode, header, parseHeaderBlock, type HeaderList } from '../codec.ts';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '../../../test/fixtures/freeswitch');

interface Ev {
  name: string;
  app: string | undefined;
  headers: HeaderList;
}

function events(scenario: string): { connect: HeaderList; events: Ev[] } {
  const frames = new FrameSplitter().push(readFileSync(join(fixtures, `${scenario}.rx.raw`)));
  const connect = frames[0]!.headers.map(([k, v]) => [k, fsUrlDecode(v)] as [string, string]);
  const evs: Ev[] = [];
  for (const f of frames) {
    if (header(f.headers, 'Content-Type') !== 'text/event-plain' || !f.body) continue;
    const hs = parseHeaderBlock(f.body.toString('utf8')).map(([k, v]) => [k, fsUrlDecode(v)] as [string, string]);
    evs.push({ name: header(hs, 'Event-Name')!, app: header(hs, 'Application'), headers: hs });
  }
  return { connect, events: evs };
}

const vars = (h: HeaderList) =>
  h.filter(([k]) => k.startsWith('variable_')).map(([k, v]) => [k.slice(9), v] as [string, string]);

function tokenizer(pairs: Array<[string, string]>) {
  return (v: string) => {
    for (const [from, to] of pairs) v = v.split(from).join(to);
    return v;
  };
}

const a = events('a_success');
const summary = JSON.parse(readFileSync(join(fixtures, 'a_success.summary.json'), 'utf8')) as {
  ivrUuid: string;
  callerUuid: string;
};
const find = (name: string, app?: string) => a.events.find((e) => e.name === name && (!app || e.app === app))!;
const bridge = find('CHANNEL_BRIDGE');
const bUuid = header(bridge.headers, 'Other-Leg-Unique-ID')!;
const coreUuid = header(a.connect, 'Core-UUID')!;
const tok = tokenizer([
  [summary.ivrUuid, '{{UUID}}'],
  [bUuid, '{{B_UUID}}'],
  [summary.callerUuid, '{{CALLER_LEG_UUID}}'],
  [coreUuid, '{{CORE_UUID}}'],
  ['15557654321', '{{DEST}}'],
  ['15550001111', '{{DID}}'],
  ['15551230000', '{{CID_NUM}}'],
  ['Probe Caller', '{{CID_NAME}}'],
]);
const tv = (l: Array<[string, string]>) => l.map(([k, v]) => [k, tok(v)] as [string, string]);

function diff(after: Array<[string, string]>, before: Array<[string, string]>) {
  const had = new Set(before.map(([k]) => k));
  return after.filter(([k]) => !had.has(k));
}

const initial = vars(a.connect);
const ecAnswer = vars(find('CHANNEL_EXECUTE_COMPLETE', 'answer').headers);
const ecBridge = vars(find('CHANNEL_EXECUTE_COMPLETE', 'bridge').headers);
const ecPagd = vars(find('CHANNEL_EXECUTE_COMPLETE', 'play_and_get_digits').headers);
const hc = vars(find('CHANNEL_HANGUP_COMPLETE').headers);

const otherLeg = bridge.headers.filter(([k]) => k === 'Other-Type' || k.startsWith('Other-Leg-'));

// b-leg JSON CDR (values url-encoded inside the document; decode them for the template)
const cdrText = readFileSync(join(fixtures, 'f_copy_json_cdr.b_leg_cdr.json'), 'utf8');
const cdr = JSON.parse(cdrText) as Record<string, unknown> & { variables: Record<string, string> };
const fSummary = JSON.parse(readFileSync(join(fixtures, 'f_copy_json_cdr.summary.json'), 'utf8')) as {
  ivrUuid: string;
  callerUuid: string;
};
const cdrTok = tokenizer([
  [cdr.variables.uuid!, '{{B_UUID}}'],
  [fSummary.ivrUuid, '{{UUID}}'],
  [fSummary.callerUuid, '{{CALLER_LEG_UUID}}'],
  [cdr['core-uuid'] as string, '{{CORE_UUID}}'],
  ['15557654321', '{{DEST}}'],
  ['15550001111', '{{DID}}'],
  ['15551230000', '{{CID_NUM}}'],
  ['Probe Caller', '{{CID_NAME}}'],
]);
const cdrVars: Array<[string, string]> = Object.entries(cdr.variables)
  .filter(([k]) => !k.startsWith('cc_') && k !== 'copy_json_cdr' && k !== 'execute_on_answer')
  .map(([k, v]) => [k, cdrTok(fsUrlDecode(v))]);
const tokDeep = (x: unknown): unknown =>
  typeof x === 'string'
    ? cdrTok(x)
    : Array.isArray(x)
      ? x.map(tokDeep)
      : x && typeof x === 'object'
        ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, tokDeep(v)]))
        : x;
const { variables: _v, ...cdrRest } = cdr;

const out = {
  source: 'a_success (IVR leg), f_copy_json_cdr (b-leg JSON CDR); regenerate with extract.ts',
  connectTail: a.connect.slice(a.connect.findIndex(([k]) => k === 'Content-Type')),
  otherLeg: tv(otherLeg),
  vars: {
    initial: tv(initial),
    answer: tv(diff(ecAnswer, initial)),
    bridge: tv(diff(ecBridge, ecPagd)),
    hangup: tv(diff(hc, ecBridge)),
  },
  bLegCdr: { doc: tokDeep(cdrRest), variables: cdrVars },
};
writeFileSync(join(here, 'fs-templates.json'), JSON.stringify(out, null, 1) + '\n');
console.log('wrote fs-templates.json', JSON.stringify(out).length, 'bytes');
