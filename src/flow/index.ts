export { runCallFlow, type RunFlowExtras } from './run.ts';
export { callMachine, type CallAttempt, type EndReason, type FlowOutcome, type FlowInput } from './machine.ts';
export { FLOW_DEFAULTS, resolveFlowOptions, type FlowOptions, type ResolvedFlowOptions } from './options.ts';
export { normaliseDestination, toE164, type NumberPlan, type NormaliseResult } from './number.ts';
export { buildDialString, DialStringError, type DialParts } from './dial-string.ts';
export { classifyBridge, OUTCOME_PROMPT, type BridgeOutcome } from './bridge-outcome.ts';
