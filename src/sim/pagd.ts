/**
 * play_and_get_digits as switch_play_and_get_digits/switch_ivr_read behave (README observations 5 and 18):
 * a pure timeline computed from the caller's scripted keys. Times are virtual ms from CHANNEL_EXECUTE.
 */
export interface PagdArgs {
  min: number;
  max: number;
  tries: number;
  timeoutMs: number;
  terminators: string;
  prompt: string;
  invalidPrompt: string;
  varName: string;
  regex: string;
  digitTimeoutMs: number;
}

export function parsePagdArgs(arg: string): PagdArgs {
  const a = arg.trim().split(/\s+/);
  const n = (i: number, d: number) => (a[i] !== undefined && a[i] !== '' && !Number.isNaN(Number(a[i])) ? Number(a[i]) : d);
  const timeoutMs = n(3, 3000);
  return {
    min: n(0, 0),
    max: n(1, 128),
    tries: Math.max(1, n(2, 1)),
    timeoutMs,
    terminators: a[4] === 'none' ? '' : (a[4] ?? ''),
    prompt: a[5] ?? '',
    invalidPrompt: a[6] ?? '',
    varName: a[7] ?? '',
    regex: a[8] ?? '',
    digitTimeoutMs: n(9, timeoutMs),
  };
}

export interface KeyPress {
  key: string;
  atMs: number;
}

export interface PagdOutcome {
  /** DTMF events that reach the channel, in order (only those before a hangup). */
  dtmf: KeyPress[];
  /** When the app completes (or the caller hangs up). */
  endMs: number;
  hungUp: boolean;
  /** Variable operations in order: value undefined = unset. */
  varOps: Array<[string, string | undefined]>;
  readResult: 'success' | 'failure';
  digits: string | undefined;
  tries: number;
  promptsPlayed: string[];
}

function regexMatches(re: string, s: string): boolean {
  if (!re) return true;
  try {
    return new RegExp(re).test(s);
  } catch {
    return false;
  }
}

export function runPagd(
  args: PagdArgs,
  keys: KeyPress[],
  opts: { hangupAtMs?: number; durationMs: (file: string) => number },
): PagdOutcome {
  const hang = opts.hangupAtMs ?? Infinity;
  const varOps: Array<[string, string | undefined]> = [];
  const prompts: string[] = [];
  const dtmf = keys.filter((k) => k.atMs < hang);
  let ki = 0;
  let t = 0;
  let readResult: 'success' | 'failure' = 'failure';
  let current: string | undefined;
  const setVar = (k: string, v: string | undefined) => {
    if (!k) return;
    varOps.push([k, v]);
    if (k === args.varName) current = v;
  };
  let tries = 0;
  for (let attempt = 0; attempt < args.tries; attempt++) {
    tries++;
    if (args.prompt) prompts.push(args.prompt);
    let deadline = t + opts.durationMs(args.prompt) + args.timeoutMs;
    let buf = '';
    let end: 'timeout' | 'terminator' | 'max' | 'hangup' = 'timeout';
    let endAt = deadline;
    for (;;) {
      const k = dtmf[ki];
      const kt = k ? Math.max(k.atMs, t) : Infinity;
      if (hang <= Math.min(kt, deadline)) {
        end = 'hangup';
        endAt = hang;
        break;
      }
      if (!k || kt > deadline) {
        end = 'timeout';
        endAt = deadline;
        break;
      }
      ki++;
      if (args.terminators.includes(k.key)) {
        setVar('read_terminator_used', k.key);
        end = 'terminator';
        endAt = kt;
        break;
      }
      buf += k.key;
      if (buf.length >= args.max) {
        end = 'max';
        endAt = kt;
        break;
      }
      deadline = kt + args.digitTimeoutMs;
    }
    if (buf) setVar(args.varName, buf);
    const ok = buf.length >= args.min && buf.length > 0;
    readResult = ok ? 'success' : 'failure';
    setVar('read_result', readResult);
    if (end === 'hangup') return done(endAt, true);
    if (ok) {
      if (regexMatches(args.regex, buf)) return done(endAt, false);
      setVar(args.varName, undefined);
      setVar(`${args.varName}_invalid`, buf);
    }
    t = endAt;
    if (args.invalidPrompt) prompts.push(args.invalidPrompt);
    const invalidEnd = t + opts.durationMs(args.invalidPrompt);
    if (hang <= invalidEnd) return done(hang, true);
    t = invalidEnd;
  }
  if (current !== undefined && readResult === 'success') readResult = 'success';
  return done(t, false);

  function done(endMs: number, hungUp: boolean): PagdOutcome {
    return {
      dtmf: dtmf.filter((k) => k.atMs <= endMs),
      endMs,
      hungUp,
      varOps,
      readResult,
      digits: current,
      tries,
      promptsPlayed: prompts,
    };
  }
}
