import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A logged-in console session against an app built with buildApi: the cookie, the CSRF token, and a request helper. */
export interface ConsoleSession {
  cookie: string;
  csrf: string;
  role: string;
  req(method: Method, url: string, payload?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
}

export function cookieOf(res: LightMyRequestResponse): string {
  const set = res.headers['set-cookie'];
  const line = Array.isArray(set) ? set[0]! : String(set ?? '');
  return line.split(';')[0]!;
}

export async function login(app: FastifyInstance, login: string, password: string, headers: Record<string, string> = {}): Promise<ConsoleSession> {
  const r = await app.inject({ method: 'POST', url: '/auth/login', payload: { login, password }, headers });
  if (r.statusCode !== 200) throw new Error(`login ${login}: ${r.statusCode} ${r.body}`);
  const cookie = cookieOf(r);
  const { csrfToken, role } = r.json() as { csrfToken: string; role: string };
  return {
    cookie,
    csrf: csrfToken,
    role,
    req: (method, url, payload, extra = {}) =>
      app.inject({
        method,
        url,
        headers: { cookie, ...(method !== 'GET' && { 'x-csrf-token': csrfToken }), ...extra },
        ...(payload !== undefined && { payload: payload as never }),
      }),
  };
}
