/** The {{TOKEN}}s of the recorded templates (src/sim/templates) and how a call's values fill them. */

export interface Tokens {
  UUID: string;
  CORE_UUID: string;
  CALLER_LEG_UUID: string;
  CID_NUM: string;
  CID_NAME: string;
  DID: string;
  B_UUID?: string;
  DEST?: string;
}

/** Template text split at its {{TOKEN}}s: literal text at even indexes, token names at odd ones. */
const FILL_PARTS = new Map<string, string[]>();
const FILL_RE = /\{\{([A-Z_]+)\}\}/g;

export function fill(text: string, t: Tokens): string {
  let parts = FILL_PARTS.get(text);
  if (parts === undefined) {
    parts = [];
    let from = 0;
    for (const m of text.matchAll(FILL_RE)) {
      parts.push(text.slice(from, m.index), m[1]!);
      from = m.index! + m[0].length;
    }
    parts.push(text.slice(from));
    // templates are a fixed set; anything else (not expected) is not kept
    if (FILL_PARTS.size < 4096) FILL_PARTS.set(text, parts);
  }
  if (parts.length === 1) return text;
  let s = parts[0]!;
  for (let i = 1; i < parts.length; i += 2) {
    const k = parts[i]!;
    s += ((t as unknown as Record<string, string | undefined>)[k] ?? `{{${k}}}`) + parts[i + 1]!;
  }
  return s;
}
