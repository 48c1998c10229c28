import type { CarrierScript } from './carrier.ts';
import type { EventFormat } from './frames.ts';

/** Keys for one play_and_get_digits: a string, one burst, or bursts (later bursts: afterMs from the previous key). */
export type DigitsEntry = string | KeyBurst | KeyBurst[];
export interface KeyBurst {
  keys: string;
  /** First burst: ms after CHANNEL_EXECUTE(play_and_get_digits) (default 1000); later bursts: after the previous key (default 1500). */
  afterMs?: number;
  /** Between keys (default 520, the recorded RFC2833 spacing). */
  gapMs?: number;
}

/** The caller hangs up (BYE, NORMAL_CLEARING) during the nth run of `app`. */
export interface HangupAt {
  app: string;
  nth?: number;
  /** ms after that app's CHANNEL_EXECUTE (for bridge: after CHANNEL_BRIDGE if afterAnswer is true). */
  afterMs?: number;
  /** play_and_get_digits only: hang up `afterMs` (default 250) after the k-th key. */
  afterKeys?: number;
  afterAnswer?: boolean;
  cause?: string;
}

export type InjectPoint = { after: 'connect' } | { afterEvent: string; app?: string; nth?: number };
export type Injection =
  | { at: InjectPoint; raw: Buffer | string }
  | { at: InjectPoint; duplicate: true }
  | { at: InjectPoint; drop: true };

export interface CallScript {
  did?: string;
  callerId?: string;
  callerIdName?: string;
  withheld?: boolean;
  /** Unique-ID of the IVR leg (default random). */
  uuid?: string;
  digits?: DigitsEntry[];
  hangupAt?: HangupAt;
  /** Far-end behaviour per bridge; undefined -> the recorded carrier's behaviour by number. */
  carrier?: (number: string, dialVars: Record<string, string>) => CarrierScript | undefined;
  /** Robustness knobs: raw bytes, duplicated events, dropped connection. */
  inject?: Injection[];
  /** Send CHANNEL_PARK after the first sendmsg (observation 4). Default true. */
  park?: boolean;
  /** Send the linger disconnect-notice right after CHANNEL_HANGUP (observation 6). Default false. */
  lingerNoticeEarly?: boolean;
  /** Virtual start time (µs since epoch). Default: the simulator's clock start. */
  startUs?: number;
  /** Called when an app starts on the channel (its nth run), e.g. for a test to act at that moment. */
  onApp?: (app: string, nth: number) => void;
  /** Channel variables set before the socket connects (a device's, see deviceChannelVariables in sim/xmlcurl.ts). */
  channelVariables?: Record<string, string>;
}

