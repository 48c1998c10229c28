/** Dates and durations for people; amounts are shown as the API gives them (see money.ts). */
export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().slice(0, 16).replace('T', ' ');
}
export function date(iso: string | null | undefined): string {
  return iso ? iso.slice(0, 10) : '—';
}
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}
/** A maintenance fee as operators say it: "0.25 every 24 hours". */
export function maintenance(fee: string, hours: number | null): string {
  if (!hours || /^0(\.0+)?$/.test(fee)) return '—';
  return `${fee} every ${hours} hour${hours === 1 ? '' : 's'}`;
}
/**
 * The day after a YYYY-MM-DD date. The API's "to" is exclusive; the forms' "To" date is the last day included, as
 * people mean it ("from the 1st to the 6th").
 */
export function dayAfter(d: string | undefined): string | undefined {
  if (!d || !/^\d{4}-\d{2}-\d{2}$/.test(d)) return d;
  return new Date(Date.parse(`${d}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
}

/** A fresh idempotency key (one per dialog). */
export function newKey(): string {
  return crypto.randomUUID();
}
