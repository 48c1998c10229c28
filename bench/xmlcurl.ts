import { pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import { buildApi } from '../src/api/server.ts';
import { AccessNumberMap } from '../src/store/access-number-map.ts';
import { createPool } from '../src/store/db.ts';
import { migrate } from '../src/store/migrate.ts';
import { derivePinKeys } from '../src/store/pin.ts';
import { dialplanFields, encodeFields, interpretDialplan, postXmlCurl } from '../src/sim/xmlcurl.ts';
import { percentile, scratchDb } from './scratch-db.ts';

/**
 * mod_xml_curl's dialplan binding (issue 11): FreeSWITCH posts once per incoming call (6.2 KB, 163 fields, a new
 * TCP connection each time) and waits in silence for the answer, so ccard answers from memory. Measures, for
 * BENCH_XMLCURL_DIDS access numbers (default 10 000), BENCH_XMLCURL_CALLS lookups (default 5 000; half hits, half
 * misses), one at a time as FreeSWITCH's routing threads send them and then 16 in flight:
 * - the handler's time (request received → answer sent, timed by fastify's hooks): target p99 ≤ 2 ms;
 * - the time FreeSWITCH sees (connect → last answer byte, the simulator in the same process).
 */
export async function benchXmlcurl(): Promise<Record<string, string | number>> {
  const dids = Number(process.env.BENCH_XMLCURL_DIDS ?? 10_000);
  const calls = Number(process.env.BENCH_XMLCURL_CALLS ?? 5_000);
  const scratch = await scratchDb('xmlcurl');
  const pool = createPool(scratch.url, 4);
  try {
    await migrate(pool);
    await pool.query(
      `INSERT INTO access_numbers (did, gateway) SELECT (15550000000 + g)::text, 'carrier' FROM generate_series(1, $1) g`,
      [dids],
    );
    const map = new AccessNumberMap({ pool });
    await map.start();
    const app = buildApi({
      pool,
      pinKeys: derivePinKeys('bench-secret-0123456789'),
      xmlCurl: { accessNumbers: map, contexts: ['public'], deviceContext: 'ccard_devices', sockets: ['127.0.0.1:8040'], soundsPrefix: '/s', allowIps: ['127.0.0.1'] },
    });
    const handler: number[] = [];
    const started = new WeakMap<object, bigint>();
    app.addHook('onRequest', async (req) => void started.set(req, process.hrtime.bigint()));
    app.addHook('onResponse', async (req) => {
      const t = started.get(req);
      if (t !== undefined) handler.push(Number(process.hrtime.bigint() - t) / 1e6);
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/fs/dialplan`;
    const bodies = Array.from({ length: 200 }, (_, i) => {
      const destination = i % 2 ? String(15550000000 + 1 + ((i * 7919) % dids)) : String(15560000000 + i);
      return { destination, body: encodeFields(dialplanFields({ destination, context: 'public' })) };
    });
    let routed = 0;
    const one = async (i: number, seen: number[]) => {
      const b = bodies[i % bodies.length]!;
      const t0 = process.hrtime.bigint();
      const a = await postXmlCurl(url, b.body);
      seen.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (interpretDialplan(a, { destination: b.destination, context: 'public' }).outcome === 'route') routed++;
    };
    for (let i = 0; i < 500; i++) await one(i, []); // warm-up
    handler.length = 0;
    routed = 0;
    const serial: number[] = [];
    for (let i = 0; i < calls; i++) await one(i, serial);
    const serialHandler = handler.splice(0).sort((a, b) => a - b);
    serial.sort((a, b) => a - b);
    const routedSerial = routed;
    const parallel: number[] = [];
    const t0 = Date.now();
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < calls) await one(next++, parallel);
    }));
    const secs = (Date.now() - t0) / 1000;
    const parallelHandler = handler.splice(0).sort((a, b) => a - b);
    parallel.sort((a, b) => a - b);
    await app.close();
    await map.stop();
    const f = (n: number) => n.toFixed(3);
    return {
      'access numbers in memory': map.size,
      'lookups (each way)': calls,
      'routed (one at a time)': routedSerial,
      'handler p50 / p99 ms, one at a time': `${f(percentile(serialHandler, 50))} / ${f(percentile(serialHandler, 99))}`,
      'as FreeSWITCH sees it p50 / p99 ms': `${f(percentile(serial, 50))} / ${f(percentile(serial, 99))}`,
      'handler p50 / p99 ms, 16 in flight': `${f(percentile(parallelHandler, 50))} / ${f(percentile(parallelHandler, 99))}`,
      'as FreeSWITCH sees it, 16 in flight': `${f(percentile(parallel, 50))} / ${f(percentile(parallel, 99))}`,
      'lookups/s, 16 in flight': Math.round(calls / secs),
    };
  } finally {
    await pool.end();
    await scratch.drop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) console.log(await benchXmlcurl());
