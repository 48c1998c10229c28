import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carrier } from '../../src/sim/index.ts';
import { addOperator } from '../../src/store/admin/operators.ts';
import { startHarness, waitFor, type Harness } from './harness.ts';

let h: Harness;
let base: string;
let cookie: string;

beforeAll(async () => {
  // 1/100 of real time: the prompts take milliseconds, a 5-minute call 3 seconds.
  h = await startHarness({ sim: { timeScale: 0.01 } });
  base = `http://127.0.0.1:${h.service.http.port}`;
  await addOperator({ pool: h.service.pool, pinKeys: h.service.pinKeys }, { login: 'watch', role: 'viewer', password: 'watch-password-1' });
  const r = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login: 'watch', password: 'watch-password-1' }),
  });
  expect(r.status).toBe(200);
  cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
});
afterAll(async () => {
  await h?.close();
});

interface Active {
  items: Array<{ callId: string; serial: string; destination: string; capSeconds: number; elapsedSeconds: number; held: { value: string; micros: string } }>;
}
const active = async (): Promise<Active> => (await fetch(`${base}/v1/calls/active`, { headers: { cookie } })).json() as Promise<Active>;

describe('the console sees a call placed through the simulator', () => {
  it('lists it while it is bridged, with its cap and held amount, and not after', async () => {
    const card = h.data.cards.rich;
    const call = h.sim.call({
      did: h.data.did,
      callerId: '15551230000',
      digits: [`${card.pin}#`, '15557654321#', ''],
      carrier: () => carrier.answer(100, 300_000),
    });
    const seen = await waitFor('the call in /v1/calls/active', async () => {
      const a = await active();
      return a.items.length ? a : undefined;
    });
    expect(seen.items).toHaveLength(1);
    const c = seen.items[0]!;
    expect(c).toMatchObject({ serial: card.serial, destination: expect.stringContaining('15557654321') });
    expect(c.capSeconds).toBeGreaterThan(0);
    expect(BigInt(c.held.micros)).toBeGreaterThan(0n);
    const holds = await (await fetch(`${base}/v1/cards/${card.serial}/overview`, { headers: { cookie } })).json() as { holds: Array<{ callId: string; held: { micros: string } }> };
    expect(holds.holds).toEqual([expect.objectContaining({ callId: c.callId, held: c.held })]);
    await call;
    await h.waitOutcomes(1, 20_000);
    await waitFor('the list to empty', async () => ((await active()).items.length === 0 ? true : undefined));
    const overview = await (await fetch(`${base}/v1/cards/${card.serial}/overview`, { headers: { cookie } })).json() as { holds: unknown[]; calls: Array<{ callId: string }> };
    expect(overview.holds).toEqual([]);
    expect(overview.calls.map((x) => x.callId)).toContain(c.callId);
  });
});
