export { FreeSwitchSim } from './sim.ts';
export { carrier, defaultCarrier, REJECTS, type CarrierScript, type RejectCause } from './carrier.ts';
export { parseDialString, type DialString } from './dialstring.ts';
export { fsUrlEncode, fsUrlDecode, FrameSplitter, parseHeaderBlock, type RawFrame, type HeaderList } from './codec.ts';
export { defaultSoundDurationMs } from './session.ts';
export { sayFiles } from './say.ts';
export { parsePagdArgs, runPagd } from './pagd.ts';
export type * from './types.ts';
export type { EventFormat } from './channel.ts';
