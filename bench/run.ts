/**
 * `npm run bench [-- NAME...]`: runs the benchmarks (all by default) one after the other, each in its own
 * process so one's heap does not weigh on the next, and prints every figure. Needs PostgreSQL and Redis
 * (DATABASE_URL / REDIS_URL, else localhost); every benchmark creates and drops its own database and keys.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BENCHES: Record<string, { file: string; fn: string; what: string }> = {
  spine: { file: './spine.ts', fn: 'benchSpine', what: 'calls through the real server (issue 2)' },
  realcall: { file: './realcall.ts', fn: 'benchRealcall', what: 'a real-paced call: ccard CPU, heap, GC, event loop per call, ccard pinned to core 0 (issue 14)' },
  rating: { file: './rating.ts', fn: 'benchRating', what: 'rate lookups and costing (issue 3)' },
  money: { file: './money.ts', fn: 'benchMoney', what: 'reservations and idempotent debits (issue 3)' },
  cards: { file: './cards.ts', fn: 'benchCards', what: 'card generation and export (issue 5)' },
  xmlcurl: { file: './xmlcurl.ts', fn: 'benchXmlcurl', what: 'mod_xml_curl dialplan lookups answered from memory (issue 11)' },
  startup: { file: './startup.ts', fn: 'benchStartup', what: 'serve start-up and idle memory: tsx vs compiled dist/ (issue 14)' },
  grid: { file: './grid.ts', fn: 'benchGrid', what: "the console's card grid page over 1,000,000 cards (issue 10; BENCH_GRID_CARDS to change)" },
  bulk: { file: './bulk.ts', fn: 'benchBulk', what: 'rate export, bad rate CSV, per-table rate reload (issue 13)' },
};

const child = process.argv[2] === '--child';
if (child) {
  const { file, fn } = BENCHES[process.argv[3]!]!;
  const mod = (await import(new URL(file, import.meta.url).href)) as Record<string, () => Promise<unknown>>;
  const result = await mod[fn]!();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((n) => !BENCHES[n]);
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; choose from ${Object.keys(BENCHES).join(', ')}`);
  process.exit(2);
}
let failed = false;
for (const name of wanted.length ? wanted : Object.keys(BENCHES)) {
  console.log(`\n== ${name}: ${BENCHES[name]!.what}`);
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', name], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * 1024 * 1024,
  });
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0) {
    failed = true;
    console.log(`   failed (exit ${r.status})`);
    continue;
  }
  for (const [k, v] of Object.entries(JSON.parse(last) as Record<string, unknown>)) console.log(`   ${k.padEnd(40)} ${String(v)}`);
  console.log(`   ${'(wall time, s)'.padEnd(40)} ${((Date.now() - started) / 1000).toFixed(1)}`);
  console.log(`   ${'(load average at the end)'.padEnd(40)} ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}
process.exit(failed ? 1 : 0);
