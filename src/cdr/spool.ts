/**
 * CDR spool intake: bills the `*.cdr.json` files FreeSWITCH's mod_json_cdr leaves in its err-log-dir (POSTs that
 * failed) and/or log-dir (every CDR, with log-http-and-disk), through the same idempotent path as POST /cdr.
 *
 * How mod_json_cdr writes them (mod_json_cdr.c, backup_cdr/process_cdr): open(<dir>/<uuid>.cdr.json,
 * O_WRONLY|O_CREAT|O_TRUNC), write the JSON, then write "\n", close. Not atomic: a reader can see an empty or
 * half-written file. So a file is first claimed by an atomic rename into `processing/` (only one of several ccard
 * processes sharing the directory wins it; a writer still holding the file open keeps writing into the same inode),
 * and it is billed only once it is whole: ending with the "\n" mod_json_cdr writes last and parsing as a JSON
 * object. A file still incomplete after `incompleteGraceMs` without being written to is truncated (FreeSWITCH died
 * mid-write, a full disk) and is set aside in `rejected/` with a `.reason` file, as is anything that is not a
 * mod_json_cdr document (or is larger than maxBytes). Billed, duplicate, released and other legs' CDRs go to
 * `done/`. While PostgreSQL is unavailable the claimed files wait in `processing/` and are retried with backoff;
 * a claim older than staleClaimMs (its process died) is taken over by whoever scans next.
 *
 * New files are noticed by fs.watch and by a periodic scan (watching is unreliable on network filesystems).
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Log } from '../billing/billing-deps.ts';
import type { IngestResult } from './json-cdr.ts';
import { writeReason } from './journal.ts';

const CDR_FILE_RE = /^[A-Za-z0-9_.-]+\.cdr\.json$/;

export interface SpoolOptions {
  dirs: string[];
  /** Bills one document (ingestJsonCdr with source 'spool'). */
  ingest: (text: string) => Promise<IngestResult>;
  isUnavailable: (err: unknown) => boolean;
  logger: Log;
  /** Periodic scan, ms (default 5000). */
  scanMs?: number;
  /** An incomplete file not written to for this long is truncated (default 60 000). */
  incompleteGraceMs?: number;
  /** A claim in processing/ older than this belongs to a process that died (default 120 000). */
  staleClaimMs?: number;
  /** Larger files are rejected (default 1 MiB; a real CDR is ~10-30 KB). */
  maxBytes?: number;
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Watch the directories (default true). */
  watch?: boolean;
}

export interface SpoolStats {
  billed: number;
  duplicate: number;
  released: number;
  /** CDRs of legs ccard did not reserve (the caller's, the IVR leg, unknown calls). */
  ignored: number;
  rejected: number;
  /** True while waiting for the database to come back. */
  backingOff: boolean;
}

type Outcome = 'done' | 'rejected' | 'wait' | 'unavailable';

export class SpoolIntake {
  readonly stats: SpoolStats = { billed: 0, duplicate: 0, released: 0, ignored: 0, rejected: 0, backingOff: false };
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private again = false;
  private delayMs: number;
  /** Files this process claimed and has not finished (path in processing/). */
  private readonly mine = new Set<string>();
  private readonly o: Required<Omit<SpoolOptions, 'ingest' | 'isUnavailable' | 'logger' | 'dirs'>>;

