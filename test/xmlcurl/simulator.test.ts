import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  dialplanFields,
  directoryFields,
  encodeFields,
  interpretDialplan,
  interpretDirectory,
  postXmlCurl,
  xmlCurlRequest,
} from '../../src/sim/xmlcurl.ts';
import { raw, recordedAnswer, recordedFields, replayPeer, requestFiles } from './recorded.ts';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const get = (f: Array<[string, string]>, k: string) => f.find(([n]) => n === k)?.[1];

describe('the requests FreeSWITCH sends, byte for byte', () => {
  const files = [...requestFiles(), ...requestFiles('dialplan')];

  it('re-encodes every recorded request (25) to its exact bytes, headers included', () => {
    expect(files.length).toBe(25);
    for (const file of files) {
      const fields = recordedFields(file);
      const url = file.startsWith('dialplan/') ? 'http://127.0.0.1:8097/fs/dialplan' : 'http://127.0.0.1:8095/fs/directory';
      expect(xmlCurlRequest(url, encodeFields(fields)).equals(raw(file)), file).toBe(true);
    }
  });

  it('builds the REGISTER and INVITE lookups from a password, digest included', () => {
    for (const [file, method, destination] of [
      ['register-auth.http', 'REGISTER', undefined],
      ['invite-auth.http', 'INVITE', '15559870000'],
      ['invite-auth-15550001111.http', 'INVITE', '15550001111'],
    ] as const) {
      const rec = recordedFields(file);
      const built = directoryFields({
        method,
        user: '70001',
        domain: '127.0.0.1',
        password: 's3cret-70001',
        ...(destination && { destination }),
        nonce: get(rec, 'sip_auth_nonce')!,
        cnonce: get(rec, 'sip_auth_cnonce')!,
        nc: get(rec, 'sip_auth_nc')!,
      });
      // Everything but the per-request identifiers is what FreeSWITCH sent, in its order; the digest is the device's.
      const skip = new Set(['Core-UUID', 'Event-Date-Local', 'Event-Date-GMT', 'Event-Date-Timestamp', 'Event-Sequence', 'sip_call_id']);
      expect(built.map(([k]) => k)).toEqual(rec.map(([k]) => k));
      expect(built.filter(([k]) => !skip.has(k))).toEqual(rec.filter(([k]) => !skip.has(k)));
    }
  });

  it('builds the dialplan lookup of the recorded call (163 fields, Hunt-* = Caller-*)', () => {
    const rec = recordedFields('dialplan/found-15550001111.http');
    const built = dialplanFields({ destination: '15550001111', context: 'public', uuid: get(rec, 'Unique-ID')!, callerId: '15551239999' });
    expect(built.length).toBe(163);
    expect(encodeFields(built)).toBe(encodeFields(rec));
    const other = dialplanFields({ destination: '15550009876', context: 'devs', variables: { sip_authorized: 'true', cc_card_id: '7' } });
    expect(get(other, 'Hunt-Destination-Number')).toBe('15550009876');
    expect(get(other, 'Hunt-Context')).toBe('devs');
    expect(get(other, 'variable_cc_card_id')).toBe('7');
    expect(other.findIndex(([k]) => k === 'variable_cc_card_id')).toBeLessThan(other.findIndex(([k]) => k.startsWith('Hunt-')));
  });

  it('posts exactly those bytes over a fresh connection and reads the answer', async () => {
    const peer = await replayPeer(raw('register-auth.response.http'));
    try {
      const rec = recordedFields('register-auth.http');
      const a = await postXmlCurl(`${peer.url}/fs/directory`, encodeFields(rec));
      expect(a.status).toBe(200);
      expect(a.contentType).toBe('text/xml');
      const want = raw('register-auth.http').toString('latin1').replace('Host: 127.0.0.1:8095', `Host: ${new URL(peer.url).host}`);
      expect(peer.requests[0]!.toString('latin1')).toBe(want);
      expect(interpretDirectory(a, rec)).toEqual({ outcome: 'authorized', variables: { cc_card_id: '42', user_context: 'public' } });
    } finally {
      await peer.close();
    }
  });

  it('sends gateway-credentials as basic auth', () => {
    const req = xmlCurlRequest('http://h:1/fs/dialplan', 'a=b', 'fs:secret-pass').toString();
    expect(req).toContain(`\r\nAuthorization: Basic ${Buffer.from('fs:secret-pass').toString('base64')}\r\nUser-Agent: freeswitch-xml/1.0\r\n`);
  });
});

