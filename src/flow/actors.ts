import type { BridgeRequest, Call, DigitsRequest, SayType } from './call.ts';
import { promptPath, type PromptName } from './prompts.ts';
import type { CallContextInfo, CallServices, CardView, Reservation, ReserveHint } from './services.ts';
import type { BridgeResult } from './call.ts';
import { NO_SLICES, startSliceKeeper, type SliceKeeperInput } from './slices.ts';
import type { DeviceCallResult, DeviceClaims } from './device.ts';
import type { EffectArgs } from './effects.ts';

/** One item of an announcement: a ccard prompt or a mod_say phrase. */
export type Announcement = { prompt: PromptName } | { say: SayType; text: string };

export const describeAnnouncement = (a: Announcement): string => ('prompt' in a ? a.prompt : `say:${a.say}:${a.text}`);

const play = (call: Call, lang: string, item: Announcement, signal: AbortSignal): Promise<void> =>
  'prompt' in item ? call.playback(promptPath(item.prompt), signal) : call.say(lang, item.say, item.text, signal);

/** Sends every item now (in order, so in one write) and resolves when all were played. */
const playAll = (call: Call, lang: string, items: readonly Announcement[], signal: AbortSignal): Promise<unknown> =>
  Promise.all(items.map((item) => play(call, lang, item, signal)));

interface CallInput {
  call: Call;
}
interface ServicesInput {
  services: CallServices;
}

/**
 * Every effect of the flow (run by effects.ts's EffectRunner). Call commands get the signal of the state that started
 * them, so leaving the state (a hangup, an error elsewhere) aborts them. Service calls take no signal: their promises
 * finish on their own.
 */
export const flowEffects = {

  /**
   * Plays the items in order (one playback / say command each). They are all sent at once: FreeSWITCH queues the
   * executes of a socket and runs them one after the other, and the commands leave in one write.
   */
  announce: async ({ input, signal }: EffectArgs<CallInput & { lang: string; items: Announcement[] }>): Promise<void> => {
    await playAll(input.call, input.lang, input.items, signal);
  },
  /** Plays the preamble (if any) and collects digits: all sent at once, FreeSWITCH runs them in order. */
  collectDigits: async ({
    input,
    signal,
  }: EffectArgs<CallInput & { req: DigitsRequest; lang?: string; preamble?: Announcement[] }>): Promise<{ digits: string | undefined; success: boolean }> => {
    const said = playAll(input.call, input.lang ?? 'en', input.preamble ?? [], signal);
    const [digits] = await Promise.all([input.call.playAndGetDigits(input.req, signal), said]);
    return digits;
  },
  /** The access number (and the caller ID's card) and the lockout, looked up at once. */
  greet: async ({ input }: { input: ServicesInput & { did: string; callerId: string; cliCallerId: string | undefined; device?: DeviceClaims; ivrUuid?: string } }) => {
    // A device call: its card and the device access number's settings instead (no lockout: no PIN is asked).
    if (input.device) {
      const device: DeviceCallResult = input.services.deviceCall ? await input.services.deviceCall(input.device, input.ivrUuid ?? '') : { ok: false, reason: 'no_access' };
      return { access: device.ok ? device.access : undefined, lockedOut: false, device };
    }
    const [access, lockedOut] = await Promise.all([
      input.services.accessNumber(input.did, input.cliCallerId),
      input.services.isLockedOut(input.did, input.callerId),
    ]);
    return { access, lockedOut, device: undefined as DeviceCallResult | undefined };
  },
  /**
   * The preamble (the duration announcement) and the bridge leave in one write: FreeSWITCH plays the one, then runs
   * the other. A hangup during the announcement means the bridge never runs, which its result then says.
   */
  bridge: async ({
    input,
    signal,
  }: EffectArgs<CallInput & { req: BridgeRequest; lang: string; preamble: Announcement[]; slices?: SliceKeeperInput }>): Promise<BridgeResult> => {
    playAll(input.call, input.lang, input.preamble, signal).catch(() => undefined);
    // Reservations in slices: the keeper grows the hold and re-arms the cap while the bridge runs, and dies with it.
    const keeper = input.slices ? startSliceKeeper(input.slices) : NO_SLICES;
    const stop = (): void => keeper.stop();
    signal.addEventListener('abort', stop, { once: true });
    try {
      const req = input.slices ? { ...input.req, onAnswered: keeper.onAnswered } : input.req;
      return await input.call.bridge(req, signal);
    } finally {
      signal.removeEventListener('abort', stop);
      keeper.stop();
    }
  },
  /** Never aborted in practice (only the closing state runs it) and never rejects. */
  hangup: ({ input }: { input: CallInput }): Promise<void> => input.call.hangup('NORMAL_CLEARING'),

  cardByCli: ({ input }: { input: ServicesInput & { callerId: string } }) =>
    input.services.cardIdByCli(input.callerId),
  authorizeByPin: ({ input }: { input: ServicesInput & { pin: string; did: string; callerId: string } }) =>
    input.services.authorizeByPin(input.pin, { did: input.did, callerId: input.callerId }),
  recordPinFailure: ({ input }: { input: ServicesInput & { did: string; callerId: string } }) =>
    input.services.recordPinFailure(input.did, input.callerId),
  bindCli: ({ input }: { input: ServicesInput & { callerId: string; cardId: string } }) =>
    input.services.bindCli(input.callerId, input.cardId),
  authorize: ({ input }: { input: ServicesInput & { cardId: string } }) =>
    input.services.authorize(input.cardId),
  balance: ({ input }: { input: ServicesInput & { cardId: string } }) => input.services.balance(input.cardId),

  /** Rates the call and holds the cost of its longest affordable duration (see reserveCall). */
  reserve: ({ input }: { input: ServicesInput & { cardId: string; number: string; ctx: CallContextInfo; hint: ReserveHint } }) =>
    input.services.reserve(input.cardId, input.number, input.ctx, input.hint),
  /** Settling money: run only in states that ignore HANGUP, so it always runs to its end. */
  settle: ({ input }: { input: ServicesInput & { reservation: Reservation; bridge: BridgeResult | undefined } }) =>
    input.services.settle(input.reservation, input.bridge),
};
