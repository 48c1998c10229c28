import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { cli, type CliRun } from './helpers.ts';

let db: TestDb;
let run: (...args: string[]) => Promise<CliRun>;
let dir: string;

const ok = (r: CliRun) => {
  expect(r.code, r.err).toBe(0);
  return r;
};
const failsWith = (r: CliRun, code: number, re: RegExp) => {
  expect(r.code, r.err).toBe(code);
  expect(r.err).toMatch(re);
  expect(r.err.trim().split('\n')).toHaveLength(1);
};

beforeAll(async () => {
  db = await createTestDb();
  run = cli(db);
  dir = await mkdtemp(path.join(tmpdir(), 'ccard-routing-'));
  await writeFile(path.join(dir, 'sell.csv'), 'prefix,rate\n1,0.05\n44,0.04\n');
  await writeFile(path.join(dir, 'buy.csv'), 'prefix,rate\n1,0.01\n');
  ok(await run('rates', 'import', 'sell', path.join(dir, 'sell.csv')));
  ok(await run('series', 'create', '--name', 'S', '--number', '42', '--count', '2', '--balance', '5', '--rate-table', 'sell'));
});
afterAll(async () => {
  await db?.drop();
});

describe('ccard carrier', () => {
  it('adds, lists, shows, edits and removes carriers; the buy rates import into their table', async () => {
    const added = ok(await run('carrier', 'add', 'acme', '--gateway', 'acme-gw', '--max-calls', '30', '--prefix-strip', '1', '--prefix-add', '00', '--json')).json();
    expect(added).toMatchObject({ name: 'acme', gateway: 'acme-gw', buyRates: 'buy-acme', maxCalls: 30, prefixStrip: 1, prefixAdd: '00', enabled: true });
    ok(await run('rates', 'import', 'buy-acme', path.join(dir, 'buy.csv')));
    expect(ok(await run('carrier', 'show', 'acme', '--json')).json().buyRateCount).toBe(1);
    ok(await run('carrier', 'add', 'beta', '--gateway', 'beta-gw'));
    expect(ok(await run('carrier', 'list', '--json')).json().map((c: { name: string }) => c.name)).toEqual(['acme', 'beta']);
    const edited = ok(await run('carrier', 'edit', 'beta', '--max-calls', '5', '--enabled', 'no', '--json')).json();
    expect(edited).toMatchObject({ maxCalls: 5, enabled: false });
    expect(ok(await run('carrier', 'edit', 'beta', '--max-calls', 'none', '--json')).json().maxCalls).toBeNull();
    failsWith(await run('carrier', 'add', 'acme', '--gateway', 'x'), 1, /already exists/);
    failsWith(await run('carrier', 'add', 'bad name', '--gateway', 'x'), 1, /name/);
    failsWith(await run('carrier', 'add', 'gamma', '--gateway', 'x;y'), 1, /gateway/);
    failsWith(await run('carrier', 'show', 'nope'), 1, /unknown carrier "nope"/);
    ok(await run('carrier', 'remove', 'beta'));
    failsWith(await run('carrier', 'show', 'beta'), 1, /unknown carrier/);
  });
});

