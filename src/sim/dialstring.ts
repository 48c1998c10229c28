/** Parses a bridge argument `{k=v,k='v w'}sofia/gateway/<gw>/<number>` (first leg only). */
export interface DialString {
  vars: Array<[string, string]>;
  endpoint: string;
  /** The dialled number: last path segment, without any @host part. */
  number: string;
}

export function parseDialString(arg: string): DialString {
  let s = arg.trim();
  const vars: Array<[string, string]> = [];
  if (s.startsWith('{') || s.startsWith('[')) {
    const close = s[0] === '{' ? '}' : ']';
    let i = 1;
    let key = '';
    let val = '';
    let inKey = true;
    let quote: string | null = null;
    const flush = () => {
      if (key.trim()) vars.push([key.trim(), val]);
      key = '';
      val = '';
      inKey = true;
    };
    for (; i < s.length; i++) {
      const c = s[i]!;
      if (quote) {
        if (c === quote) quote = null;
        else val += c;
      } else if (c === close) {
        flush();
        i++;
        break;
      } else if (c === ',') flush();
      else if (inKey && c === '=') inKey = false;
      else if (!inKey && (c === "'" || c === '"') && val === '') quote = c;
      else if (inKey) key += c;
      else val += c;
    }
    s = s.slice(i);
  }
  const endpoint = s.split(/[,|]/)[0]!;
  const last = endpoint.split('/').pop() ?? '';
  return { vars, endpoint, number: last.split('@')[0]! };
}
