import { STATUS_CODES } from 'node:http';
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
  // A value PostgreSQL refuses (class 22: out of range, bad encoding, NUL): the input's fault, never a 500. The edge
  // checks (parseMoney, dateInput, the NUL guard) should catch these first; this is the net behind them.
  const pg = (err as { code?: unknown }).code;
  if (typeof pg === 'string' && /^22[0-9A-Z]{3}$/.test(pg)) {
    req.log.warn({ err }, 'value refused by the database');
    reply.code(400).send(errorBody('INVALID_INPUT', `a value was refused by the database: ${err.message.split('\n')[0]}`));
    return;
  }
  req.log.error({ err }, 'request failed');
  reply.code(500).send(errorBody('INTERNAL', 'internal error'));
}

const CLIENT_ERROR_TEXT: Record<number, string> = {
  400: 'bad request',
  408: 'request timeout',
  413: 'payload too large',
  414: 'URI too long',
  431: 'request header fields too large',
};

/**
 * Errors Node's HTTP parser raises before fastify sees a request (oversized headers: 431, malformed requests: 400,
 * header timeouts: 408), answered in the same { error: { code, message } } shape, then the connection is closed.
 */
export function apiClientErrorHandler(err: Error & { code?: string }, socket: import('node:net').Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const status =
    err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_URI_TOO_LONG' ? 414 : 400;
  const body = JSON.stringify(
    errorBody(status === 431 ? 'HEADERS_TOO_LARGE' : status === 408 ? 'TIMEOUT' : 'INVALID_INPUT', CLIENT_ERROR_TEXT[status] ?? 'bad request'),
  );
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
}
