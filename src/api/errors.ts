import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AdminError } from '../store/admin/errors.ts';
import { BusyError } from '../store/bulk.ts';
import { ExportAbortedError } from '../store/admin/export-stream.ts';
import { MoneyFormatError } from '../money/money.ts';

/** Every error answer has the same body: { error: { code, message, details? } }. */
export interface ErrorBody {
  error: { code: string; message: string; details?: string[] };
}

export const errorBody = (code: string, message: string, details?: string[]): ErrorBody => ({
  error: { code, message, ...(details && { details }) },
});

export function apiErrorHandler(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): void {
  if (err instanceof AdminError) {
    if (err instanceof BusyError) reply.header('retry-after', String(err.retryAfterSec));
    reply.code(err.httpStatus).send(errorBody(err.code, err.message, err.details));
    return;
  }
  if (err instanceof MoneyFormatError) {
    reply.code(400).send(errorBody('INVALID_INPUT', err.message));
    return;
  }
  if (err instanceof ExportAbortedError) {
    // An export stopped before its first byte: the client left (nobody reads this) or the service is stopping.
    req.log.info({ reason: err.message }, 'export stopped before it started');
    reply.code(503).header('retry-after', '5').send(errorBody('BUSY', `${err.message}: try again in 5 s`));
    return;
  }
  if (/timeout exceeded when trying to connect/.test(err.message)) {
    // Every database connection of this kind of request is busy: a transient overload, not a bug.
    reply.code(503).header('retry-after', '5').send(errorBody('BUSY', 'the service is busy: try again in 5 s'));
    return;
  }
  const status = (err as FastifyError).statusCode ?? 500;
  if (status === 429) {
    reply.code(429).send(errorBody('RATE_LIMITED', err.message || 'too many requests'));
    return;
  }
  if (status >= 400 && status < 500) {
    const code = status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 408 ? 'REQUEST_TIMEOUT' : status === 404 ? 'NOT_FOUND' : 'INVALID_INPUT';
    reply.code(status).send(errorBody(code, err.message));
    return;
  }
  req.log.error({ err }, 'request failed');
  reply.code(500).send(errorBody('INTERNAL', 'internal error'));
}
