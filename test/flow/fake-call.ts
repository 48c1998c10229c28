import { EslError } from '../../src/esl/errors.ts';
import type {
  BridgeRequest,
  BridgeResult,
  Call,
  CallInfo,
  CarrierCdr,
  DigitsRequest,
  DigitsResult,
  SayType,
} from '../../src/flow/call.ts';

export type CommandName = 'answer' | 'set' | 'playback' | 'say' | 'playAndGetDigits' | 'bridge' | 'hangup';

export interface Command {
  cmd: CommandName;
  args: unknown[];
  /** The AbortSignal the flow passed (aborted = the flow left the state while the command ran). */
  signal?: AbortSignal;
}

/** A scripted keypad entry: digits as FreeSWITCH leaves them, or a bare string for a clean success. */
export type DigitsScript = DigitsResult | string;

export interface HangupPoint {
  cmd: Exclude<CommandName, 'hangup'>;
  /** 1-based occurrence of that command. Default 1. */
  nth?: number;
  /**
   * For bridge: what the bridge does after the caller hung up. 'result' (default) completes with the next
   * scripted result marked callerHungUp; 'reject' rejects ESL_HANGUP; 'never' never completes by itself.
   */
  bridge?: 'result' | 'reject' | 'never';
}

export interface FakeCallScript {
  info?: Partial<CallInfo>;
  digits?: DigitsScript[];
  bridges?: BridgeResult[];
  hangupAt?: HangupPoint;
  /** Makes the nth command of that name reject with this error (once). */
  failAt?: { cmd: Exclude<CommandName, 'hangup'>; nth?: number; error: Error };
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * An in-memory Call: commands complete at once from a script, every command and its arguments are recorded,
 * and the caller can hang up at a chosen command (CHANNEL_HANGUP first, then the command ends, as on the wire).
 */
export class FakeCall implements Call {
  readonly info: CallInfo;
  readonly commands: Command[] = [];
  private readonly hangupCtl = new AbortController();
  private readonly digits: DigitsScript[];
  private readonly bridges: BridgeResult[];
  private readonly counts = new Map<CommandName, number>();
  hangupCause: string | undefined;
  /** Set while the scripted hangup is on its way (see hangUpDuring). */
  private hangingUp: Promise<void> | undefined;

  constructor(private readonly script: FakeCallScript = {}) {
    this.info = {
      uuid: '0b6c2a8e-9d6f-4b7a-8f43-2f1f6d1e0c11',
      did: '15550001111',
      callerId: '15551230000',
      callerIdName: 'Caller',
      callerIdWithheld: false,
      ...script.info,
    };
    this.digits = [...(script.digits ?? [])];
    this.bridges = [...(script.bridges ?? [])];
  }

  get hangupSignal(): AbortSignal {
    return this.hangupCtl.signal;
  }
  get hungUp(): boolean {
    return this.hangupCtl.signal.aborted;
  }

  /** The caller hangs up now. */
  callerHangsUp(): void {
    if (!this.hungUp) this.hangupCtl.abort();
  }

  // ---- views for assertions

  count(cmd: CommandName): number {
    return this.commands.filter((c) => c.cmd === cmd).length;
  }
  /** Playback prompt names (ccard/<name>.wav -> name) and say items as say:<TYPE>:<text>, in order. */
  audio(): string[] {
    return this.commands.flatMap((c) => {
      if (c.cmd === 'playback') return [String(c.args[0]).replace(/^ccard\/(.*)\.wav$/, '$1')];
      if (c.cmd === 'say') return [`say:${c.args[1]}:${c.args[2]}`];
      if (c.cmd === 'playAndGetDigits') return [`pagd:${(c.args[0] as DigitsRequest).prompt.replace(/^ccard\/(.*)\.wav$/, '$1')}`];
      return [];
    });
  }
  digitRequests(): DigitsRequest[] {
    return this.commands.filter((c) => c.cmd === 'playAndGetDigits').map((c) => c.args[0] as DigitsRequest);
  }
  bridgeRequests(): BridgeRequest[] {
    return this.commands.filter((c) => c.cmd === 'bridge').map((c) => c.args[0] as BridgeRequest);
  }
  sets(): Array<[string, string]> {
    return this.commands.filter((c) => c.cmd === 'set').flatMap((c) => (c.args[0] as Array<[string, string]>).map(([k, v]) => [k, v] as [string, string]));
  }

  // ---- Call

