/**
 * POST /cdr receives every leg FreeSWITCH handled; most are not ccard's. The caller's (inbound) legs are answered
 * 'ignored' without touching the database; a leg that may be ccard's is always looked up (issue 14).
 */
import { describe, expect, it } from 'vitest';
import { ingestJsonCdr, type JsonCdrDeps } from '../../src/cdr/json-cdr.ts';
import { silentLog } from '../billing-service/fixtures.ts';
import { fixtureBody } from '../billing-service/fixtures.ts';

/** A pool that counts queries and knows no call. */
function countingDeps(): { deps: JsonCdrDeps; queries: string[] } {
  const queries: string[] = [];
  const pool = {
    query: async (q: string | { text: string }) => {
      queries.push(typeof q === 'string' ? q : q.text);
      return { rows: [], rowCount: 0 };
    },
  };
  return { deps: { pool, live: {}, logger: silentLog } as unknown as JsonCdrDeps, queries };
}

const direction = (body: string) => (JSON.parse(body) as { variables: { direction: string } }).variables.direction;

describe('json_cdr legs that are not ccard carrier legs', () => {
  it('an inbound leg without cc_call_id (the recorded IVR and carrier-side legs) is ignored with no query', async () => {
    for (const leg of ['047-', '049-']) {
      const body = fixtureBody(leg);
      expect(direction(body)).toBe('inbound');
      const { deps, queries } = countingDeps();
      expect(await ingestJsonCdr(deps, body)).toMatchObject({ status: 'ignored', reason: 'not_a_ccard_leg' });
      expect(queries).toEqual([]);
    }
  });

  it('an outbound leg, or any leg carrying cc_call_id, is still looked up', async () => {
    const outbound = fixtureBody('050-');
    expect(direction(outbound)).toBe('outbound');
    const a = countingDeps();
    expect(await ingestJsonCdr(a.deps, outbound)).toMatchObject({ status: 'ignored' });
    expect(a.queries.length).toBeGreaterThan(0);

    // an inbound leg that says cc_call_id (however it got there) is not skipped
    const doc = JSON.parse(fixtureBody('049-')) as { variables: Record<string, string> };
    doc.variables.cc_call_id = '1ec5a13c-ce58-42e5-945c-74e8c1b77a37';
    const b = countingDeps();
    expect(await ingestJsonCdr(b.deps, JSON.stringify(doc))).toMatchObject({ status: 'ignored' });
    expect(b.queries.length).toBeGreaterThan(0);
  });
});

describe('document framing', () => {
  it('blanks around the document, a byte-order mark included, are not an error; anything else malformed is refused', async () => {
    const body = fixtureBody('047-');
    for (const framed of [`\n  ${body}\r\n`, `\uFEFF${body}`, `${body}\u00a0`]) {
      const { deps } = countingDeps();
      expect(await ingestJsonCdr(deps, framed)).toMatchObject({ status: 'ignored', reason: 'not_a_ccard_leg' });
    }
    for (const bad of [body.slice(0, -1), `${body}}`, `x${body}`, '', '  ', '[]', '"cdr"', `\uFEFF`]) {
      const { deps, queries } = countingDeps();
      expect(await ingestJsonCdr(deps, bad)).toMatchObject({ status: 'invalid' });
      expect(queries).toEqual([]);
    }
  });
});
