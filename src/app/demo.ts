import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../config/env.ts';
import type { FlowOutcome } from '../flow/machine.ts';
import { formatMoney } from '../money/money.ts';
import { FreeSwitchSim, carrier, type CallResult, type CallScript } from '../sim/index.ts';
import { seedDemo, type DemoData } from './seed.ts';
import { startService } from './service.ts';
import { addOperator } from '../store/admin/operators.ts';
import { ensureWebBuilt } from './web-build.ts';

interface DemoCall {
  title: string;
  script: (d: DemoData) => CallScript;
}

const CALLER = '15551230000';

/** The calls the demo places: each shows one path of the flow. */
const DEMO_CALLS: DemoCall[] = [
  {
    title: 'Successful call: PIN, balance, destination, 65 s talk, then goodbye',
    script: (d) => ({
      did: d.did,
      callerId: CALLER,
      digits: [`${d.cards.rich.pin}#`, '15557654321#', ''],
      carrier: () => carrier.answer(2000, 65_000),
    }),
  },
  {
    title: 'Pinless call: the caller ID is whitelisted to a card, no PIN asked',
    script: (d) => ({
      did: d.did,
      callerId: d.callerIdOfPinless,
      digits: ['442071234567#', ''],
      carrier: () => carrier.answer(1000, 20_000),
    }),
  },
  {
    title: 'Wrong PIN three times',
    script: (d) => ({ did: d.did, callerId: CALLER, digits: ['1111111111#', '9999999999#', '12345#'] }),
  },
  {
    title: 'Insufficient balance for the destination',
    script: (d) => ({ did: d.did, callerId: CALLER, digits: [`${d.cards.poor.pin}#`, '15559991234#', '', ''] }),
  },
  {
    title: 'Carrier busy: no charge, offered another call',
    script: (d) => ({ did: d.did, callerId: CALLER, digits: [`${d.cards.rich.pin}#`, '15554861234#', ''] }),
  },
  {
    title: 'Long call capped by FreeSWITCH at the minutes the balance buys',
    script: (d) => ({
      did: d.did,
      callerId: CALLER,
      digits: [`${d.cards.rich.pin}#`, '15559991234#', ''],
      carrier: () => carrier.answer(500, 24 * 3600_000),
    }),
  },
  {
    title: 'Unknown access number',
    script: () => ({ did: '15550009999', callerId: CALLER }),
  },
];

function describeApps(result: CallResult): string[] {
  const lines: string[] = [];
  for (const app of result.apps) {
    if (app.name === 'playback') lines.push(`    play   ${app.arg.replace(/^ccard\//, '').replace(/\.wav$/, '')}${app.broadcast ? '   (warning broadcast during the bridge)' : ''}`);
    else if (app.name === 'say') lines.push(`    say    ${app.arg}`);
    else if (app.name === 'play_and_get_digits') lines.push(`    read   ${app.arg.split(' ')[7]}`);
    else if (app.name === 'bridge') lines.push(`    bridge ${app.arg}`);
    else if (app.name !== 'set') lines.push(`    ${app.name.padEnd(6)} ${app.arg}`);
  }
  return lines;
}

function describeOutcome(o: FlowOutcome | undefined, result: CallResult): string[] {
  const lines: string[] = [];
  for (const leg of result.bLegs) {
    lines.push(`    carrier leg ${leg.uuid}: ${leg.answered ? `answered, billsec=${leg.billsec}` : 'not answered'} (${leg.hangupCause})`);
  }
  if (o) {
    for (const c of o.calls) {
      const money = c.settle ? `billed ${c.settle.billedSeconds} s = ${formatMoney(c.settle.cost)}, balance now ${formatMoney(c.settle.balance)}` : c.settleError ?? '';
      lines.push(`    attempt to ${c.number}: ${c.outcome}, cap ${c.maxSeconds} s; ${money}`);
    }
    lines.push(`    ended: ${o.ended}${o.callerHungUp ? ' (caller hung up)' : ''}`);
  }
  return lines;
}

/**
 * `npm run demo`: a throw-away embedded database, the real server, and simulated FreeSWITCH calls through it.
 * With `serve` (`npm run demo -- --serve`) it then creates a demo operator, prints the console's URL and login,
 * and keeps serving (HTTP on CCARD_HTTP_PORT) until Ctrl-C.
 */
