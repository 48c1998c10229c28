import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTestDb, type TestDb } from '../helpers/env.ts';
import { buildApi } from '../../src/api/server.ts';
import { derivePinKeys } from '../../src/store/pin.ts';

let db: TestDb;
let app: FastifyInstance;
let bare: FastifyInstance;
let root: string;
const keys = derivePinKeys('web-test-secret-0123456789');
const INDEX = '<!doctype html><title>ccard console</title><div id="root"></div>';

beforeAll(async () => {
  db = await createTestDb();
  root = await mkdtemp(path.join(os.tmpdir(), 'ccard-web-'));
  await mkdir(path.join(root, 'assets'));
  await writeFile(path.join(root, 'index.html'), INDEX);
  await writeFile(path.join(root, 'assets', 'app-1234.js'), 'console.log(1)');
  await writeFile(path.join(root, 'favicon.svg'), '<svg/>');
  await writeFile(path.join(os.tmpdir(), 'ccard-web-outside.txt'), 'TOP-SECRET-CONTENT');
  app = buildApi({ pool: db.pool, pinKeys: keys, webRoot: root });
  bare = buildApi({ pool: db.pool, pinKeys: keys, webRoot: path.join(root, 'missing') });
  await Promise.all([app.ready(), bare.ready()]);
});
afterAll(async () => {
  await app?.close();
  await bare?.close();
  await rm(root, { recursive: true, force: true });
  await db?.drop();
});

describe('serving the console', () => {
  it('serves index.html at / and /my, and for every client route (SPA fallback)', async () => {
    for (const url of ['/', '/my', '/my/calls', '/cards', '/cards/300-000000001', '/series/new?x=1']) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(200);
      expect(r.body).toBe(INDEX);
      expect(r.headers['content-type']).toMatch(/^text\/html/);
      expect(r.headers['cache-control']).toBe('no-cache');
    }
  });

  it('serves built files, hashed assets cached for good', async () => {
    const js = await app.inject({ method: 'GET', url: '/assets/app-1234.js' });
    expect(js.statusCode).toBe(200);
    expect(js.body).toBe('console.log(1)');
    expect(js.headers['cache-control']).toMatch(/immutable/);
    expect((await app.inject({ method: 'GET', url: '/favicon.svg' })).statusCode).toBe(200);
  });

  it('answers JSON 404 for unknown API paths and missing assets, never the page', async () => {
    for (const url of ['/v1/nothing', '/auth/nothing', '/selfcare/nothing', '/assets/gone.js', '/missing.png', '/assets/x', '/nowhere', '/wp-admin/setup']) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(404);
      expect(r.json().error.code).toBe('NOT_FOUND');
    }
    expect((await app.inject({ method: 'POST', url: '/cards' })).statusCode).toBe(404);
  });

  it('never serves a file outside its folder', async () => {
    for (const url of ['/../ccard-web-outside.txt', '/%2e%2e/ccard-web-outside.txt', '/assets/..%2f..%2fccard-web-outside.txt']) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.body, url).not.toContain('TOP-SECRET-CONTENT');
    }
  });

  it('says how to build the console when it is missing, and keeps the API working', async () => {
    const r = await bare.inject({ method: 'GET', url: '/' });
    expect(r.statusCode).toBe(503);
    expect(r.body).toMatch(/npm run build:web/);
    expect((await bare.inject({ method: 'GET', url: '/docs/json' })).statusCode).toBe(200);
  });
});