describe('ccard route', () => {
  it('plans with entries, assigned to a series and overridden per card; removal refused while in use', async () => {
    ok(await run('carrier', 'add', 'c2', '--gateway', 'c2-gw'));
    ok(await run('route', 'plan', 'add', 'retail'));
    ok(await run('route', 'plan', 'entry', 'retail', 'default', '--least-cost'));
    ok(await run('route', 'plan', 'entry', 'retail', '44', '--carriers', 'acme*3|c2'));
    ok(await run('route', 'plan', 'entry', 'retail', '1900', '--block'));
    const shown = ok(await run('route', 'plan', 'show', 'retail', '--json')).json();
    expect(shown.entries).toEqual([
      { prefix: 'default', mode: 'lcr', carriers: [] },
      { prefix: '1900', mode: 'block', carriers: [] },
      {
        prefix: '44',
        mode: 'ordered',
        carriers: [
          { carrier: 'acme', position: 0, weight: 3 },
          { carrier: 'c2', position: 0, weight: 1 },
        ],
      },
    ]);
    expect(ok(await run('route', 'plan', 'show', 'retail')).out).toMatch(/acme\*3\|c2/);
    failsWith(await run('route', 'plan', 'entry', 'retail', '33', '--carriers', 'nobody'), 1, /unknown carrier "nobody"/);
    failsWith(await run('route', 'plan', 'entry', 'retail', '33'), 1, /needs at least one carrier/);
    failsWith(await run('route', 'plan', 'entry', 'retail', '3x', '--block'), 1, /prefix/);
    failsWith(await run('route', 'plan', 'add', 'other', '--loss-prompt', 'nonsense'), 1, /lossPrompt: must be one of the prompts/);

    ok(await run('route', 'assign', 'retail', '--series', '42'));
    ok(await run('route', 'plan', 'add', 'vip'));
    ok(await run('route', 'assign', 'vip', '--card', '42-000000001'));
    const plans = await db.pool.query<{ serial: string; plan: string | null }>(
      `SELECT c.serial, p.name AS plan FROM cards c JOIN series s ON s.id = c.series_id
         LEFT JOIN routing_plans p ON p.id = COALESCE(c.routing_plan_id, s.routing_plan_id) ORDER BY c.serial`,
    );
    expect(plans.rows).toEqual([
      { serial: '42-000000001', plan: 'vip' },
      { serial: '42-000000002', plan: 'retail' },
    ]);
    failsWith(await run('route', 'plan', 'remove', 'retail'), 1, /used by 1 series/);
    failsWith(await run('carrier', 'remove', 'acme'), 1, /used by routing plan retail/);
    failsWith(await run('route', 'assign', 'retail'), 1, /exactly one of series or card/);
    failsWith(await run('route', 'assign', 'nope', '--series', '42'), 1, /unknown routing plan/);
    ok(await run('route', 'assign', 'series', '--card', '42-000000001'));
    ok(await run('route', 'plan', 'remove', 'vip'));
    ok(await run('route', 'plan', 'entry-remove', 'retail', '1900'));
    failsWith(await run('route', 'plan', 'entry-remove', 'retail', '1900'), 1, /no entry for prefix 1900/);
    expect(ok(await run('route', 'plan', 'list', '--json')).json()).toEqual([
      { name: 'retail', lossPrompt: 'destination_unprofitable', entries: 2, series: 1 },
    ]);
  });
});

describe('ccard reseller', () => {
  it('adds, tops up, generates a series for a reseller (drawn), reports, and makes a reseller API key', async () => {
    const added = ok(await run('reseller', 'add', 'shop', '--credit-limit', '5', '--discount', '10', '--json')).json();
    expect(added).toMatchObject({ name: 'shop', balance: { value: '0.00' }, creditLimit: { value: '5.00' }, discountPercent: '10' });
    failsWith(await run('reseller', 'add', 'shop'), 1, /already exists/);
    ok(await run('reseller', 'topup', 'shop', '20', '--ref', 'inv-1'));
    failsWith(await run('reseller', 'topup', 'shop', '20', '--ref', 'inv-1'), 1, /already applied/);
    // 3 cards x 8.00 = 24.00 face, 21.60 at 10% off: 20 + 5 credit covers it
    ok(await run('series', 'create', '--name', 'Shop', '--number', '77', '--count', '3', '--balance', '8', '--rate-table', 'sell', '--reseller', 'shop'));
    const shown = ok(await run('reseller', 'show', 'shop', '--ledger', '--json')).json();
    expect(shown).toMatchObject({ balance: { value: '-1.60' }, series: ['77'] });
    expect(shown.ledger.map((l: { reason: string }) => l.reason)).toEqual(['generation', 'topup']);
    failsWith(
      await run('series', 'create', '--name', 'More', '--number', '78', '--count', '1', '--balance', '5', '--rate-table', 'sell', '--reseller', 'shop'),
      1,
      /wholesale balance does not cover 4\.50/,
    );
    failsWith(await run('series', 'create', '--name', 'X', '--number', '79', '--count', '1', '--rate-table', 'sell', '--reseller', 'nobody'), 1, /unknown reseller "nobody"/);
    const report = ok(await run('reseller', 'report', '--json')).json();
    expect(report).toEqual([
      expect.objectContaining({ reseller: 'shop', cards: 3, cardsSold: 0, faceValue: expect.objectContaining({ value: '24.00' }), wholesale: expect.objectContaining({ value: '21.60' }), owed: expect.objectContaining({ value: '1.60' }) }),
    ]);
    const key = ok(await run('apikey', 'create', 'shop-key', '--reseller', 'shop', '--json')).json();
    expect(key).toMatchObject({ name: 'shop-key', reseller: 'shop' });
    failsWith(await run('apikey', 'create', 'x-key', '--reseller', 'nobody'), 1, /unknown reseller/);
    expect(ok(await run('reseller', 'list')).out).toMatch(/shop/);
  });
});

