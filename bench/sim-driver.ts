/**
 * Child process of bench/spine.ts: plays FreeSWITCH with the simulator so the server under test has its own
 * process (and core). Receives one job over IPC, replies with its result.
 */
import { FreeSwitchSim, carrier, realPacing, type CallResult, type CallScript } from '../src/sim/index.ts';

interface Job {
  kind: 'throughput' | 'rate' | 'hold' | 'real';
  port: number;
  did: string;
  pins: string[];
  calls?: number;
  concurrency?: number;
  perSecond?: number;
  seconds?: number;
  holdMs?: number;
  /** real: where the simulated mod_json_cdr posts every leg's CDR. */
  cdrUrl?: string;
}

const script = (job: Job, i: number, talkMs: number): CallScript => ({
  did: job.did,
  callerId: `1555${String(2_000_000 + i).padStart(7, '0')}`,
  digits: [`${job.pins[i % job.pins.length]}#`, '15557654321#', ''],
  carrier: () => carrier.answer(100, talkMs),
});

async function run(job: Job): Promise<unknown> {
  if (job.kind === 'throughput') {
    const sim = new FreeSwitchSim({ port: job.port, timeScale: 0, idleTimeoutMs: 60_000, record: false });
    const start = process.hrtime.bigint();
    const results = await sim.callMany(job.calls!, (i) => script(job, i, 3000), job.concurrency!);
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    const bridged = results.filter((r) => r.bLegs.some((b) => b.answered)).length;
    return { calls: results.length, bridged, seconds: secs };
  }
  if (job.kind === 'rate') {
    // Open loop: a new call every 1/perSecond s whatever the server does.
    const sim = new FreeSwitchSim({ port: job.port, timeScale: 0, idleTimeoutMs: 60_000, record: false });
    const total = job.perSecond! * job.seconds!;
    const pending: Promise<CallResult>[] = [];
    const start = Date.now();
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / job.perSecond!;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(sim.call(script(job, i, 3000)));
    }
    const results = await Promise.all(pending);
    return {
      calls: results.length,
      bridged: results.filter((r) => r.bLegs.some((b) => b.answered)).length,
      seconds: (Date.now() - start) / 1000,
      // The decision as FreeSWITCH sees it (destination digits sent -> bridge received), for any server.
      decisionsMs: results.flatMap((r) => r.decisionsMs),
    };
  }
  if (job.kind === 'real') {
    // Open loop at real pacing: a call every 1/perSecond s, each as a real FreeSWITCH plays it (realPacing): PIN and
    // destination digit by digit, prompts at their real lengths, 3 s of talk, the another-call prompt left
    // unanswered, then both legs' json_cdr POSTs.
    const sim = new FreeSwitchSim(realPacing({ port: job.port, idleTimeoutMs: 120_000, record: false, jsonCdrUrl: job.cdrUrl }));
    const total = Math.round(job.perSecond! * job.seconds!);
    const pending: Promise<CallResult>[] = [];
    const start = Date.now();
    for (let i = 0; i < total; i++) {
      const wait = start + (i * 1000) / job.perSecond! - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(sim.call(script(job, i, 3000)));
    }
    const results = await Promise.all(pending);
    if (process.env.BENCH_SHOW_CALL) {
      const r = results[0]!;
      const t0 = r.apps[0]?.startUs ?? 0;
      for (const a of r.apps) process.stderr.write(`${((a.startUs - t0) / 1e6).toFixed(1)}-${((a.endUs - t0) / 1e6).toFixed(1)} s ${a.name} ${a.arg.slice(0, 100)}\n`);
    }
    const lengths = results.map((r) => (r.endUs - (r.apps[0]?.startUs ?? r.endUs)) / 1000);
    return {
      calls: results.length,
      bridged: results.filter((r) => r.bLegs.some((b) => b.answered)).length,
      cdrPosted: results.filter((r) => r.bLegs.some((b) => b.cdrPostStatus === 200)).length,
      seconds: (Date.now() - start) / 1000,
      meanCallMs: lengths.reduce((a, b) => a + b, 0) / Math.max(1, lengths.length),
      decisionsMs: results.flatMap((r) => r.decisionsMs),
    };
  }
  // hold: n calls that stay bridged for holdMs of real time (timeScale 1), to weigh a live call.
  const sim = new FreeSwitchSim({ port: job.port, timeScale: 1, idleTimeoutMs: 120_000, soundDurationMs: () => 0, record: false });
  const results = await sim.callMany(
    job.calls!,
    (i) => ({ ...script(job, i, job.holdMs!), digits: [{ keys: `${job.pins[i % job.pins.length]}#`, afterMs: 1, gapMs: 1 }, { keys: '15557654321#', afterMs: 1, gapMs: 1 }, ''] }),
    job.calls!,
  );
  return { calls: results.length, bridged: results.filter((r) => r.bLegs.some((b) => b.answered)).length };
}

process.on('message', (job: Job | 'exit') => {
  if (job === 'exit') process.exit(0);
  run(job).then(
    (result) => process.send!({ ok: true, result }),
    (err: Error) => process.send!({ ok: false, error: err.stack ?? String(err) }),
  );
});