export interface SimOptions {
  host?: string;
  port: number;
  /** Event format used when the client says only `myevents` (FreeSWITCH: plain). */
  eventFormat?: EventFormat;
  /** Real ms per virtual ms (0 = as fast as possible). Default 0. */
  timeScale?: number;
  logger?: { debug: (obj: object, msg?: string) => void; warn: (obj: object, msg?: string) => void };
  /** mod_json_cdr url (e.g. http://127.0.0.1:8081/cdr): the b-leg's CDR is POSTed there. */
  jsonCdrUrl?: string;
  /** Post every leg's CDR, as a real FreeSWITCH with mod_json_cdr does: the IVR (caller's) leg's own document too,
   * ~20 ms after its CHANNEL_HANGUP_COMPLETE (the recorded gap). Default false: the carrier leg's only. */
  jsonCdrAllLegs?: boolean;
  jsonCdrRetries?: number;
  jsonCdrDelayMs?: number;
  /** mod_json_cdr `cred` (user:password, sent as Basic auth like auth-scheme=basic). */
  jsonCdrCred?: string;
  /** mod_json_cdr `err-log-dir`s: a CDR whose POSTs all failed is written to the first one that opens, as
   * `<uuid>.cdr.json` (written in place: JSON, then "\n"), exactly like backup_cdr() in mod_json_cdr.c. */
  jsonCdrErrLogDirs?: string[];
  /** mod_json_cdr `log-dir`: with jsonCdrLogHttpAndDisk (or no url) every CDR is written there before the POST. */
  jsonCdrLogDir?: string;
  jsonCdrLogHttpAndDisk?: boolean;
  /** What a real FreeSWITCH does when the application's socket dies mid-bridge (README-resume): the bridge runs on
   * to its end (carrier hangup or cap) and its CDR is posted. Default false: a lost socket ends the call at once. */
  bridgeOutlivesSocket?: boolean;
  /** Virtual clock start for calls (µs since epoch). Default: Date.now() at call start. */
  startUs?: number;
  /** Length of a prompt file in ms (tone_stream and silence_stream are parsed; default 200 ms per file). */
  soundDurationMs?: (file: string) => number;
  /** Keep every frame of each call in its result (rx, tx, commands). Default true; a benchmark that places
   * thousands of calls turns it off, since the frames are most of what a call allocates. */
  record?: boolean;
  /** Give up a call when the client is silent this long (real ms). Default 30000. */
  idleTimeoutMs?: number;
  /**
   * The dialplan around the socket app (README-resume.md): how many `socket` actions follow each other (default 1,
   * as recorded) and whether `set socket_resume=true` runs before them (default false; the client may also send
   * `resume`).
   */
  dialplan?: { sockets?: number; socketResume?: boolean };
}

export interface AppRun {
  name: string;
  arg: string;
  eventUuid: string;
  startUs: number;
  endUs: number;
  response: string;
  /** true when it was started by FreeSWITCH itself (sched_broadcast), not by a sendmsg */
  broadcast?: boolean;
}

export interface BLegResult {
  uuid: string;
  dialString: string;
  number: string;
  dialVars: Record<string, string>;
  answered: boolean;
  answerUs: number;
  endUs: number;
  answerEpoch: number;
  endEpoch: number;
  billsec: number;
  billmsec: number;
  hangupCause: string;
  /** The b-leg JSON CDR with url-encoded values (what b_leg_cdr holds), when copy_json_cdr=true or jsonCdrUrl set. */
  cdrJson?: string;
  cdrPostStatus?: number;
  /** Where the CDR was written when every POST failed (jsonCdrErrLogDirs). */
  cdrErrLogFile?: string;
}

export interface CallResult {
  uuid: string;
  apps: AppRun[];
  prompts: string[];
  says: Array<{ arg: string; files: string[] }>;
  dialStrings: string[];
  /**
   * Real milliseconds from the last play_and_get_digits completion sent to each bridge command received: the
   * client's decision as FreeSWITCH sees it (the simulator's own delays included).
   */
  decisionsMs: number[];
  /**
   * Executes that a real FreeSWITCH would have run nested inside a running app (it parses the channel's queued
   * commands in its media loop unless that app was sent with `event-lock: true`): out of order. Empty for a client
   * that queues several commands correctly.
   */
  nestedExecutes: Array<{ outer: string; inner: string }>;
  variablesSet: Array<[string, string]>;
  bLegs: BLegResult[];
  /** Final IVR-leg variables. */
  variables: Record<string, string>;
  digits: Array<{ varName: string; value: string | undefined; readResult: string }>;
  hangupCause: string | undefined;
  /** Who ended the IVR leg. */
  hangupBy: 'caller' | 'client' | 'switch' | undefined;
  answerUs: number;
  endUs: number;
  billsec: number;
  /** Sockets that closed while the channel lived on, and how many times the dialplan connected again. */
  socketLosses?: number;
  resumes?: number;
  /** How the socket ended. */
  end: 'exit' | 'linger-timeout' | 'nolinger' | 'dropped' | 'client-closed' | 'idle-timeout';
  /** Frames as sent by FreeSWITCH (rx) and received from the client (tx), raw bytes. */
  rx: Buffer[];
  tx: Buffer[];
  commands: string[];
}
