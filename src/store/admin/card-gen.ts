import { from as copyFrom } from 'pg-copy-streams';
import type { PoolClient } from 'pg';
import { encryptPin, generatePin, hashPin, type PinKeys } from '../pin.ts';
import { PinRowPool } from './pin-pool.ts';
import type { Micros } from '../../money/money.ts';

/** Arbitrary constant: card generation is serialised system-wide, so the PIN collision check cannot race. */
const CARD_GEN_LOCK = 7_413_101;
const CHUNK = 5_000;
const WINDOW = 8;
const MAX_ROUNDS = 50;

export interface GenerateCardsInput {
  seriesId: string;
  seriesNumber: string;
  count: number;
  pinLength: number;
  status: string;
  currency: string;
  initialBalance: Micros;
}

export type GenerationPhase = 'generate' | 'check' | 'insert' | 'ledger';
export type OnGenerationProgress = (phase: GenerationPhase, done: number, total: number) => void;

/**
 * Creates `count` cards of one series inside the caller's transaction. The PINs are streamed with COPY into a
 * temporary table (not WAL-logged), checked in SQL against every existing card and against each other, the
 * colliding ones regenerated until none remain, and the cards inserted set-based with serial
 * <series number>-<9 digits>. The initial balance gets one 'initial' ledger row per card, also set-based, so the
 * balance equals the ledger sum from the first moment. Memory stays constant whatever the count.
 */
export async function generateCards(
  client: PoolClient,
  keys: PinKeys,
  input: GenerateCardsInput,
  onProgress: OnGenerationProgress = () => {},
): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1)', [CARD_GEN_LOCK]);
  await client.query('CREATE TEMP TABLE card_gen (n INTEGER NOT NULL, pin_hash BYTEA NOT NULL, pin_cipher BYTEA NOT NULL) ON COMMIT DROP');

  const copy = client.query(copyFrom('COPY card_gen (n, pin_hash, pin_cipher) FROM STDIN'));
  const finished = new Promise<void>((resolve, reject) => {
    copy.on('finish', resolve);
    copy.on('error', reject);
  });
  const gen = new PinRowPool(keys, input.pinLength);
  try {
    // Chunks are requested ahead (a bounded window), written to COPY in order as they arrive.
    const window: Promise<string>[] = [];
    let next = 1;
    const request = () => {
      if (next > input.count) return;
      const end = Math.min(input.count, next + CHUNK - 1);
      window.push(gen.rows(next, end));
      next = end + 1;
    };
    for (let i = 0; i < WINDOW; i++) request();
    let done = 0;
    while (window.length) {
      const text = await window.shift()!;
      request();
      if (!copy.write(text)) {
        await new Promise<void>((resolve, reject) => {
          copy.once('drain', resolve);
          copy.once('error', reject);
        });
      }
      done += text.split('\n').length - 1;
      onProgress('generate', done, input.count);
    }
  } catch (err) {
    copy.destroy(err as Error);
    throw err;
  } finally {
    await gen.close();
  }
  copy.end();
  await finished;

  onProgress('check', 0, input.count);
  for (let round = 0; ; round++) {
    const bad = await client.query<{ n: number }>(
      `SELECT n FROM (
         SELECT n, pin_hash, row_number() OVER (PARTITION BY pin_hash ORDER BY n) AS k FROM card_gen
       ) g
       WHERE g.k > 1 OR EXISTS (SELECT 1 FROM cards c WHERE c.pin_hash = g.pin_hash)`,
    );
    if (bad.rowCount === 0) break;
    if (round >= MAX_ROUNDS) {
      throw new Error(`could not find ${bad.rowCount} unused PINs of ${input.pinLength} digits: use a longer PIN length`);
    }
    const ns = bad.rows.map((r) => r.n);
    const hashes: Buffer[] = [];
    const ciphers: Buffer[] = [];
    for (let i = 0; i < ns.length; i++) {
      const pin = generatePin(input.pinLength);
      hashes.push(hashPin(keys, pin));
      ciphers.push(encryptPin(keys, pin));
    }
    await client.query(
      `UPDATE card_gen g SET pin_hash = u.h, pin_cipher = u.c
       FROM unnest($1::int[], $2::bytea[], $3::bytea[]) AS u(n, h, c) WHERE g.n = u.n`,
      [ns, hashes, ciphers],
    );
  }

  onProgress('insert', 0, input.count);
  // Serial numbers are handed out in pin_hash order: the unique pin_hash index then grows by appending instead of
  // by a million random inserts (the biggest cost of a large series), and ids still follow serials. pin_hash is
  // an HMAC under the secret, so this order says nothing about the PINs.
  await client.query(`SET LOCAL work_mem = '256MB'`);
  await client.query(
    `INSERT INTO cards (series_id, serial, pin_hash, pin_cipher, status, currency, balance_micros)
     SELECT $1, $2 || '-' || lpad((row_number() OVER (ORDER BY pin_hash))::text, 9, '0'), pin_hash, pin_cipher, $3, $4, $5
     FROM card_gen ORDER BY pin_hash`,
    [input.seriesId, input.seriesNumber, input.status, input.currency, input.initialBalance.toString()],
  );
  if (input.initialBalance !== 0n) {
    onProgress('ledger', 0, input.count);
    await client.query(
      `INSERT INTO ledger (card_id, amount_micros, balance_after_micros, reason, ref, note)
       SELECT id, $2::bigint, $2::bigint, 'initial', 'series:' || $1::text, 'initial balance' FROM cards WHERE series_id = $1::bigint`,
      [input.seriesId, input.initialBalance.toString()],
    );
  }
  onProgress('ledger', input.count, input.count);
}
