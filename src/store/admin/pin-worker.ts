import { parentPort, workerData } from 'node:worker_threads';
import { pinRows } from './pin-rows.ts';

// A PIN generation thread (see card-gen.ts): answers each {id, start, end} with the chunk's COPY text.
const { hashKey, cipherKey, pinLength } = workerData as { hashKey: Uint8Array; cipherKey: Uint8Array; pinLength: number };
const keys = { hashKey: Buffer.from(hashKey), cipherKey: Buffer.from(cipherKey) };
parentPort!.on('message', (m: { id: number; start: number; end: number }) => {
  parentPort!.postMessage({ id: m.id, text: pinRows(keys, m.start, m.end, pinLength) });
});
