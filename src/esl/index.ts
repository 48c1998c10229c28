/** Public surface of the ESL layer. */
export { createEslServer, UNUSED_EVENTS, type EslServer, type EslServerOptions } from './server.ts';
export { CallSession, DEFAULT_CALL_TIMEOUTS, callInfoFrom, parseCarrierCdr, type CallSessionOptions, type CallTimeouts } from './call-session.ts';
export { EslConnection, DEFAULT_COMMAND_TIMEOUT_MS, type CommandOptions, type CommandReply, type EslConnectionEvents, type ExecuteOptions } from './connection.ts';
export { EslEvent, FrameParser, safeDecode, toFrame, MAX_BODY_BYTES, MAX_HEADER_BYTES, type EslFrame, type RawFrame } from './parser.ts';
export * as commands from './commands.ts';
export { EslError, isEslError, type EslErrorCode } from './errors.ts';
