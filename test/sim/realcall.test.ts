/**
 * The simulator plays a whole real call (issue 14): the bytes and frames of a recorded FreeSWITCH call, prompts at
 * their real lengths, and every leg's json_cdr POST.
 */
import http from 'node:http';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { FreeSwitchSim } from '../../src/sim/index.ts';
import { loadSoundLengths, realSoundDurationMs } from '../../src/sim/sounds.ts';
import { hv, recordedRx, replayClient, splitFrames, view, type Frame } from './recorded.ts';

/** A frame's bytes as sent: its header block, the blank line, the body. */
const frameBytes = (f: Frame) => f.headers.map(([a, b]) => `${a}: ${b}\n`).join('').length + 1 + Buffer.byteLength(f.body);

/** Frames and bytes by kind: Content-Type, and the event name for events. */
function byKind(frames: Frame[]): Map<string, { frames: number; bytes: number }> {
  const out = new Map<string, { frames: number; bytes: number }>();
  for (const f of frames) {
    const v = view(f);
    const k = `${v.type}${v.name ? ` ${v.name}` : ''}${hv(f, 'Content-Disposition') ? ` ${hv(f, 'Content-Disposition')}` : ''}`;
    const e = out.get(k) ?? { frames: 0, bytes: 0 };
    e.frames++;
    e.bytes += frameBytes(f);
    out.set(k, e);
  }
  return out;
}

/** A sink for mod_json_cdr POSTs: uuid, body size, arrival order. */
async function cdrSink() {
  const posts: Array<{ uuid: string; bytes: number; at: number }> = [];
  const server = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => (n += d.length));
    req.on('end', () => {
      posts.push({ uuid: new URL(req.url!, 'http://x').searchParams.get('uuid') ?? '', bytes: n, at: Date.now() });
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/cdr`, posts, close: () => new Promise((r) => server.close(r)) };
}

// A call's bytes differ from the recording's only where variable values differ in length (the recording's SDP and
// RTP counters; uuids and times have the same length): the same number of frames of every kind, bytes per kind
// within 5% (measured: at most 3.4%, CHANNEL_UNBRIDGE) and over the whole call within 2% (measured: 1.4%).
const KIND_MARGIN = 0.05;
const TOTAL_MARGIN = 0.02;

describe('the simulator plays a whole real call', () => {
  it('a_success: frames per kind equal and bytes per kind within 5% (whole call 2%) of the recording, frame by frame within 5%', async () => {
    const sink = await cdrSink();
    const out = await replayClient('a_success', async (port) => {
      const sim = new FreeSwitchSim({ port, timeScale: 0, startUs: 1795387130000000, jsonCdrUrl: sink.url, jsonCdrAllLegs: true });
      await sim.call({ did: '15550001111', callerId: '15551230000', callerIdName: 'Probe Caller', digits: ['15557654321#'] });
    });
    const rec = recordedRx('a_success');
    const sim = splitFrames(out.rx);
    const want = byKind(rec);
    const got = byKind(sim);
    if (process.env.SHOW_KINDS) for (const [k, w] of want) console.log(k, w, got.get(k));
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [k, w] of want) {
      const g = got.get(k)!;
      expect(g.frames, k).toBe(w.frames);
      expect(Math.abs(g.bytes - w.bytes) / w.bytes, `${k}: ${g.bytes} vs ${w.bytes} bytes`).toBeLessThanOrEqual(KIND_MARGIN);
    }
    const total = (m: Map<string, { bytes: number }>) => [...m.values()].reduce((s, e) => s + e.bytes, 0);
    expect(Math.abs(total(got) - total(want)) / total(want)).toBeLessThanOrEqual(TOTAL_MARGIN);
    // frame by frame (CHANNEL_PARK may come at another place: FreeSWITCH sends it after the first sendmsg's reply)
    const noPark = (fs: Frame[]) => fs.filter((f) => view(f).name !== 'CHANNEL_PARK');
    const r = noPark(rec);
    const s = noPark(sim);
    expect(s.length).toBe(r.length);
    for (let i = 0; i < r.length; i++) {
      expect(Math.abs(frameBytes(s[i]!) - frameBytes(r[i]!)) / frameBytes(r[i]!), `frame ${i} ${view(r[i]!).name}`).toBeLessThanOrEqual(0.05);
    }
    // DTMF digit by digit with the recorded durations and spacing (virtual time: Event-Date-Timestamp, µs)
    const dtmf = (fs: Frame[]) =>
      fs.map(view).filter((v) => v.name === 'DTMF').map((v) => ({
        digit: decodeURIComponent(v.headers.find(([k]) => k === 'DTMF-Digit')![1]),
        duration: Number(v.headers.find(([k]) => k === 'DTMF-Duration')![1]),
        at: Number(v.headers.find(([k]) => k === 'Event-Date-Timestamp')![1]) / 1000,
      }));
    const rd = dtmf(rec);
    const sd = dtmf(sim);
    expect(sd.map((d) => d.digit)).toEqual(rd.map((d) => d.digit));
    expect(sd.map((d) => d.duration)).toEqual(rd.map((d) => d.duration));
    for (let i = 1; i < rd.length; i++) expect(Math.abs(sd[i]!.at - sd[i - 1]!.at - (rd[i]!.at - rd[i - 1]!.at)), `DTMF gap ${i}`).toBeLessThanOrEqual(60);
    // Both legs FreeSWITCH holds post their CDR: the carrier leg's (9,091 B recorded) and the IVR leg's (9,997 B).
    await sink.close();
    expect(sink.posts).toHaveLength(2);
    const [bLeg, ivr] = sink.posts;
    expect(Math.abs(bLeg!.bytes - 9091) / 9091).toBeLessThanOrEqual(0.1);
    expect(Math.abs(ivr!.bytes - 9997) / 9997).toBeLessThanOrEqual(0.1);
    expect(ivr!.uuid).not.toBe(bLeg!.uuid);
  });

  it('prompts take their real length: the manifest is read, unknown files fall back', () => {
    const lengths = loadSoundLengths();
    expect(lengths.get('ccard/enter_pin.wav')).toBe(3176);
    const d = realSoundDurationMs(lengths);
    expect(d('ccard/enter_destination.wav')).toBe(5999);
    expect(d('/usr/share/ccard/sounds/en/ccard/8000/another_call.wav')).toBe(2212);
    expect(d('silence_stream://250')).toBe(250);
    expect(d('nope/missing.wav')).toBe(200);
  });
});