  answer(signal?: AbortSignal): Promise<void> {
    return this.run('answer', [], signal, async () => undefined);
  }
  /** Like CallSession: recorded now (with no signal), and the next command answers for their failures. */
  prepare({ answer, variables }: { answer: boolean; variables: ReadonlyArray<readonly [string, string]> }): void {
    if (this.hungUp) return;
    const carry = (p: Promise<unknown>) => {
      p.catch(() => undefined);
      this.carried.push(p);
    };
    if (answer) carry(this.run('answer', [], undefined, async () => undefined));
    if (variables.length) carry(this.run('set', [variables], undefined, async () => undefined));
  }
  private carried: Array<Promise<unknown>> = [];
  setVariables(vars: ReadonlyArray<readonly [string, string]>, signal?: AbortSignal): Promise<void> {
    return this.run('set', [vars], signal, async () => undefined);
  }
  playback(file: string, signal?: AbortSignal): Promise<void> {
    return this.run('playback', [file], signal, async () => undefined);
  }
  say(lang: string, type: SayType, text: string, signal?: AbortSignal): Promise<void> {
    return this.run('say', [lang, type, text], signal, async () => undefined);
  }
  playAndGetDigits(req: DigitsRequest, signal?: AbortSignal): Promise<DigitsResult> {
    return this.run('playAndGetDigits', [req], signal, async () => {
      const next = this.digits.shift();
      if (next === undefined) return { digits: undefined, success: false }; // nothing keyed: timeout
      return typeof next === 'string' ? { digits: next, success: true } : next;
    });
  }
  bridge(req: BridgeRequest, signal?: AbortSignal): Promise<BridgeResult> {
    return this.run('bridge', [req], signal, async () => {
      const next = this.bridges.shift();
      if (!next) throw new Error('FakeCall: no scripted bridge result');
      return next;
    });
  }
  async hangup(cause?: string): Promise<void> {
    this.commands.push({ cmd: 'hangup', args: [cause] });
    this.hangupCause ??= cause;
    this.callerHangsUp();
  }

  private run<T>(cmd: CommandName, args: unknown[], signal: AbortSignal | undefined, exec: () => Promise<T>): Promise<T> {
    const carried = this.carried.splice(0);
    const own = this.runOne(cmd, args, signal, exec);
    if (carried.length === 0) return own;
    own.catch(() => undefined);
    return Promise.all(carried).then(() => own);
  }

  private runOne<T>(cmd: CommandName, args: unknown[], signal: AbortSignal | undefined, exec: () => Promise<T>): Promise<T> {
    this.commands.push({ cmd, args, signal });
    const n = (this.counts.get(cmd) ?? 0) + 1;
    this.counts.set(cmd, n);
    if (signal?.aborted) return Promise.reject(new EslError('ESL_ABORTED', `${cmd} aborted`));
    if (this.hungUp) return Promise.reject(new EslError('ESL_HANGUP', `${cmd}: channel hung up`));
    // Queued behind a command the caller hangs up during: FreeSWITCH never runs it. A bridge then reports what the
    // ESL layer reports once CHANNEL_HANGUP_COMPLETE came without it (nothing originated); anything else rejects.
    if (this.hangingUp) {
      return this.hangingUp.then(() => {
        if (cmd === 'bridge') return { ...NEVER_RAN_BRIDGE } as T;
        throw new EslError('ESL_HANGUP', `${cmd}: channel hung up`);
      });
    }
    const fail = this.script.failAt;
    if (fail && fail.cmd === cmd && (fail.nth ?? 1) === n) return Promise.reject(fail.error);
    const hang = this.script.hangupAt;
    if (hang && hang.cmd === cmd && (hang.nth ?? 1) === n) return this.hangUpDuring(cmd, signal, exec);
    return exec();
  }

  /** CHANNEL_HANGUP arrives first; the command then ends as the ESL layer would end it. */
  private hangUpDuring<T>(cmd: CommandName, signal: AbortSignal | undefined, exec: () => Promise<T>): Promise<T> {
    let hungUp!: () => void;
    this.hangingUp = new Promise<void>((resolve) => (hungUp = resolve));
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(new EslError('ESL_ABORTED', `${cmd} aborted`));
      signal?.addEventListener('abort', onAbort, { once: true });
      void (async () => {
        await tick();
        this.callerHangsUp();
        await tick();
        hungUp();
        const mode = this.script.hangupAt?.bridge ?? 'result';
        if (cmd === 'bridge' && mode === 'never') return;
        if (cmd === 'bridge' && mode === 'result') {
          try {
            const r = (await exec()) as BridgeResult;
            resolve({ ...r, callerHungUp: true } as T);
          } catch (err) {
            reject(err);
          }
          return;
        }
        reject(new EslError('ESL_HANGUP', `${cmd}: channel hung up`));
      })();
    });
  }
}

// ---- bridge results as FreeSWITCH reports them

/** A bridge queued behind a command the caller hung up during: it never ran. */
const NEVER_RAN_BRIDGE: BridgeResult = { disposition: undefined, hangupCause: undefined, answered: false, carrierCdr: undefined, callerHungUp: true };

export function carrierCdr(callId: string, billsec: number, cause = 'NORMAL_CLEARING'): CarrierCdr {
  return {
    uuid: callId,
    billsec,
    billmsec: billsec * 1000,
    answerUepoch: 1_700_000_000_000_000n,
    endUepoch: 1_700_000_000_000_000n + BigInt(billsec) * 1_000_000n,
    hangupCause: cause,
    variables: { cc_call_id: callId },
  };
}

export const answeredBridge = (billsec: number, callId = 'b-leg'): BridgeResult => ({
  disposition: 'SUCCESS',
  hangupCause: 'NORMAL_CLEARING',
  answered: true,
  carrierCdr: carrierCdr(callId, billsec),
  callerHungUp: false,
});

export const failedBridge = (cause: string, disposition: string | undefined = cause): BridgeResult => ({
  disposition,
  hangupCause: cause,
  answered: false,
  carrierCdr: { ...carrierCdr('b-leg', 0, cause), answerUepoch: undefined },
  callerHungUp: false,
});