describe('directory answers as mod_sofia took them', () => {
  const reg = recordedFields('register-auth.http');
  const inv = recordedFields('invite-auth.http');

  it('authorizes the recorded REGISTER and INVITE with their answers', () => {
    expect(interpretDirectory(recordedAnswer('register-auth.response.http'), reg).outcome).toBe('authorized');
    expect(interpretDirectory(recordedAnswer('invite-auth.response.http'), inv)).toEqual({
      outcome: 'authorized',
      variables: { cc_card_id: '42', user_context: 'public' },
    });
  });

  it('refuses (403) the wrong password, not found, a dead server and HTTP errors alike', async () => {
    expect(interpretDirectory(recordedAnswer('register-wrong-password.response.http'), recordedFields('register-wrong-password.http')).outcome).toBe('forbidden');
    expect(interpretDirectory(recordedAnswer('invite-wrong-password.response.http'), recordedFields('invite-wrong-password.http')).outcome).toBe('forbidden');
    expect(interpretDirectory(recordedAnswer('register-not-found.response.http'), recordedFields('register-not-found.http')).outcome).toBe('forbidden');
    const dead = await postXmlCurl('http://127.0.0.1:9/fs/directory', encodeFields(reg));
    expect(dead.status).toBe(0);
    expect(interpretDirectory(dead, reg)).toEqual({ outcome: 'forbidden', why: expect.stringMatching(/HTTP error 0/) });
    expect(interpretDirectory({ status: 404, contentType: 'text/plain', body: '' }, reg).outcome).toBe('forbidden');
  });

  it('takes an a1-hash param in place of the password (sofia_reg.c)', () => {
    const doc = (a1: string) => ({
      status: 200,
      contentType: 'text/xml',
      body: `<document type="freeswitch/xml"><section name="directory"><domain name="127.0.0.1"><user id="70001"><params><param name="a1-hash" value="${a1}"/></params><variables><variable name="cc_card_id" value="42"/></variables></user></domain></section></document>`,
    });
    expect(interpretDirectory(doc(md5('70001:127.0.0.1:s3cret-70001')), reg)).toEqual({ outcome: 'authorized', variables: { cc_card_id: '42' } });
    expect(interpretDirectory(doc(md5('70001:127.0.0.1:other')), inv).outcome).toBe('forbidden');
    expect(interpretDirectory(doc(md5('70001:127.0.0.1:s3cret-70001')), inv).outcome).toBe('authorized');
  });

  it('finds the user only under the asked domain and id', () => {
    const body = recordedAnswer('register-auth.response.http').body;
    expect(interpretDirectory({ status: 200, contentType: 'text/xml', body: body.replace('<domain name="127.0.0.1">', '<domain name="other">') }, reg).outcome).toBe('forbidden');
    expect(interpretDirectory({ status: 200, contentType: 'text/xml', body: body.replace('user id="70001"', 'user id="70002"') }, reg).outcome).toBe('forbidden');
  });
});

describe('dialplan answers as mod_dialplan_xml took them (timeline.tsv)', () => {
  const at = (file: string, destination: string) => interpretDialplan(recordedAnswer(`dialplan/${file}.response.http`), { destination, context: 'public' });

  it('runs the document of the asked context: set, socket', () => {
    expect(at('found-15550001111', '15550001111')).toEqual({
      outcome: 'route',
      context: 'public',
      extension: 'ccard',
      actions: [
        { application: 'set', data: 'hangup_after_bridge=false' },
        { application: 'socket', data: '127.0.0.1:8040 async full' },
      ],
    });
    expect(at('context-global-15550001111', '15550001111')).toMatchObject({ outcome: 'route', context: 'global' });
  });

  it('falls back to the static dialplan on not found, HTTP 404, an empty 200 and a dead server', async () => {
    expect(at('not-found-15550009876', '15550009876').outcome).toBe('fallback');
    expect(at('http-404-15550001111', '15550001111').outcome).toBe('fallback');
    expect(at('empty-200-15550001111', '15550001111').outcome).toBe('fallback');
    const dead = await postXmlCurl('http://127.0.0.1:9/fs/dialplan', 'x=y');
    expect(interpretDialplan(dead, { destination: '15550001111' }).outcome).toBe('fallback');
  });

  it('leaves the call unrouted for another context or an extension that does not match', () => {
    expect(at('context-other-15550001111', '15550001111')).toEqual({ outcome: 'no-route', why: 'Context public not found' });
    expect(at('doc-no-match-15550009876', '15550009876').outcome).toBe('no-route');
  });
});