export async function runDemo(opts: { serve?: boolean } = {}): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'ccard-demo-'));
  const base = loadConfig({ ...process.env, DATABASE_URL: '', REDIS_URL: '', REDIS_SENTINELS: '', REDIS_SENTINEL_NAME: '', REDIS_CLUSTER_NODES: '' });
  // The simulator plays the calls in virtual time, faster than any real timer could extend a slice: one hold per call.
  const config = { ...base, CCARD_DATA_DIR: dataDir, CCARD_SLICE_SECONDS: 0, LOG_LEVEL: process.env.LOG_LEVEL ? base.LOG_LEVEL : ('error' as const) };
  const logger = pino({ level: config.LOG_LEVEL });
  const outcomes: FlowOutcome[] = [];
  const out = (s = '') => process.stdout.write(`${s}\n`);

  out('ccard demo: embedded PostgreSQL (PGlite) and in-process live balances in a temporary folder');
  const built = opts.serve ? ensureWebBuilt((line) => out(line)) : false;
  const service = await startService({
    config,
    logger,
    eslPort: 0,
    httpPort: opts.serve ? config.CCARD_HTTP_PORT : 0,
    scheduler: false,
    onCallEnded: (o) => outcomes.push(o),
  });
  try {
    const data = await seedDemo(service.pool, service.pinKeys);
    await service.rates.reload();
    out(`event socket on ${service.esl.host}:${service.esl.port}, HTTP API on ${service.http.host}:${service.http.port}`);
    out(`seeded access number ${data.did}, rate table "demo", cards:`);
    for (const c of Object.values(data.cards)) {
      out(`  ${c.serial}  PIN ${c.pin}  balance ${formatMoney(await service.services.balance(c.id))}`);
    }
    out();

    const sim = new FreeSwitchSim({
      port: service.esl.port,
      timeScale: 0,
      jsonCdrUrl: `http://127.0.0.1:${service.http.port}/cdr`,
    });
    for (const [i, call] of DEMO_CALLS.entries()) {
      out(`call ${i + 1}: ${call.title}`);
      const before = outcomes.length;
      const result = await sim.call(call.script(data));
      // The flow's outcome is reported just after the socket closes.
      for (let t = 0; t < 100 && outcomes.length === before; t++) await new Promise((r) => setTimeout(r, 20));
      for (const l of describeApps(result)) out(l);
      for (const l of describeOutcome(outcomes[before], result)) out(l);
      out();
    }
    await sim.drain();

    out('balances after the calls:');
    for (const c of Object.values(data.cards)) {
      const ledger = await service.pool.query<{ n: number; sum: bigint | null }>(
        'SELECT count(*)::int AS n, sum(amount_micros)::bigint AS sum FROM ledger WHERE card_id = $1',
        [c.id],
      );
      const { n, sum } = ledger.rows[0]!;
      out(`  ${c.serial}  ${formatMoney(await service.services.balance(c.id))}  (ledger: ${n} rows, sum ${formatMoney(sum ?? 0n)})`);
    }
    const cdrs = await service.pool.query<{ n: bigint }>('SELECT count(*) AS n FROM cdrs');
    out(`  ${cdrs.rows[0]!.n} CDRs recorded (each carrier leg once, although FreeSWITCH reported it twice: socket and mod_json_cdr)`);
    if (opts.serve) await serveUntilInterrupted(service, data, built, out);
  } finally {
    await service.stop(5_000);
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The end of `demo --serve`: a demo operator, self-care on the demo series, the URLs, then wait for Ctrl-C. */
async function serveUntilInterrupted(
  service: Awaited<ReturnType<typeof startService>>,
  data: DemoData,
  built: boolean,
  out: (s?: string) => void,
): Promise<void> {
  const ctx = { pool: service.pool, pinKeys: service.pinKeys };
  const { password } = await addOperator(ctx, { login: 'demo', role: 'admin' });
  await service.pool.query(`UPDATE series SET selfcare = true`);
  const url = `http://${service.http.host === '0.0.0.0' ? '127.0.0.1' : service.http.host}:${service.http.port}`;
  out();
  out(`console:   ${url}/   login demo, password ${password}${built ? '' : '   (not built: run npm run build:web)'}`);
  out(`self-care: ${url}/my  serial ${data.cards.rich.serial}, PIN ${data.cards.rich.pin}`);
  out(`API docs:  ${url}/docs`);
  out('serving until Ctrl-C (everything is deleted then)');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  out('stopping');
}
