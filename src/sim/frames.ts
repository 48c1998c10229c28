/**
 * How FreeSWITCH serializes headers on the outbound socket (plain and json, with the cached blocks events share)
 * and the frames it sends: events, command replies, api responses, disconnect notices. Header order follows the
 * recordings in test/fixtures/freeswitch (see README "Observations").
 */
import { cjsonString, fsUrlEncode } from './codec.ts';
import { fsGmt, fsStamp } from './clock.ts';
import type { Channel } from './channel.ts';

export type EventFormat = 'plain' | 'json';
export type Pairs = Array<[string, string]>;
/** One frame as pieces to write in order: per-event strings and cached Buffers shared between frames. */
export type FramePieces = Array<Buffer | string>;

/**
 * Headers serialized for one format, concatenable: json `,"k":"v"` per header (the leading comma of the
 * first header of an event is dropped by starting the body with `{"Event-Name":...`), plain `k: v\n`.
 */
export function serPairs(pairs: Pairs, format: EventFormat): string {
  let s = '';
  if (format === 'json') for (const [k, v] of pairs) s += jsonKey(k) + cjsonString(v);
  else for (const [k, v] of pairs) s += `${k}: ${fsUrlEncode(v)}\n`;
  return s;
}

/** `,"name":` per header name (a small fixed set, serialized once). */
const JSON_KEYS = new Map<string, string>();
function jsonKey(k: string): string {
  let f = JSON_KEYS.get(k);
  if (f === undefined) {
    f = ',' + cjsonString(k) + ':';
    if (JSON_KEYS.size < 10_000) JSON_KEYS.set(k, f);
  }
  return f;
}

/** One header serialized like serPairs([[k, v]], format). */
export function ser1(k: string, v: string, format: EventFormat): string {
  return format === 'json' ? jsonKey(k) + cjsonString(v) : `${k}: ${fsUrlEncode(v)}\n`;
}

/** Cache of serialized blocks that never change (Event-Calling-* per event, constant header runs). */
const STATIC_BLOCKS = new Map<string, string>();
export function staticBlock(key: string, format: EventFormat, pairs: () => Pairs): string {
  const k = `${format}\0${key}`;
  let b = STATIC_BLOCKS.get(k);
  if (b === undefined) STATIC_BLOCKS.set(k, (b = serPairs(pairs(), format)));
  return b;
}

/** A frame from a serialized body: the header block with the body's byte length, as one Buffer. */
export function frame(body: string, contentType: string): Buffer {
  return Buffer.from(`Content-Length: ${Buffer.byteLength(body, 'utf8')}\nContent-Type: ${contentType}\n\n${body}`, 'utf8');
}

/** The Event-Calling-* headers of an event kind (a key of CALLING), serialized once per format. */
const CALLING_BLOCKS: Record<EventFormat, Map<string, string>> = { json: new Map(), plain: new Map() };
export function callingBlock(calling: string, format: EventFormat): string {
  const m = CALLING_BLOCKS[format];
  let b = m.get(calling);
  if (b === undefined) {
    const [file, fn, line] = CALLING[calling]!;
    const pairs: Pairs = [
      ['Event-Calling-File', file],
      ['Event-Calling-Function', fn],
      ['Event-Calling-Line-Number', line],
    ];
    m.set(calling, (b = serPairs(pairs, format)));
  }
  return b;
}

/** Event-Date-Local and Event-Date-GMT (whole seconds), for the last second asked. */
let secondAt = NaN;
let secondJson: string | undefined;
let secondPlain: string | undefined;
export function secondBlock(us: number, format: EventFormat): string {
  const sec = Math.floor(us / 1e6);
  if (sec !== secondAt) {
    secondAt = sec;
    secondJson = secondPlain = undefined;
  }
  if (format === 'json') return (secondJson ??= ser1('Event-Date-Local', fsStamp(us), format) + ser1('Event-Date-GMT', fsGmt(us), format));
  return (secondPlain ??= ser1('Event-Date-Local', fsStamp(us), format) + ser1('Event-Date-GMT', fsGmt(us), format));
}

/** Event-Calling-File / Function / Line-Number per event, as recorded from FreeSWITCH 1.11. */
export const CALLING: Record<string, [string, string, string]> = {
  CHANNEL_DATA: ['mod_event_socket.c', 'parse_command', '2029'],
  CHANNEL_PARK: ['switch_ivr.c', 'switch_ivr_park', '1002'],
  CHANNEL_UNPARK: ['switch_ivr.c', 'switch_ivr_park', '1213'],
  CHANNEL_EXECUTE: ['switch_core_session.c', 'switch_core_session_exec', '2949'],
  CHANNEL_EXECUTE_COMPLETE: ['switch_core_session.c', 'switch_core_session_exec', '2972'],
  CHANNEL_ANSWER: ['switch_channel.c', 'switch_channel_perform_mark_answered', '3848'],
  CHANNEL_BRIDGE: ['switch_ivr_bridge.c', 'switch_ivr_multi_threaded_bridge', '1689'],
  CHANNEL_UNBRIDGE: ['switch_ivr_bridge.c', 'switch_ivr_multi_threaded_bridge', '1879'],
  CHANNEL_HANGUP: ['switch_channel.c', 'switch_channel_perform_hangup', '3447'],
  CHANNEL_STATE: ['switch_channel.c', 'switch_channel_perform_set_running_state', '2409'],
  CHANNEL_HANGUP_COMPLETE: ['switch_core_state_machine.c', 'switch_core_session_reporting_state', '943'],
  DTMF: ['switch_channel.c', 'switch_channel_dequeue_dtmf', '678'],
};

export const STATE_NUMBER: Record<string, string> = { CS_EXECUTE: '4', CS_HANGUP: '10', CS_REPORTING: '11' };


/** Serializes an event for the socket in the subscribed format (observation 2). */
export function serializeEvent(headers: Pairs, format: EventFormat): Buffer {
  if (format === 'json') {
    const [first, ...rest] = headers;
    const body = first ? '{' + cjsonString(first[0]) + ':' + cjsonString(first[1]) + serPairs(rest, 'json') + '}' : '{}';
    return frame(body, 'text/event-json');
  }
  return frame(serPairs(headers, 'plain') + '\n', 'text/event-plain');
}

export function commandReply(text: string): Buffer {
  return Buffer.from(`Content-Type: command/reply\nReply-Text: ${text}\n\n`);
}

export function apiResponse(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from(`Content-Type: api/response\nContent-Length: ${body.length}\n\n`), body]);
}

export const DISCONNECT_BODY = 'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n';

export function lingerNotice(ch: Channel): Buffer {
  return Buffer.from(
    `Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${ch.uuid}\nContent-Disposition: linger\n` +
      `Channel-Name: ${ch.name}\nLinger-Time: -1\nContent-Length: 0\n\n`,
  );
}

export function disconnectNotice(ch: Channel): Buffer {
  return Buffer.from(
    `Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${ch.uuid}\nContent-Disposition: disconnect\n` +
      `Content-Length: ${Buffer.byteLength(DISCONNECT_BODY)}\n\n${DISCONNECT_BODY}`,
  );
}
