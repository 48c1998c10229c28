/**
 * List state (filters, sort, page, columns) lives in the URL's query string, so a search can be bookmarked,
 * shared and survives a reload; the back button steps through searches.
 */
import { useCallback, useMemo } from 'react';
import { navigate, useLocation } from './router';

/** A value from the address when it is one of the allowed ones (a hand-edited address falls back to the default). */
export function oneOf<T extends string>(v: string | undefined, allowed: readonly T[]): T | undefined {
  return allowed.find((a) => a === v);
}

export function useUrlState(): [Record<string, string>, (patch: Record<string, string | undefined>, opts?: { replace?: boolean }) => void] {
  const { path, search } = useLocation();
  const state = useMemo(() => Object.fromEntries(new URLSearchParams(search)), [search]);
  const update = useCallback(
    (patch: Record<string, string | undefined>, opts: { replace?: boolean } = {}) => {
      const next = new URLSearchParams(location.search);
      for (const [k, v] of Object.entries(patch)) {
        if (v === undefined || v === '') next.delete(k);
        else next.set(k, v);
      }
      const qs = next.toString();
      navigate(path + (qs ? `?${qs}` : ''), opts);
    },
    [path],
  );
  return [state, update];
}
