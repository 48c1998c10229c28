/**
 * Real prompt lengths for the simulator at real pacing: sounds/MANIFEST.txt lists every shipped prompt with its
 * duration. FreeSWITCH resolves `ccard/enter_pin.wav` against the channel's sound_prefix and rate folder
 * (<prefix>/<lang>/ccard/<rate>/enter_pin.wav); say builds `digits/5.wav`, `currency/dollars.wav` and the like.
 * Both are looked up here by their last folder and file name; anything else (tone_stream://, silence_stream://,
 * an unknown file) falls back to defaultSoundDurationMs.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultSoundDurationMs } from './session.ts';
import type { SimOptions } from './types.ts';

const MANIFEST = fileURLToPath(new URL('../../sounds/MANIFEST.txt', import.meta.url));

/** `folder/name.wav` -> ms (the first language in the manifest that has it, at any rate: lengths match across rates). */
export function loadSoundLengths(manifest = MANIFEST): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync(manifest, 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [path, dur] = line.split('\t');
    const m = /^([\d.]+)s$/.exec(dur ?? '');
    if (!path || !m) continue;
    const key = soundKey(path);
    if (!out.has(key)) out.set(key, Math.round(Number(m[1]) * 1000));
  }
  return out;
}

/** The last folder that is not a sample rate, and the file name: `en/ccard/16000/enter_pin.wav` -> `ccard/enter_pin.wav`. */
function soundKey(file: string): string {
  const parts = file.split('/').filter((p) => p && !/^\d+$/.test(p));
  return parts.slice(-2).join('/');
}

/** A soundDurationMs for SimOptions: the shipped prompts' real lengths. */
export function realSoundDurationMs(lengths: Map<string, number> = loadSoundLengths()): (file: string) => number {
  return (file) => lengths.get(soundKey(file)) ?? defaultSoundDurationMs(file);
}

/**
 * A call as a real FreeSWITCH plays it: real time (timeScale 1), prompts at their recorded lengths, DTMF digit by
 * digit at the recorded RFC2833 spacing (the default key timeline), and every leg's json_cdr POST (with jsonCdrUrl).
 */
export function realPacing(base: SimOptions): SimOptions {
  return { timeScale: 1, soundDurationMs: realSoundDurationMs(), jsonCdrAllLegs: true, ...base };
}
