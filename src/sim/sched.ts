/**
 * FreeSWITCH's scheduler as the carrier leg sees it (README-extend.md, observed on 1.11.3): `sched_hangup` and
 * `sched_broadcast` add tasks whose group is the channel's uuid; `sched_del <uuid>` removes every task of that group.
 * `+N` is relative to when the API runs: epoch_now + N in whole seconds, so a task fires on a whole-second tick.
 * Replies are the api/response bodies recorded there.
 */
export interface SchedTask {
  id: number;
  /** The channel uuid the task belongs to (its group). */
  group: string;
  kind: 'hangup' | 'broadcast';
  /** Virtual µs since the epoch, a whole second. */
  atUs: number;
  cause?: string;
  file?: string;
}

export const SCHED_REPLY = {
  deleted: (n: number) => `+OK Deleted: ${n}\n`,
  hangup: '+OK\n',
  broadcast: '+OK Message scheduled\n',
  noChannel: '-ERR No such channel!\n',
} as const;

let nextTaskId = 1;

/** `+N` (or `N`, or an absolute epoch) at `nowUs` -> the whole-second tick it fires on. */
export function schedTime(spec: string, nowUs: number): number | undefined {
  const m = /^(\+?)(\d+)$/.exec(spec);
  if (!m) return undefined;
  const n = Number(m[2]);
  return (m[1] === '+' ? Math.floor(nowUs / 1e6) + n : n) * 1e6;
}

/** The tasks of the channels one simulated call knows (its carrier leg). */
export class Scheduler {
  readonly tasks: SchedTask[] = [];
  /** Called whenever the schedule changes (the bridge re-computes what it waits for). */
  onChange: (() => void) | undefined;

  add(t: Omit<SchedTask, 'id'>): SchedTask {
    const task = { ...t, id: nextTaskId++ };
    this.tasks.push(task);
    this.onChange?.();
    return task;
  }

  /** sched_del: a task id or a group; returns how many went. */
  del(idOrGroup: string): number {
    let n = 0;
    for (let i = this.tasks.length - 1; i >= 0; i--) {
      const t = this.tasks[i]!;
      if (t.group === idOrGroup || String(t.id) === idOrGroup) {
        this.tasks.splice(i, 1);
        n++;
      }
    }
    if (n) this.onChange?.();
    return n;
  }

  /** The earliest task of a group, of one kind. */
  next(group: string, kind: SchedTask['kind']): SchedTask | undefined {
    let best: SchedTask | undefined;
    for (const t of this.tasks) if (t.group === group && t.kind === kind && (!best || t.atUs < best.atUs)) best = t;
    return best;
  }

  remove(task: SchedTask): void {
    const i = this.tasks.indexOf(task);
    if (i >= 0) this.tasks.splice(i, 1);
  }

  /** Drops a channel's tasks when it is destroyed (FreeSWITCH's tasks find no channel and do nothing). */
  dropGroup(group: string): void {
    for (let i = this.tasks.length - 1; i >= 0; i--) if (this.tasks[i]!.group === group) this.tasks.splice(i, 1);
  }
}
