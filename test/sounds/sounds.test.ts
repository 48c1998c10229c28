import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LANGUAGES, PROMPT_NAMES, PROMPTS, promptPath } from '../../src/flow/prompts.ts';

/**
 * The shipped sounds (scripts/make-sounds.sh): every prompt in every language at both rates, plus the files the
 * FreeSWITCH say modules request for CURRENCY, NUMBER (PRONOUNCED) and TIME_MEASUREMENT. Layout:
 * sounds/<lang>/<dir>/<rate>/<name>.wav, so FreeSWITCH resolves `<dir>/<name>.wav` against sound_prefix=sounds/<lang>.
 */
const SOUNDS = fileURLToPath(new URL('../../sounds/', import.meta.url));
const RATES = [8000, 16000] as const;

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i));

/** Requested by mod_say_en (en_say_general_count/play_group, en_say_money, en_say_time SST_TIME_MEASUREMENT). */
const SAY_EN = [
  ...[...range(0, 19), '20', '30', '40', '50', '60', '70', '80', '90', 'hundred', 'thousand', 'million'].map(
    (n) => `digits/${n}`,
  ),
  ...['dollar', 'dollars', 'cent', 'cents', 'and', 'negative'].map((n) => `currency/${n}`),
  ...['hour', 'hours', 'minute', 'minutes', 'second', 'seconds'].map((n) => `time/${n}`),
];

/** Requested by mod_say_es (same entry points; Spanish hundreds, veinti-, "y" between tens and units, un millón). */
const SAY_ES = [
  ...[
    ...range(0, 19),
    '20', 'veinti', '30', '40', '50', '60', '70', '80', '90',
    '100', 'hundred', 'hundreds', '500', '700', '900',
    'un', 'thousand', 'million', 'millions',
  ].map((n) => `digits/${n}`),
  ...['dollar', 'dollars', 'cent', 'cents', 'and', 'negative'].map((n) => `currency/${n}`),
  ...['hour', 'hours', 'minute', 'minutes', 'second', 'seconds'].map((n) => `time/${n}`),
];

const SAY: Record<string, string[]> = { en: SAY_EN, es: SAY_ES };

/**
 * Exactly the files mod_say_en asked for in the recorded call (test/fixtures/freeswitch, i_say_currency):
 * `say en CURRENCY PRONOUNCED 4.37`, `NUMBER PRONOUNCED 27`, `TIME_MEASUREMENT PRONOUNCED 1620`.
 */
const RECORDED_EN = [
  'digits/4', 'currency/dollars', 'currency/and', 'digits/30', 'digits/7', 'currency/cents',
  'digits/20', 'digits/7',
  'digits/0', 'time/hours', 'digits/20', 'digits/7', 'time/minutes', 'digits/0', 'time/seconds',
];

interface WavInfo {
  format: number;
  channels: number;
  sampleRate: number;
  byteRate: number;
  blockAlign: number;
  bitsPerSample: number;
  dataBytes: number;
  seconds: number;
  peak: number;
}

/** Minimal RIFF/WAVE reader: walks the chunks, reads `fmt ` and measures `data` (no dependency). */
function readWav(file: string): WavInfo {
  const buf = readFileSync(file);
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error(`${file}: not a RIFF/WAVE file`);
  }
  if (buf.readUInt32LE(4) !== buf.length - 8) throw new Error(`${file}: RIFF size ${buf.readUInt32LE(4)} != ${buf.length - 8}`);
  let fmt: Omit<WavInfo, 'dataBytes' | 'seconds' | 'peak'> | undefined;
  let data: Buffer | undefined;
  for (let off = 12; off + 8 <= buf.length; ) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (body + size > buf.length) throw new Error(`${file}: chunk ${id} runs past the end`);
    if (id === 'fmt ') {
      fmt = {
        format: buf.readUInt16LE(body),
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        byteRate: buf.readUInt32LE(body + 8),
        blockAlign: buf.readUInt16LE(body + 12),
        bitsPerSample: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      data = buf.subarray(body, body + size);
    }
    off = body + size + (size & 1);
  }
  if (!fmt) throw new Error(`${file}: no fmt chunk`);
  if (!data) throw new Error(`${file}: no data chunk`);
  let peak = 0;
  for (let i = 0; i + 1 < data.length; i += 2) peak = Math.max(peak, Math.abs(data.readInt16LE(i)));
  return { ...fmt, dataBytes: data.length, seconds: data.length / (fmt.byteRate || 1), peak };
}