describe('the CLI as a reseller (CCARD_RESELLER)', () => {
  it("every command: another reseller's card or series answers exactly as a missing one; lists show only its own", async () => {
    const { runCli, buildProgram } = await import('../../src/cli/main.ts');
    const { CliRuntime } = await import('../../src/cli/runtime.ts');
    const { Writable } = await import('node:stream');
    ok(await run('reseller', 'add', 'other'));
    ok(await run('reseller', 'topup', 'other', '100'));
    ok(await run('series', 'create', '--name', 'Other', '--number', '88', '--count', '2', '--balance', '3', '--rate-table', 'sell', '--reseller', 'other', '--status', 'active'));
    const asShop = async (...args: string[]) => {
      let out = '';
      let err = '';
      const sink = (f: (s: string) => void) => new Writable({ write: (c, _e, cb) => (f(c.toString()), cb()) });
      const code = await runCli(['node', 'ccard', ...args], {
        env: { DATABASE_URL: db.url, CCARD_SECRET: 'test-secret-0123456789', CCARD_RESELLER: 'shop' },
        stdout: sink((s) => (out += s)),
        stderr: sink((s) => (err += s)),
        pool: db.pool,
      });
      return { code, out, err };
    };
    // Lists: only shop's series 77.
    expect(JSON.parse((await asShop('series', 'list', '--json')).out).map((s: { number: string }) => s.number)).toEqual(['77']);
    expect(JSON.parse((await asShop('cards', 'list', '--json')).out).items.map((c: { serial: string }) => c.serial.slice(0, 3))).toEqual(['77-', '77-', '77-']);
    expect((await asShop('cards', 'export', '--format', 'csv')).out).not.toMatch(/88-|42-/);

    const leaves: string[][] = [];
    const walk = (cmd: import('commander').Command, path: string[]) => {
      if (cmd.commands.length === 0) leaves.push(path);
      for (const c of cmd.commands) if (c.name() !== 'help') walk(c, [...path, c.name()]);
    };
    walk(buildProgram(new CliRuntime({ env: {} })), []);
    expect(leaves.length).toBeGreaterThan(40);
    const argsFor = (path: string[], serial: string, number: string) => {
      const program = buildProgram(new CliRuntime({ env: {} }));
      let cmd = program;
      for (const p of path) cmd = cmd.commands.find((c) => c.name() === p)!;
      const positional = cmd.registeredArguments.map((a) =>
        a.name() === 'serial' ? serial : a.name() === 'number' ? number : a.name() === 'amount' ? '1' : a.name() === 'status' ? 'disabled' : 'x',
      );
      return [...path, ...positional];
    };
    let probed = 0;
    for (const path of leaves) {
      if (['serve', 'demo', 'migrate'].includes(path[0]!)) continue;
      const theirs = await asShop(...argsFor(path, '88-000000001', '88'));
      const missing = await asShop(...argsFor(path, '77-000000999', '76'));
      const norm = (s: string) => s.replace(/88-000000001|77-000000999/g, 'X').replace(/\b(88|76)\b/g, 'N');
      expect(theirs.code, path.join(' ')).toBe(missing.code);
      expect(norm(theirs.err), path.join(' ')).toBe(norm(missing.err));
      expect(theirs.out, path.join(' ')).not.toMatch(/88-000000002|Other/);
      if (path.join(' ') === 'cards show' || path.join(' ') === 'cards topup') expect(theirs.err).toMatch(/^ccard: error: unknown card 88-000000001\n$/);
      if (path.join(' ') === 'series show') expect(theirs.err).toMatch(/unknown series 88/);
      probed++;
    }
    expect(probed).toBeGreaterThan(35);
    // The filters name objects too.
    for (const args of [['cards', 'list', '--series', '88'], ['cdr', 'list', '--card', '88-000000001'], ['report', 'costs', '--by', 'card', '--series', '88']]) {
      const r = await asShop(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.err).toMatch(/unknown (card 88-000000001|series 88)/);
    }
    // Nothing of other's changed.
    const rows = await db.pool.query<{ status: string; balance_micros: bigint }>(`SELECT status, balance_micros FROM cards WHERE serial LIKE '88-%' ORDER BY serial`);
    expect(rows.rows).toEqual([
      { status: 'active', balance_micros: 3_000_000n },
      { status: 'active', balance_micros: 3_000_000n },
    ]);
    // An operator-only command is unknown to a reseller.
    const did = await asShop('did', 'list');
    expect(did.code).toBe(1);
    expect(did.err).toMatch(/unknown command "did list"/);
  });
});
