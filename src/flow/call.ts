/**
 * What the call flow needs from one live call. The ESL layer implements it over the outbound socket
 * (src/esl/call-session.ts); tests can implement it in memory. The flow never touches sockets.
 *
 * Every method takes an AbortSignal: aborting it rejects the promise promptly (the flow aborts when it
 * leaves a state). When the caller hangs up, every pending and later command rejects with an EslError
 * whose code is 'ESL_HANGUP' and `hangupSignal` fires.
 */
export interface CallInfo {
  /** Unique-ID of the IVR (socket) leg. */
  uuid: string;
  /** The DID dialled (Caller-Destination-Number). */
  did: string;
  /** Caller-Caller-ID-Number, as FreeSWITCH gave it (may be empty, "anonymous", "0000000000"...). */
  callerId: string;
  callerIdName: string;
  /** Privacy-Hide-Number / screening says the caller withheld the number. */
  callerIdWithheld: boolean;
  /** A call from a device: the variables ccard's directory put on the channel (checked by the flow, src/flow/device.ts). */
  device?: import('./device.ts').DeviceClaims;
}

export interface DigitsRequest {
  min: number;
  max: number;
  tries: number;
  timeoutMs: number;
  /** Terminator keys, e.g. "#". */
  terminators: string;
  /** Prompt file or tone_stream:// played before each try. */
  prompt: string;
  /** Played after an invalid try. */
  invalidPrompt: string;
  /** Channel variable that receives the digits, e.g. "ivr_destination". Must match /^[a-z_]+$/. */
  variable: string;
  /** Regex FreeSWITCH checks the entry against, e.g. "^\\d+$". */
  regex: string;
  /** Inter-digit timeout. */
  digitTimeoutMs: number;
}

export interface DigitsResult {
  /**
   * The digits FreeSWITCH left in the variable, or undefined when it is absent. May be PARTIAL (it keeps what
   * was typed when the caller hung up or a try timed out): callers must validate it themselves.
   */
  digits: string | undefined;
  /** variable_read_result === 'success'. */
  success: boolean;
}

export type SayType = 'CURRENCY' | 'NUMBER' | 'TIME_MEASUREMENT' | 'ITEMS';

export interface BridgeRequest {
  /** The complete dial string, built by flow code from whitelisted parts only. */
  dialString: string;
  /** How long to wait for the bridge to end (originate timeout + cap + margin). */
  timeoutMs: number;
  /** Called once when the carrier leg answers (CHANNEL_BRIDGE), with its uuid and FreeSWITCH's clock. */
  onAnswered?: (a: CarrierAnswer) => void;
}

/** The carrier leg answered: what re-arming its cap needs. */
export interface CarrierAnswer {
  carrierUuid: string;
  /** The carrier leg's answer time on FreeSWITCH's clock (µs since the epoch). */
  answeredUs: number;
  /** FreeSWITCH's clock now (µs), estimated from the bridge event's timestamp and the local monotonic clock. */
  switchNowUs(): number;
}

/** The cap re-armed on the carrier leg (see Call.rearmCap); the warning plays `warning.atSeconds` from now. */
export interface CapRearm {
  carrierUuid: string;
  /** The new cap: the carrier leg hangs up (ALLOTTED_TIMEOUT) this many whole seconds after the API runs. */
  inSeconds: number;
  warning?: { file: string; inSeconds: number };
}

export interface BridgeResult {
  /** variable_originate_disposition (SUCCESS, USER_BUSY, NO_ANSWER, ...), undefined if FreeSWITCH set none. */
  disposition: string | undefined;
  /** variable_last_bridge_hangup_cause / DIALSTATUS-derived cause of the carrier leg. */
  hangupCause: string | undefined;
  /** True when the carrier leg answered (CHANNEL_BRIDGE was seen). */
  answered: boolean;
  /** The carrier leg's own CDR facts when the bridge ended with the copy of its JSON CDR (copy_json_cdr=true). */
  carrierCdr: CarrierCdr | undefined;
  /** The IVR leg hung up during (or to end) the bridge. */
  callerHungUp: boolean;
}

/** The billing facts of the carrier (b-) leg, as FreeSWITCH reports them. */
export interface CarrierCdr {
  uuid: string;
  billsec: number;
  billmsec: number | undefined;
  answerUepoch: bigint | undefined;
  endUepoch: bigint | undefined;
  hangupCause: string | undefined;
  /** All variables of the b-leg CDR (decoded), for correlation (cc_call_id...). */
  variables: Record<string, string>;
}

export interface Call {
  readonly info: CallInfo;
  /** Fires once when the IVR leg hangs up (CHANNEL_HANGUP) or the socket closes. */
  readonly hangupSignal: AbortSignal;
  readonly hungUp: boolean;

  answer(signal?: AbortSignal): Promise<void>;
  /**
   * Answers (when asked) and sets channel variables without waiting for either: both leave with the next command, in
   * its write, and a failure of either rejects that next command. For the start of a call, where the first prompt
   * needs neither reply (FreeSWITCH runs the commands in order). Names and values must already be validated.
   */
  prepare(steps: { answer: boolean; variables: ReadonlyArray<readonly [string, string]> }): void;
  /** Sets channel variables in one command (app `set`, or `multiset` for several). Names and values must already be
   * validated by the caller. */
  setVariables(vars: ReadonlyArray<readonly [string, string]>, signal?: AbortSignal): Promise<void>;
  playback(file: string, signal?: AbortSignal): Promise<void>;
  /** mod_say: `say <lang> <type> PRONOUNCED <text>`. */
  say(lang: string, type: SayType, text: string, signal?: AbortSignal): Promise<void>;
  playAndGetDigits(req: DigitsRequest, signal?: AbortSignal): Promise<DigitsResult>;
  bridge(req: BridgeRequest, signal?: AbortSignal): Promise<BridgeResult>;
  /**
   * Replaces the carrier leg's scheduled cap (and warning) in ONE write: `sched_del <uuid>` (clears both, they share
   * the leg's uuid as group), `sched_hangup +N <uuid> allotted_timeout`, and `sched_broadcast` for the warning.
   * 'gone' when FreeSWITCH answers -ERR (the leg no longer exists: the call is over). README-extend.md.
   */
  rearmCap?(r: CapRearm, signal?: AbortSignal): Promise<'ok' | 'gone'>;
  /**
   * A channel variable as the connect reply gave it (decoded; lossy for values holding %XX, observation 14). The ESL
   * session keeps only the variables listed in CHANNEL_VARIABLES_KEPT (src/esl/call-session.ts; a test checks every
   * call here against it): others read undefined.
   */
  channelVariable?(name: string): string | undefined;
  /** A channel variable read now, exactly (`api uuid_getvar`); undefined when unset. */
  readVariable?(name: string, signal?: AbortSignal): Promise<string | undefined>;
  /** Hangs the IVR leg up; resolves once FreeSWITCH acknowledged (or at once if already hung up). Never rejects. */
  hangup(cause?: string): Promise<void>;
}