function expectTelephonyWav(file: string, rate: number, minSeconds: number) {
  const w = readWav(file);
  expect(w.format, `${file}: WAVE_FORMAT_PCM`).toBe(1);
  expect(w.channels, `${file}: mono`).toBe(1);
  expect(w.bitsPerSample, `${file}: 16-bit`).toBe(16);
  expect(w.sampleRate, `${file}: sample rate`).toBe(rate);
  expect(w.blockAlign).toBe(2);
  expect(w.byteRate).toBe(rate * 2);
  expect(w.dataBytes % 2).toBe(0);
  expect(w.seconds, `${file}: duration`).toBeGreaterThanOrEqual(minSeconds);
  expect(w.seconds, `${file}: duration`).toBeLessThan(15);
  // Not silence: normalised to about -3 dBFS by make-sounds.
  expect(w.peak, `${file}: peak`).toBeGreaterThan(8000);
  return w;
}

const wav = (lang: string, rel: string, rate: number) => {
  const slash = rel.lastIndexOf('/');
  return join(SOUNDS, lang, rel.slice(0, slash), String(rate), `${rel.slice(slash + 1).replace(/\.wav$/, '')}.wav`);
};

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

describe('sounds/', () => {
  for (const lang of LANGUAGES) {
    describe(lang, () => {
      it('has every prompt at 8 kHz and 16 kHz as mono 16-bit PCM', () => {
        for (const name of PROMPT_NAMES) {
          for (const rate of RATES) {
            // promptPath is what the flow plays: ccard/<name>.wav -> <prefix>/ccard/<rate>/<name>.wav
            const w = expectTelephonyWav(wav(lang, promptPath(name), rate), rate, 0.3);
            // Sentences take longer than single words.
            if (PROMPTS[name].split(' ').length >= 4) expect(w.seconds).toBeGreaterThan(0.8);
          }
        }
      });

      it(`has the files mod_say_${lang} requests for CURRENCY, NUMBER and TIME_MEASUREMENT`, () => {
        for (const rel of SAY[lang]!) {
          for (const rate of RATES) expectTelephonyWav(wav(lang, rel, rate), rate, 0.15);
        }
      });

      it('has the same duration at both rates (one source, resampled)', () => {
        for (const rel of [...PROMPT_NAMES.map(promptPath), ...SAY[lang]!]) {
          const a = readWav(wav(lang, rel, 8000)).seconds;
          const b = readWav(wav(lang, rel, 16000)).seconds;
          expect(Math.abs(a - b), rel).toBeLessThan(0.01);
        }
      });
    });
  }

  it('covers every file mod_say_en requested in the recorded i_say_currency call', () => {
    for (const rel of RECORDED_EN) {
      expect(SAY_EN).toContain(rel);
      for (const rate of RATES) expectTelephonyWav(wav('en', rel, rate), rate, 0.15);
    }
  });

  it('MANIFEST.txt lists exactly the shipped WAV files, with their texts', () => {
    const manifest = readFileSync(join(SOUNDS, 'MANIFEST.txt'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split('\t'));
    const listed = manifest.map(([path]) => path!).sort();
    const shipped = walk(SOUNDS)
      .filter((p) => p.endsWith('.wav'))
      .map((p) => relative(SOUNDS, p).split('\\').join('/'))
      .sort();
    expect(listed).toEqual(shipped);
    const expected = LANGUAGES.length * RATES.length * (PROMPT_NAMES.length) + RATES.length * (SAY_EN.length + SAY_ES.length);
    expect(shipped).toHaveLength(expected);
    for (const [path, duration, text] of manifest) {
      expect(duration, path).toMatch(/^\d+\.\d{3}s$/);
      expect(text, path).toBeTruthy();
    }
    // English prompt texts are spoken verbatim from prompts.ts.
    const byPath = new Map(manifest.map(([p, , t]) => [p!, t!]));
    for (const name of PROMPT_NAMES) expect(byPath.get(`en/ccard/8000/${name}.wav`)).toBe(PROMPTS[name]);
  });

  it('stays small enough to commit (<= 15 MB)', () => {
    const bytes = walk(SOUNDS).reduce((sum, p) => sum + statSync(p).size, 0);
    expect(bytes).toBeLessThanOrEqual(15 * 1024 * 1024);
  });
});