describe('the authenticated device call on the outbound socket (connect-reply.raw)', () => {
  it('yields the device claims ccard checks, from the recorded bytes', async () => {
    const { FrameParser, EslEvent } = await import('../../src/esl/parser.ts');
    const { callInfoFrom } = await import('../../src/esl/call-session.ts');
    const frames = new FrameParser().push(raw('connect-reply.raw'));
    expect(frames).toHaveLength(1);
    const info = callInfoFrom(new EslEvent(frames[0]!.headers, undefined, 'plain'));
    expect(info.did).toBe('15559870000');
    // The recording's directory answered cc_card_id=42 without ccard's signature: a claim ccard will refuse.
    expect(info.device).toEqual({ sipAuthorized: true, cardId: '42', deviceId: '', user: '', authUser: '70001', sig: '' });
    const { createDeviceCalls } = await import('../../src/flow/device.ts');
    const { derivePinKeys } = await import('../../src/store/pin.ts');
    const { deviceCall } = createDeviceCalls({ pool: undefined as never, pinKeys: derivePinKeys('x'.repeat(16)), deviceDid: '1', accessNumber: async () => undefined, staleAfterSec: 60 });
    expect(await deviceCall(info.device!, info.uuid)).toEqual({ ok: false, reason: 'forged' });
  });

  it('the access-number recordings carry no device claims', async () => {
    const { FrameParser, EslEvent } = await import('../../src/esl/parser.ts');
    const { callInfoFrom } = await import('../../src/esl/call-session.ts');
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { FIXTURES } = await import('../sim/recorded.ts');
    const frames = new FrameParser().push(readFileSync(join(FIXTURES, 'a3_success_nolinger.rx.raw')));
    expect(callInfoFrom(new EslEvent(frames[0]!.headers, undefined, 'plain')).device).toBeUndefined();
  });
});

describe('the simulator plays an authenticated device call like the recording (connect-session)', () => {
  it('connect reply: the same device headers, values and socket mode as connect-reply.raw', async () => {
    const { replayClient, splitFrames, hv } = await import('../sim/recorded.ts');
    const { FreeSwitchSim } = await import('../../src/sim/index.ts');
    const { deviceChannelVariables } = await import('../../src/sim/xmlcurl.ts');
    const out = await replayClient('xml_curl/connect-session', async (port) => {
      const sim = new FreeSwitchSim({ port, timeScale: 0 });
      await sim.call({
        did: '15559870000',
        callerId: '70001',
        channelVariables: deviceChannelVariables({ user: '70001', domain: '127.0.0.1', variables: { cc_card_id: '42', user_context: 'public' } }),
      });
    });
    const recorded = splitFrames(raw('connect-session.rx.raw'));
    const names = [
      'variable_sip_authorized', 'variable_sip_auth_username', 'variable_sip_auth_realm', 'variable_user_name', 'variable_domain_name',
      'variable_requested_user_name', 'variable_requested_domain_name', 'variable_number_alias', 'variable_sip_number_alias',
      'variable_cc_card_id', 'variable_user_context', 'Socket-Mode', 'Control', 'Caller-Destination-Number', 'Caller-Caller-ID-Number',
    ];
    for (const n of names) {
      expect(hv(recorded[0]!, n), n).toBeDefined();
      expect(hv(out.frames[0]!, n), n).toBe(hv(recorded[0]!, n));
    }
    expect(hv(out.frames[0]!, 'variable_sip_authorized')).toBe('true');
    // Then, as recorded: "+OK bye" to exit and the disconnect notice.
    const tail = (fs: typeof recorded) => fs.slice(1).map((f) => `${hv(f, 'Content-Type')}|${hv(f, 'Reply-Text') ?? ''}`);
    expect(tail(out.frames)).toEqual(tail(recorded));
  });
});
