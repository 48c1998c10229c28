/** The files mod_say_en asks for (README i_say_currency): NUMBER, CURRENCY, TIME_MEASUREMENT; others digit by digit. */
function group(n: number): string[] {
  const out: string[] = [];
  const h = Math.floor(n / 100);
  const r = n % 100;
  if (h) out.push(`digits/${h}.wav`, 'digits/hundred.wav');
  if (r >= 10 && r < 20) out.push(`digits/${r}.wav`);
  else {
    if (r >= 20) out.push(`digits/${Math.floor(r / 10) * 10}.wav`);
    if (r % 10) out.push(`digits/${r % 10}.wav`);
  }
  return out;
}

export function sayCount(n: number): string[] {
  if (n === 0) return ['digits/0.wav'];
  const out: string[] = [];
  const m = Math.floor(n / 1e6);
  const th = Math.floor((n % 1e6) / 1000);
  const rest = n % 1000;
  if (m) out.push(...group(m), 'digits/million.wav');
  if (th) out.push(...group(th), 'digits/thousand.wav');
  if (rest) out.push(...group(rest));
  return out;
}

export function sayFiles(arg: string): string[] {
  const [, type = '', , ...rest] = arg.trim().split(/\s+/);
  const value = rest.join(' ');
  switch (type.toUpperCase()) {
    case 'NUMBER':
      return sayCount(Math.floor(Math.abs(Number(value) || 0)));
    case 'CURRENCY': {
      const neg = value.trim().startsWith('-');
      const [d = '0', c = '0'] = value.replace('-', '').split('.');
      const dollars = Number(d) || 0;
      const cents = Number((c + '0').slice(0, 2)) || 0;
      return [
        ...(neg ? ['currency/negative.wav'] : []),
        ...sayCount(dollars),
        dollars === 1 ? 'currency/dollar.wav' : 'currency/dollars.wav',
        'currency/and.wav',
        ...sayCount(cents),
        cents === 1 ? 'currency/cent.wav' : 'currency/cents.wav',
      ];
    }
    case 'TIME_MEASUREMENT': {
      const secs = Math.floor(Number(value) || 0);
      const parts: Array<[number, string]> = [
        [Math.floor(secs / 3600), 'hour'],
        [Math.floor((secs % 3600) / 60), 'minute'],
        [secs % 60, 'second'],
      ];
      return parts.flatMap(([n, u]) => [...sayCount(n), `time/${u}${n === 1 ? '' : 's'}.wav`]);
    }
    default:
      return [...value.replace(/[^0-9]/g, '')].map((d) => `digits/${d}.wav`);
  }
}
