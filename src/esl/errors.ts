/** Every failure of the ESL layer is an EslError with a stable code. */
export type EslErrorCode =
  | 'ESL_TIMEOUT' // no reply / completion within the command's timeout
  | 'ESL_HANGUP' // the channel hung up before the command completed
  | 'ESL_SOCKET_CLOSED' // the socket closed (or a disconnect notice arrived) before completion
  | 'ESL_ABORTED' // the caller's AbortSignal fired
  | 'ESL_COMMAND_FAILED' // FreeSWITCH answered -ERR
  | 'ESL_PROTOCOL' // malformed or oversized frame: the connection is dropped
  | 'ESL_INVALID_ARGUMENT'; // refused before sending (newline in an app arg, bad variable name...)

export class EslError extends Error {
  constructor(
    readonly code: EslErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'EslError';
  }
}

export const isEslError = (err: unknown, code?: EslErrorCode): err is EslError =>
  err instanceof EslError && (code === undefined || err.code === code);
