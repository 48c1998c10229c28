import { fromPromise } from 'xstate';
import type { BridgeRequest, Call, DigitsRequest, SayType } from './call.ts';
import { promptPath, type PromptName } from './prompts.ts';
import type { CallContextInfo, CallServices, CardView, Reservation, ReserveHint } from './services.ts';
import type { BridgeResult } from './call.ts';
import { NO_SLICES, startSliceKeeper, type SliceKeeperInput } from './slices.ts';
import type { DeviceCallResult, DeviceClaims } from './device.ts';

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
 * Every effect of the flow. Call commands get the invoking state's AbortSignal, so leaving the state (a hangup,
 * an error elsewhere) aborts them. Service calls take no signal: their promises finish on their own.
 */
export const flowActors = {

  /**
   * Plays the items in order (one playback / say command each). They are all sent at once: FreeSWITCH queues the
   * executes of a socket and runs them one after the other, and the commands leave in one write.
   */
  announce: fromPromise<void, CallInput & { lang: string; items: Announcement[] }>(async ({ input, signal }) => {
    await playAll(input.call, input.lang, input.items, signal);
  }),
  /** Plays the preamble (if any) and collects digits: all sent at once, FreeSWITCH runs them in order. */
  collectDigits: fromPromise<
    { digits: string | undefined; success: boolean },
    CallInput & { req: DigitsRequest; lang?: string; preamble?: Announcement[] }
  >(async ({ input, signal }) => {
    const said = playAll(input.call, input.lang ?? 'en', input.preamble ?? [], signal);
    const [digits] = await Promise.all([input.call.playAndGetDigits(input.req, signal), said]);
    return digits;
  }),
  /** The access number (and the caller ID's card) and the lockout, looked up at once. */
  greet: fromPromise(
    async ({ input }: { input: ServicesInput & { did: string; callerId: string; cliCallerId: string | undefined; device?: DeviceClaims; ivrUuid?: string } }) => {
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
  ),
  /**
   * The preamble (the duration announcement) and the bridge leave in one write: FreeSWITCH plays the one, then runs
   * the other. A hangup during the announcement means the bridge never runs, which its result then says.
   */
  bridge: fromPromise<BridgeResult, CallInput & { req: BridgeRequest; lang: string; preamble: Announcement[]; slices?: SliceKeeperInput }>(
    async ({ input, signal }) => {
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
  ),
  /** Never aborted in practice (only the closing state invokes it) and never rejects. */
  hangup: fromPromise<void, CallInput>(({ input }) => input.call.hangup('NORMAL_CLEARING')),

  cardByCli: fromPromise(({ input }: { input: ServicesInput & { callerId: string } }) =>
    input.services.cardIdByCli(input.callerId),
  ),
  authorizeByPin: fromPromise(({ input }: { input: ServicesInput & { pin: string; did: string; callerId: string } }) =>
    input.services.authorizeByPin(input.pin, { did: input.did, callerId: input.callerId }),
  ),
  recordPinFailure: fromPromise(({ input }: { input: ServicesInput & { did: string; callerId: string } }) =>
    input.services.recordPinFailure(input.did, input.callerId),
  ),
  bindCli: fromPromise(({ input }: { input: ServicesInput & { callerId: string; cardId: string } }) =>
    input.services.bindCli(input.callerId, input.cardId),
  ),
  authorize: fromPromise(({ input }: { input: ServicesInput & { cardId: string } }) =>
    input.services.authorize(input.cardId),
  ),
  balance: fromPromise(({ input }: { input: ServicesInput & { cardId: string } }) => input.services.balance(input.cardId)),

  /** Rates the call and holds the cost of its longest affordable duration (see reserveCall). */
  reserve: fromPromise(
    ({ input }: { input: ServicesInput & { cardId: string; number: string; ctx: CallContextInfo; hint: ReserveHint } }) =>
      input.services.reserve(input.cardId, input.number, input.ctx, input.hint),
  ),
  /** Settling money: invoked only in states that ignore HANGUP, so it always runs to its end. */
  settle: fromPromise(
    ({ input }: { input: ServicesInput & { reservation: Reservation; bridge: BridgeResult | undefined } }) =>
      input.services.settle(input.reservation, input.bridge),
  ),
};
