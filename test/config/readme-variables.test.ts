import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../../src/config/env.ts';

describe('README.md configuration', () => {
  it('documents every environment variable ccard reads, in a table row of its own', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const rows = readme.split('\n').filter((l) => l.startsWith('| `'));
    expect(CONFIG_VARIABLES.length).toBeGreaterThan(40);
    const missing = CONFIG_VARIABLES.filter((name) => !rows.some((row) => row.split('|')[1]!.includes(`\`${name}\``)));
    expect(missing).toEqual([]);
  });
});
