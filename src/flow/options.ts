import { SOUND_PATH_RE } from './dial-string.ts';
import type { PromptName } from './prompts.ts';

export interface FlowOptions {
  /** Where FreeSWITCH finds sounds/ (absolute), e.g. /usr/share/ccard/sounds; sound_prefix = <this>/<lang>. */
  soundsPrefix: string;
  /** Wait for the first PIN digit (play_and_get_digits timeout). Default 5000. */
  pinTimeoutMs?: number;
  /** Inter-digit timeout of every digit collection. Default 3000. */
  digitTimeoutMs?: number;
  /** Wait for the first destination digit. Default 5000. */
  destTimeoutMs?: number;
  /** Wait for a one-key menu answer (bind offer, another call). Default 5000. */
  menuTimeoutMs?: number;
  /** Invalid destination entries (incl. no rate / too expensive) before goodbye. Default 3. */
  destTries?: number;
  /** originate_timeout of the carrier leg. Default 60. */
  originateTimeoutSec?: number;
  /** The warning plays this long before the cap. Default 60. */
  warningSecondsBeforeEnd?: number;
  /** No warning unless the call may last this much longer than warningSecondsBeforeEnd. Default 30. */
  warningMinLeadSec?: number;
  /** The warning prompt; null disables the warning. Default low_balance_warning. */
  warningPrompt?: PromptName | null;
  /** Sample-rate folder of the warning file (the carrier leg has no sound_prefix). Default 8000. */
  warningRate?: 8000 | 16000;
  /** Extra seconds on top of originate timeout + cap before the flow gives up on the bridge. Default 30. */
  bridgeMarginSec?: number;
  /** After the caller hung up during a bridge, how long to wait for its result (the CDR) before settling
   * without it. Default 10000 (a dead CDR sink delayed HANGUP_COMPLETE by 6 s, observation 20). */
  bridgeHangupGraceMs?: number;
  /** Played to FreeSWITCH as the invalid prompt of play_and_get_digits; the flow plays its own. */
  pagdInvalidPrompt?: string;
  /** Key of the seal on the flow's state kept on the channel for a process that takes the call over
   * (src/flow/resume.ts; derived from CCARD_SECRET). Empty: nothing is sealed and no call is taken over. */
  resumeKey?: string;
}

export type ResolvedFlowOptions = Required<FlowOptions>;

export const FLOW_DEFAULTS: Omit<ResolvedFlowOptions, 'soundsPrefix'> = {
  pinTimeoutMs: 5000,
  digitTimeoutMs: 3000,
  destTimeoutMs: 5000,
  menuTimeoutMs: 5000,
  destTries: 3,
  originateTimeoutSec: 60,
  warningSecondsBeforeEnd: 60,
  warningMinLeadSec: 30,
  warningPrompt: 'low_balance_warning',
  warningRate: 8000,
  bridgeMarginSec: 30,
  bridgeHangupGraceMs: 10_000,
  pagdInvalidPrompt: 'silence_stream://250',
  resumeKey: '',
};

// soundsPrefix first: a spread followed by a field it does not have is built on V8's slow path (per call here).
const RESOLVED_TEMPLATE: ResolvedFlowOptions = { soundsPrefix: '', ...FLOW_DEFAULTS };

const POSITIVE_INTS = [
  'pinTimeoutMs',
  'digitTimeoutMs',
  'destTimeoutMs',
  'menuTimeoutMs',
  'destTries',
  'originateTimeoutSec',
  'warningSecondsBeforeEnd',
  'bridgeHangupGraceMs',
] as const;

/** Fills defaults and refuses values that would end up in an app argument unchecked. */
export function resolveFlowOptions(opts: FlowOptions): ResolvedFlowOptions {
  const prefix = opts.soundsPrefix.replace(/\/+$/, '');
  if (!SOUND_PATH_RE.test(prefix) || prefix.includes('..')) {
    throw new RangeError(`soundsPrefix must be an absolute path of [A-Za-z0-9_./-], got ${JSON.stringify(opts.soundsPrefix)}`);
  }
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const r: ResolvedFlowOptions = { ...RESOLVED_TEMPLATE, ...defined, soundsPrefix: prefix };
  for (const key of POSITIVE_INTS) {
    if (!Number.isSafeInteger(r[key]) || r[key] <= 0) throw new RangeError(`${key} must be a positive integer`);
  }
  for (const key of ['warningMinLeadSec', 'bridgeMarginSec'] as const) {
    if (!Number.isSafeInteger(r[key]) || r[key] < 0) throw new RangeError(`${key} must be a non-negative integer`);
  }
  return r;
}
