import { describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureWebBuilt } from '../../src/app/web-build.ts';

describe('building the console on start', () => {
  it('uses a built console as it is, and never starts a build outside npm start / npm run demo', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ccard-webbuild-'));
    try {
      const lines: string[] = [];
      expect(ensureWebBuilt((l) => lines.push(l), { npm_lifecycle_event: 'test' }, dir)).toBe(false);
      expect(ensureWebBuilt((l) => lines.push(l), {}, dir)).toBe(false);
      expect(lines).toEqual(Array(2).fill('the web console is not built (npm run build:web): serving the API only'));
      await writeFile(path.join(dir, 'index.html'), '<!doctype html>');
      expect(ensureWebBuilt((l) => lines.push(l), { npm_lifecycle_event: 'start' }, dir)).toBe(true);
      expect(lines).toHaveLength(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
