/**
 * Failures of an operator action, shared by the CLI (one-line message, non-zero exit) and the API
 * ({ error: { code, message } } with the matching HTTP status).
 */
export type AdminErrorCode =
  | 'INVALID_INPUT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'LOCKED'
  | 'IDEMPOTENCY_MISMATCH'
  | 'BUSY';

const HTTP_STATUS: Record<AdminErrorCode, number> = {
  INVALID_INPUT: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  IDEMPOTENCY_MISMATCH: 409,
  LOCKED: 429,
  BUSY: 503,
};

export class AdminError extends Error {
  readonly code: AdminErrorCode;
  /** Extra lines, e.g. every bad line of a rejected CSV. */
  readonly details?: string[];
  constructor(code: AdminErrorCode, message: string, details?: string[]) {
    super(message);
    this.code = code;
    if (details) this.details = details;
  }
  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }
}

export const invalid = (message: string) => new AdminError('INVALID_INPUT', message);
export const notFound = (message: string) => new AdminError('NOT_FOUND', message);
export const conflict = (message: string) => new AdminError('CONFLICT', message);

/** PostgreSQL error codes worth turning into operator messages. */
export function pgCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}
