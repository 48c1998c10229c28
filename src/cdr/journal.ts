/**
 * The debit journal: a durable local directory of call endings (CallFacts) that could not reach PostgreSQL when
 * they happened (the database or the network was down). Each entry is one small JSON file, written to a temporary
 * name, fsync'd and renamed into place (then the directory fsync'd), so an entry is either whole or absent after a
 * crash or a power cut. Entries are named so that name order is arrival order. Nothing here bills: the RetryWorker
 * (retry.ts) replays the entries through finishCall, the one idempotent debit path, and removes each one once it
 * has landed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { CallFacts } from '../billing/debit.ts';
import { isUuid, type CdrSource } from '../store/calls.ts';

const ENTRY_RE = /^(\d{13})-(\d{6})-[0-9a-f]{8}\.debit\.json$/;
const SOURCES: ReadonlySet<string> = new Set<CdrSource>(['socket', 'json_cdr', 'import', 'spool']);

export interface JournalEntry {
  /** The entry's file name (its id). */
  name: string;
  facts: CallFacts;
}

interface Stored {
  v: 1;
  callId: string;
  answered: boolean;
  billsec: number;
  billmsec?: number;
  answeredAt?: string;
  endedAt?: string;
  hangupCause?: string;
  source: CdrSource;
}

function toStored(f: CallFacts): Stored {
  return {
    v: 1,
    callId: f.callId,
    answered: f.answered,
    billsec: f.billsec,
    ...(f.billmsec !== undefined && { billmsec: f.billmsec }),
    ...(f.answeredAt && { answeredAt: f.answeredAt.toISOString() }),
    ...(f.endedAt && { endedAt: f.endedAt.toISOString() }),
    ...(f.hangupCause !== undefined && { hangupCause: f.hangupCause }),
    source: f.source,
  };
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const dateOf = (v: unknown): Date | undefined | null => {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
};

/** Parses an entry's text; a string says why it is not a valid entry. */
export function parseEntry(text: string): CallFacts | string {
  let s: Partial<Stored>;
  try {
    s = JSON.parse(text) as Partial<Stored>;
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  if (!s || typeof s !== 'object' || s.v !== 1) return 'unknown journal entry version';
  if (!isUuid(s.callId)) return 'callId is not a uuid';
  if (typeof s.answered !== 'boolean' || !isCount(s.billsec)) return 'answered/billsec missing';
  if (s.billmsec !== undefined && !isCount(s.billmsec)) return 'bad billmsec';
  const answeredAt = dateOf(s.answeredAt);
  const endedAt = dateOf(s.endedAt);
  if (answeredAt === null || endedAt === null) return 'bad timestamp';
  if (typeof s.source !== 'string' || !SOURCES.has(s.source)) return 'bad source';
  return {
    callId: s.callId,
    answered: s.answered,
    billsec: s.billsec,
    billmsec: s.billmsec,
    answeredAt,
    endedAt,
    hangupCause: typeof s.hangupCause === 'string' ? s.hangupCause.slice(0, 64) : undefined,
    source: s.source as CdrSource,
  };
}

export class DebitJournal {
  private seq = 0;
  private ready: Promise<void> | undefined;

  constructor(readonly dir: string) {}

  private ensureDirs(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(path.join(this.dir, 'rejected'), { recursive: true });
    })();
    return this.ready;
  }

  /** Writes the facts durably; resolves once they would survive a crash. */
  async add(facts: CallFacts): Promise<string> {
    await this.ensureDirs();
    const name = `${String(Date.now()).padStart(13, '0')}-${String(this.seq++ % 1_000_000).padStart(6, '0')}-${randomBytes(4).toString('hex')}.debit.json`;
    const tmp = path.join(this.dir, `.${name}.tmp`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(JSON.stringify(toStored(facts)) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path.join(this.dir, name));
    await syncDir(this.dir);
    return name;
  }

  /** The names of the entries waiting, oldest first (read each with read(): a backlog is never loaded whole). */
  async names(): Promise<string[]> {
    await this.ensureDirs();
    return (await readdir(this.dir)).filter((n) => ENTRY_RE.test(n)).sort();
  }

  /**
   * One entry's facts; undefined when it is gone (another process finished it) or unreadable (then moved to
   * rejected/ with a reason file, never deleted).
   */
  async read(name: string): Promise<CallFacts | undefined> {
    let text: string;
    try {
      text = await readFile(path.join(this.dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const facts = parseEntry(text);
    if (typeof facts !== 'string') return facts;
    await this.reject(name, facts);
    return undefined;
  }

  /** Every entry waiting, oldest first (tests, small journals). */
  async pending(): Promise<JournalEntry[]> {
    const out: JournalEntry[] = [];
    for (const name of await this.names()) {
      const facts = await this.read(name);
      if (facts) out.push({ name, facts });
    }
    return out;
  }

  /** The number of entries waiting (no parsing). */
  async size(): Promise<number> {
    await this.ensureDirs();
    return (await readdir(this.dir)).filter((n) => ENTRY_RE.test(n)).length;
  }

  /** The entry landed (debited, released, a duplicate, or its call is unknown): it is done. */
  async remove(name: string): Promise<void> {
    await rm(path.join(this.dir, name), { force: true });
  }

  private async reject(name: string, reason: string): Promise<void> {
    const to = path.join(this.dir, 'rejected', name);
    await rename(path.join(this.dir, name), to).catch(() => undefined);
    await writeReason(to, reason);
  }
}

/** Makes a rename in dir durable (a no-op where directories cannot be opened for sync). */
export async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // not supported on this platform/filesystem: the rename itself is still atomic
  }
}

/** `<file>.reason`: one line saying why the file was set aside. */
export async function writeReason(file: string, reason: string): Promise<void> {
  const fh = await open(`${file}.reason`, 'w', 0o644);
  try {
    await fh.writeFile(`${new Date().toISOString()} ${reason.replace(/[\r\n]+/g, ' ')}\n`);
  } finally {
    await fh.close();
  }
}
