import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cjsonString, cjsonStringLoop, fsUrlEncode, fsUrlEncodeBytes } from '../../src/sim/codec.ts';
import templates from '../../src/sim/templates/fs-templates.json' with { type: 'json' };
import { FIXTURES, splitFrames } from './recorded.ts';

/** Every string in the templates and in the recorded frames (header names and values, decoded). */
function corpus(): string[] {
  const out = new Set<string>();
  const walk = (x: unknown): void => {
    if (typeof x === 'string') out.add(x);
    else if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object') Object.entries(x).forEach(([k, v]) => (out.add(k), walk(v)));
  };
  walk(templates);
  for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.raw'))) {
    for (const fr of splitFrames(readFileSync(join(FIXTURES, f)))) {
      for (const [k, v] of fr.headers) out.add(k).add(v);
      if (!fr.body) continue;
      out.add(fr.body);
      try {
        walk(JSON.parse(fr.body));
      } catch {
        for (const line of fr.body.split('\n')) {
          const i = line.indexOf(': ');
          if (i < 0) continue;
          out.add(line.slice(0, i)).add(line.slice(i + 2));
          try {
            out.add(decodeURIComponent(line.slice(i + 2)));
          } catch {
            /* kept raw */
          }
        }
      }
    }
  }
  return [...out];
}

const TRICKY = [
  '',
  '%',
  '%4',
  '%41',
  '%4g',
  '%aF',
  'a%41b%%41%zz%',
  'x%4',
  '"q" \\ / \b\f\n\r\t \x00\x01\x1f\x7f',
  'Pröbe €😀 \u2028\u2029 \ufeff',
  'lone \ud800 x',
  'lone low \udc00',
  'pair \ud83d\ude00 then lone \ud83d',
  '{"a":"b"}',
];

describe('sim codec fast paths equal the reference encoders', () => {
  const strings = [...corpus(), ...TRICKY];

  it('JSON.stringify-based cjsonString == cJSON loop for every code point', () => {
    for (let c = 0; c <= 0xffff; c++) {
      const s = String.fromCharCode(c);
      if (cjsonString(s) !== cjsonStringLoop(s)) expect([c, cjsonString(s)]).toEqual([c, cjsonStringLoop(s)]);
    }
    for (const cp of [0x10000, 0x1f600, 0x10ffff]) expect(cjsonString(String.fromCodePoint(cp))).toBe(cjsonStringLoop(String.fromCodePoint(cp)));
    let all = '';
    for (let c = 0; c < 0xd800; c++) all += String.fromCharCode(c);
    expect(cjsonString(all)).toBe(cjsonStringLoop(all));
  });

  it('cjsonString == cJSON loop for every string in the templates and recordings', () => {
    expect(strings.length).toBeGreaterThan(1000);
    for (const s of strings) expect(cjsonString(s), JSON.stringify(s)).toBe(cjsonStringLoop(s));
  });

  it('fsUrlEncode (ASCII fast path) == byte-wise switch_url_encode', () => {
    for (let c = 0; c < 0x80; c++) {
      const s = `a${String.fromCharCode(c)}%4${String.fromCharCode(c)}%${String.fromCharCode(c)}F`;
      expect(fsUrlEncode(s)).toBe(fsUrlEncodeBytes(s));
    }
    for (const s of strings) expect(fsUrlEncode(s), JSON.stringify(s)).toBe(fsUrlEncodeBytes(s));
  });
});
