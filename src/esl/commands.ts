/**
 * Pure builders for what ccard writes on the outbound socket. Each returns the exact bytes (as a string) or
 * throws EslError('ESL_INVALID_ARGUMENT') before anything is sent. Formats follow test/fixtures/freeswitch/*.tx.raw.
 */
import type { DigitsRequest, SayType } from '../flow/call.ts';
import { EslError } from './errors.ts';

const invalid = (msg: string): EslError => new EslError('ESL_INVALID_ARGUMENT', msg);

const APP_NAME = /^[a-z][a-z0-9_]*$/;
const HANGUP_CAUSE = /^[A-Z][A-Z0-9_]*$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const VAR_NAME = /^[a-z_]+$/;
const CHANNEL_VAR = /^[A-Za-z0-9_]+$/;
/** One space-separated token of an app argument: no whitespace at all. */
const TOKEN = /^\S+$/;
const SAY_TYPES: readonly SayType[] = ['CURRENCY', 'NUMBER', 'TIME_MEASUREMENT', 'ITEMS'];

/** An app argument travels as one header line: a CR or LF would end it and inject headers. */
export function checkLine(what: string, value: string): string {
  if (/[\r\n]/.test(value)) throw invalid(`${what} must not contain a newline`);
  return value;
}

function token(what: string, value: string): string {
  if (!TOKEN.test(value)) throw invalid(`${what} must be one non-empty token without spaces: ${JSON.stringify(value)}`);
  return value;
}

function int(what: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw invalid(`${what} must be an integer >= ${min}`);
  return value;
}

/** A plain command such as `connect`, `myevents json`, `linger`, `exit`, `api uuid_break <uuid> all`. */
export function command(text: string): string {
  if (text === '' || /[\r\n]/.test(text)) throw invalid('a command is one non-empty line');
  return `${text}\n\n`;
}

/**
 * An execute: the argument travels as a text/plain body (switch_ivr_parse_event takes the body as the argument when
 * execute-app-arg is absent), so its bytes reach the application untouched whatever they contain; the Event-UUID
 * comes back as the Application-UUID of the app's CHANNEL_EXECUTE_COMPLETE.
 *
 * `eventLock` adds `event-lock: true`. In async mode FreeSWITCH queues every sendmsg on the channel, and a running
 * media app (playback, say, play_and_get_digits: their frame loops call switch_ivr_parse_all_events) would run the
 * next queued execute nested inside itself, out of order. With event-lock the running app holds CF_EVENT_LOCK and the
 * queue waits until it ends. A bridge must not hold it: the low-balance warning reaches the caller during the bridge
 * as a queued broadcast (sched_broadcast), which the lock would keep waiting until the call is over.
 * No default here: the one default (with the lock) is EslConnection.execute's, so a builder caller must choose.
 */
export function sendmsgExecute(app: string, arg: string | undefined, eventUuid: string, eventLock: boolean): string {
  if (typeof eventLock !== 'boolean') throw invalid(`${app}: eventLock must be given (true or false)`);
  if (!APP_NAME.test(app)) throw invalid(`bad application name ${JSON.stringify(app)}`);
  if (!UUID.test(eventUuid)) throw invalid('Event-UUID must be a uuid');
  const head = `sendmsg\ncall-command: execute\nexecute-app-name: ${app}\nEvent-UUID: ${eventUuid}\n${eventLock ? 'event-lock: true\n' : ''}`;
  if (arg === undefined || arg === '') return `${head}\n`;
  checkLine('app argument', arg);
  return `${head}content-type: text/plain\ncontent-length: ${Buffer.byteLength(arg, 'utf8')}\n\n${arg}`;
}

export function sendmsgHangup(cause: string): string {
  if (!HANGUP_CAUSE.test(cause)) throw invalid(`bad hangup cause ${JSON.stringify(cause)}`);
  return `sendmsg\ncall-command: hangup\nhangup-cause: ${cause}\n\n`;
}

/** `set` app argument: `name=value`. */
export function setArg(name: string, value: string): string {
  if (!CHANNEL_VAR.test(name)) throw invalid(`bad channel variable name ${JSON.stringify(name)}`);
  return `${name}=${checkLine('variable value', value)}`;
}

/** Delimiters multiset may use instead of a space (`^^<d>` prefix), tried in order. */
const MULTISET_DELIMS = ['|', ';', '~', '!', '#'];

/**
 * `multiset` argument: `a=1 b=2`, or `^^|a=1|b=2` when a value holds a space (mod_dptools splits the list on one
 * delimiter character, which no item may contain).
 */
export function multisetArg(vars: ReadonlyArray<readonly [string, string]>): string {
  const items = vars.map(([name, value]) => setArg(name, value));
  if (items.every((i) => !i.includes(' '))) return items.join(' ');
  const delim = MULTISET_DELIMS.find((d) => items.every((i) => !i.includes(d)));
  if (!delim) throw invalid('multiset: every delimiter occurs in a value');
  return `^^${delim}${items.join(delim)}`;
}

/** `say` app argument: `<lang> <TYPE> PRONOUNCED <text>`. */
export function sayArg(lang: string, type: SayType, text: string): string {
  if (!/^[a-z]{2}(?:[_-][A-Za-z]{2,})?$/.test(lang)) throw invalid(`bad say language ${JSON.stringify(lang)}`);
  if (!SAY_TYPES.includes(type)) throw invalid(`bad say type ${JSON.stringify(type)}`);
  return `${lang} ${type} PRONOUNCED ${token('say text', text)}`;
}

/**
 * play_and_get_digits argument, in FreeSWITCH's order:
 * `min max tries timeout terminators prompt invalid_prompt var regex digit_timeout`.
 */
export function pagdArg(req: DigitsRequest): string {
  const min = int('min', req.min, 0);
  const max = int('max', req.max, Math.max(1, min));
  if (!VAR_NAME.test(req.variable)) throw invalid(`digits variable must match /^[a-z_]+$/: ${JSON.stringify(req.variable)}`);
  return [
    min,
    max,
    int('tries', req.tries, 1),
    int('timeoutMs', req.timeoutMs, 1),
    token('terminators', req.terminators),
    token('prompt', req.prompt),
    token('invalidPrompt', req.invalidPrompt),
    req.variable,
    token('regex', req.regex),
    int('digitTimeoutMs', req.digitTimeoutMs, 1),
  ].join(' ');
}

export function hangupCauseOrDefault(cause: string | undefined): string {
  return cause !== undefined && HANGUP_CAUSE.test(cause) ? cause : 'NORMAL_CLEARING';
}