  constructor(private readonly opts: SpoolOptions) {
    this.o = {
      scanMs: opts.scanMs ?? 5_000,
      incompleteGraceMs: opts.incompleteGraceMs ?? 60_000,
      staleClaimMs: opts.staleClaimMs ?? 120_000,
      maxBytes: opts.maxBytes ?? 1024 * 1024,
      minDelayMs: opts.minDelayMs ?? 250,
      maxDelayMs: opts.maxDelayMs ?? 10_000,
      watch: opts.watch ?? true,
    };
    this.delayMs = this.o.minDelayMs;
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    for (const dir of this.opts.dirs) {
      // A spool that cannot be read (a network share not mounted yet) never stops ccard from taking calls: it is
      // logged, and retried at every scan.
      const ok = await ensureSubdirs(dir).then(
        () => true,
        (err) => (this.opts.logger.error({ err, dir }, 'spool directory unusable; retried at every scan'), false),
      );
      if (!ok || !this.o.watch) continue;
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (typeof name === 'string' && CDR_FILE_RE.test(name)) this.kick(100);
        });
        w.on('error', (err) => this.opts.logger.warn({ err, dir }, 'spool watch failed; the periodic scan goes on'));
        this.watchers.push(w);
      } catch (err) {
        this.opts.logger.warn({ err, dir }, 'cannot watch the spool directory; relying on the periodic scan');
      }
    }
    this.kick(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const w of this.watchers.splice(0)) w.close();
    await this.running;
  }

  /** Scans now (tests, `ccard` commands); resolves when the pass is over. */
  async scanOnce(): Promise<void> {
    while (this.running) await this.running;
    this.forced = true;
    this.running = this.pass().finally(() => {
      this.forced = false;
      this.running = undefined;
    });
    await this.running;
  }

  /** A pass asked for by scanOnce runs even when the intake is not started. */
  private forced = false;
  private halted(): boolean {
    return this.stopped && !this.forced;
  }

  private kick(ms: number): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true; // a file arrived during a pass: look again right after it
      return;
    }
    if (this.stats.backingOff) return; // the backoff timer is already set
    this.schedule(ms);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      if (this.running) return this.schedule(50); // a scanOnce is in progress
      this.again = false;
      this.running = this.pass()
        .catch((err) => this.opts.logger.error({ err }, 'spool scan failed'))
        .finally(() => {
          this.running = undefined;
          if (this.stopped) return;
          if (this.stats.backingOff) this.schedule(this.delayMs);
          else this.schedule(this.again ? 50 : this.waiting ? Math.min(1000, this.o.scanMs) : this.o.scanMs);
        });
    }, ms);
    this.timer.unref();
  }

  /** Set when a pass left a file waiting to be completed: look again soon. */
  private waiting = false;

  private async pass(): Promise<void> {
    this.waiting = false;
    for (const dir of this.opts.dirs) {
      if (this.halted()) return;
      let outcome: Outcome | undefined;
      try {
        outcome = await this.scanDir(dir);
      } catch (err) {
        this.opts.logger.error({ err, dir }, 'spool scan failed; retried at the next scan');
        continue;
      }
      if (outcome === 'unavailable') {
        this.stats.backingOff = true;
        this.delayMs = Math.min(this.o.maxDelayMs, this.delayMs * 2);
        return;
      }
    }
    this.stats.backingOff = false;
    this.delayMs = this.o.minDelayMs;
    this.passedOnce = true;
  }

  /** False until a pass went through every directory. */
  private passedOnce = false;
  private readonly createdAt = Date.now();

  private async scanDir(dir: string): Promise<Outcome | undefined> {
    await ensureSubdirs(dir); // cheap, and a rename into a missing processing/ would look like a lost race
    const processing = path.join(dir, 'processing');
    // Ours first (claimed earlier, waiting for completion or the database), then stale claims, then new files.
    const work: Array<{ file: string; mtimeMs: number }> = [];
    for (const name of await listCdrs(processing)) {
      const file = path.join(processing, name);
      const st = await stat(file).catch(() => undefined);
      if (!st) continue;
      // Until a first pass is through, claims made before this intake existed are taken at once: one left by this
      // host's previous run (killed mid-file) is billed now, not after staleClaimMs; a live sibling's claim taken too
      // only costs a duplicate (a no-op).
      const orphan = !this.passedOnce && st.ctimeMs < this.createdAt;
      if (this.mine.has(file) || orphan || Date.now() - st.ctimeMs > this.o.staleClaimMs) {
        this.mine.add(file);
        work.push({ file, mtimeMs: st.mtimeMs });
      }
    }
    const fresh: Array<{ name: string; mtimeMs: number }> = [];
    for (const name of await listCdrs(dir)) {
      const st = await stat(path.join(dir, name)).catch(() => undefined);
      if (st?.isFile()) fresh.push({ name, mtimeMs: st.mtimeMs });
    }
    fresh.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of fresh) {
      const to = path.join(processing, f.name);
      try {
        await rename(path.join(dir, f.name), to);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // another process claimed it
        throw err;
      }
      this.mine.add(to);
      work.push({ file: to, mtimeMs: f.mtimeMs });
    }
    for (const w of work) {
      if (this.halted()) return undefined;
      const outcome = await this.handle(dir, w.file);
      if (outcome === 'unavailable') return outcome;
      if (outcome === 'wait') this.waiting = true;
    }
    return undefined;
  }

  private async handle(dir: string, file: string): Promise<Outcome> {
    const name = path.basename(file);
    const st = await stat(file).catch(() => undefined);
    if (!st) {
      this.mine.delete(file); // finished by another process meanwhile
      return 'done';
    }
    if (st.size > this.o.maxBytes) return this.setAside(dir, file, `larger than ${this.o.maxBytes} bytes`);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.forget(file);
      throw err;
    }
    // mod_json_cdr writes the final "\n" last (and its unformatted JSON has no other newline): without it the
    // file may still be being written; with it, it is whole, and must be a JSON object.
    if (!text.endsWith('\n')) {
      if (Date.now() - st.mtimeMs < this.o.incompleteGraceMs) return 'wait';
      return this.setAside(dir, file, `truncated: ${text.length === 0 ? 'empty' : 'no final newline'} after ${this.o.incompleteGraceMs} ms`);
    }
    const notJson = jsonObjectError(text);
    if (notJson) return this.setAside(dir, file, notJson);
    let r: IngestResult;
    try {
      r = await this.opts.ingest(text);
    } catch (err) {
      if (this.opts.isUnavailable(err)) {
        if (!this.stats.backingOff) this.opts.logger.warn({ err, file }, 'database unavailable: spooled CDRs wait');
        return 'unavailable';
      }
      this.opts.logger.error({ err, file }, 'spooled CDR failed; it will be retried');
      return 'wait';
    }
    if (r.status === 'invalid') return this.setAside(dir, file, r.reason);
    if (r.status === 'debited') this.stats.billed++;
    else if (r.status === 'duplicate') this.stats.duplicate++;
    else if (r.status === 'released') this.stats.released++;
    else this.stats.ignored++;
    if (r.status === 'debited' || r.status === 'released') this.opts.logger.info({ file: name, callId: r.callId, status: r.status }, 'spooled CDR billed');
    await rename(file, path.join(dir, 'done', name)).catch((err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
    return this.forget(file);
  }

  private async setAside(dir: string, file: string, reason: string): Promise<Outcome> {
    const to = path.join(dir, 'rejected', path.basename(file));
    try {
      await rename(file, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.forget(file);
      throw err;
    }
    await writeReason(to, reason);
    this.stats.rejected++;
    this.opts.logger.warn({ file: to, reason }, 'spooled CDR rejected');
    this.forget(file);
    return 'rejected';
  }

  private forget(file: string): Outcome {
    this.mine.delete(file);
    return 'done';
  }
}

async function ensureSubdirs(dir: string): Promise<void> {
  for (const sub of ['processing', 'done', 'rejected']) await mkdir(path.join(dir, sub), { recursive: true });
}

async function listCdrs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => CDR_FILE_RE.test(n));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** undefined when the text is a JSON object, else why not. */
function jsonObjectError(text: string): string | undefined {
  try {
    const doc: unknown = JSON.parse(text);
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return 'not a JSON object';
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  return undefined;
}
