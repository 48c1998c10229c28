/** The state sealed on the channel for a process that takes a call over (src/flow/resume.ts). */
import { describe, expect, it } from 'vitest';
import { openResume, resumeKey, sealResume } from '../../src/flow/resume.ts';

const key = resumeKey('secret-0123456789abcdef');
const ivr = '2e5a0914-572f-492b-91f7-e21f07baa210';
const callId = 'd0004b13-8661-4a02-ac6a-3b4ae546a2bf';

describe('resume seal', () => {
  it('round-trips each stage for the channel it was sealed on', () => {
    for (const s of [
      { stage: 'a' as const, cardId: '42', sessionCalls: 0 },
      { stage: 'r' as const, cardId: '42', callId, sessionCalls: 1 },
      { stage: 'm' as const, cardId: 'card-7', sessionCalls: 3 },
    ]) {
      const v = sealResume(key, ivr, s);
      expect(v).toMatch(/^[A-Za-z0-9._-]+$/);
      expect(openResume(key, ivr, v)).toEqual({ ...s, callId: s.stage === 'r' ? callId : undefined });
    }
  });

  it('refuses anything it did not seal for this channel: another uuid, another key, an edit, garbage', () => {
    const v = sealResume(key, ivr, { stage: 'a', cardId: '42', sessionCalls: 0 });
    expect(openResume(key, 'ffffffff-572f-492b-91f7-e21f07baa210', v)).toBeUndefined();
    expect(openResume(resumeKey('another-secret-0123456789'), ivr, v)).toBeUndefined();
    expect(openResume(key, ivr, v.replace('.42.', '.43.'))).toBeUndefined();
    expect(openResume(key, ivr, v.replace('1.a.', '1.m.'))).toBeUndefined();
    for (const bad of [undefined, '', 'x', '1.a.42.-.0.', `1.a.42.-.0.${'A'.repeat(32)}`, 'a'.repeat(500)]) expect(openResume(key, ivr, bad)).toBeUndefined();
    // No key configured: nothing is ever taken over.
    expect(openResume('', ivr, v)).toBeUndefined();
  });
});
