import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const here = fileURLToPath(new URL('.', import.meta.url));

/** The console SPA: web/ -> dist/web/, served by ccard at / (operators) and /my (cardholders). */
export default defineConfig({
  root: here,
  base: '/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
  },
  server: {
    // `npx vite --config web/vite.config.ts` proxies the API to a running `ccard serve`.
    proxy: Object.fromEntries(['/v1', '/auth', '/selfcare', '/docs'].map((p) => [p, 'http://127.0.0.1:8041'])),
  },
});
