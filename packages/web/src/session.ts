import { createContext, useContext } from "react";
import type { Account } from "@townos/client";

export interface Session {
  account: Account;
  isAdmin: boolean;
  logout: () => void;
}

export const SessionContext = createContext<Session | undefined>(undefined);

/** The signed-in account; only used inside the signed-in shell. */
export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside the signed-in shell");
  return session;
}

const TOUR_KEY = "town.tour";

/** The guided tour shows once, after the first-run setup, until dismissed. */
export const tour = {
  pending: (): boolean => localStorage.getItem(TOUR_KEY) === "show",
  start: (): void => {
    localStorage.setItem(TOUR_KEY, "show");
  },
  dismiss: (): void => {
    localStorage.removeItem(TOUR_KEY);
  },
};
