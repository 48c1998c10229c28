/** Who is logged in, and what their role lets the pages offer (the server decides; this only hides buttons). */
import { createContext, useContext } from 'react';
import type { Me } from './api/types';

export interface Session extends Me {
  canChange: boolean;
  isAdmin: boolean;
}
export const SessionContext = createContext<Session | null>(null);
export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('no session');
  return s;
}
export function sessionOf(me: Me): Session {
  return { ...me, canChange: me.role !== 'viewer', isAdmin: me.role === 'admin' };
}
