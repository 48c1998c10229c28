/**
 * Every prompt the call flow can play, by file name (without extension). sounds/<lang>/ccard/<rate>/<name>.wav
 * must exist for every shipped language and both rates (8000, 16000); test/sounds checks it.
 * The English text is what scripts/make-sounds speaks; other languages translate it.
 */
export const PROMPTS = {
  welcome: 'Welcome.',
  enter_pin: 'Please enter your PIN, followed by the pound key.',
  invalid_pin: 'That PIN is not valid.',
  too_many_attempts: 'Too many attempts. Goodbye.',
  locked_out: 'Too many failed attempts. Please try again later. Goodbye.',
  card_unknown: 'This card is not valid.',
  card_disabled: 'This card has been disabled. Please contact customer care.',
  card_expired: 'This card has expired.',
  card_activated: 'Your card is now active.',
  no_balance: 'Your balance is too low to make a call.',
  insufficient_balance: 'Your balance is too low for a call to that destination.',
  too_many_calls: 'This card is already in use on another call.',
  try_again: 'Your call could not be set up. Please try again.',
  service_unavailable: 'The service is temporarily unavailable. Please try again later.',
  number_not_in_service: 'This access number is not in service.',
  you_have: 'You have',
  remaining_balance: 'Your remaining balance is',
  enter_destination: 'Please enter the number you wish to call, followed by the pound key. Press star to hear your balance.',
  invalid_destination: 'That number is not valid.',
  destination_not_allowed: 'Calls to that number are not allowed.',
  no_rate: 'Calls to that destination are not available.',
  destination_unprofitable: 'Calls to that destination cannot be made with this card.',
  call_can_last: 'This call can last up to',
  minutes: 'minutes',
  minute: 'minute',
  less_than_one_minute: 'This call can last less than one minute.',
  busy: 'The number you called is busy.',
  no_answer: 'There is no answer.',
  invalid_number: 'The number you dialled is not in service.',
  congestion: 'All circuits are busy. Please try again later.',
  call_failed: 'Your call could not be completed.',
  low_balance_warning: 'You have one minute remaining.',
  another_call: 'To make another call, press 1.',
  bind_cli_offer: 'To call from this phone without a PIN, press 1.',
  cli_bound: 'This phone is now registered with your card.',
  goodbye: 'Thank you for calling. Goodbye.',
  voucher_offer: 'To recharge your card with a voucher, press 0.',
  enter_voucher: 'Please enter the voucher number, followed by the pound key.',
  voucher_accepted: 'Your card has been recharged.',
  voucher_invalid: 'That voucher is not valid.',
  voucher_wrong_currency: 'That voucher cannot be used with this card.',
} as const;

export type PromptName = keyof typeof PROMPTS;

export const PROMPT_NAMES = Object.keys(PROMPTS) as PromptName[];

/** Languages shipped in sounds/. An access number's language must be one of these. */
export const LANGUAGES = ['en', 'es'] as const;
export type Language = (typeof LANGUAGES)[number];

/** The relative path FreeSWITCH resolves against the channel's sound_prefix (<prefix>/ccard/<rate>/<name>.wav). */
export const promptPath = (name: PromptName): string => `ccard/${name}.wav`;
