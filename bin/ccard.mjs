#!/usr/bin/env node
// The operator command. Runs the compiled JavaScript in dist/ (`npm run build`). In a source checkout whose dist/ is
// missing or older than src/ (development), it runs the TypeScript sources through tsx instead, so the command
// never runs stale code.
import { existsSync } from 'node:fs';

const sources = existsSync(new URL('../src/main.ts', import.meta.url));
const { distIsFresh } = sources ? await import('../scripts/build-server.mjs') : { distIsFresh: () => true };
if (distIsFresh()) {
  await import('../dist/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
