/**
 * The dashboard's one API client, on the page's origin. The daemon keeps the
 * browser's session in an HttpOnly cookie, so no token is held here; a 401
 * on any call (other than signing in) means the session ended.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, TownClient, type Problem } from "@townos/client";

const expiryListeners = new Set<() => void>();

/** Called whenever the daemon says the session is gone. */
export function onSessionExpired(listener: () => void): () => void {
  expiryListeners.add(listener);
  return () => expiryListeners.delete(listener);
}

const watchedFetch: typeof fetch = async (input, init) => {
  const response = await fetch(input, { ...init, credentials: "same-origin" });
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  // A wrong password is a 401 too: that one is the login form's to show.
  if (response.status === 401 && !/\/auth\/login$|\/setup$/.test(new URL(url).pathname)) {
    for (const listener of expiryListeners) listener();
  }
  return response;
};

export const client = new TownClient({ baseUrl: "", fetch: watchedFetch });

/** Any failure as a problem to show: ApiError carries one; anything else becomes one. */
export function problemOf(error: unknown): Problem {
  if (error instanceof ApiError) return error.problem;
  return {
    type: "about:blank",
    title: "Something went wrong",
    status: 0,
    detail: error instanceof Error ? error.message : String(error),
    code: "client",
  };
}

export interface Loaded<T> {
  data: T | undefined;
  error: Problem | undefined;
  loading: boolean;
  reload: () => void;
}

/**
 * Loads with `load` whenever `key` changes, and again on `reload()` or every
 * `refreshMs`; an answer that arrives after a newer request started is dropped.
 */
export function useLoad<T>(load: () => Promise<T>, key: string, refreshMs?: number): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Problem; loading: boolean }>({
    loading: true,
  });
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const reload = useCallback(() => {
    setTick((n) => n + 1);
  }, []);
  useEffect(() => {
    let live = true;
    setState((previous) => ({ ...previous, loading: true }));
    loadRef.current().then(
      (data) => {
        if (live) setState({ data, loading: false });
      },
      (error: unknown) => {
        if (live)
          setState((previous) => ({ ...previous, error: problemOf(error), loading: false }));
      },
    );
    return () => {
      live = false;
    };
  }, [key, tick]);
  useEffect(() => {
    if (refreshMs === undefined) return;
    const timer = window.setInterval(reload, refreshMs);
    return () => {
      window.clearInterval(timer);
    };
  }, [refreshMs, reload]);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/** Random bytes as hex, like the daemon's generated secrets. */
export function randomHex(bytes: number): string {
  const buffer = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(buffer, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * Runs one change at a time for a form or a button row: `busy` while it
 * runs, its failure kept in `problem` to show; `reload` (what the change
 * touched) runs afterwards either way. `act` says whether it went well.
 */
export function useAction(reload?: () => void) {
  const [problem, setProblem] = useState<Problem>();
  const [busy, setBusy] = useState(false);
  const act = async (work: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setProblem(undefined);
    try {
      await work();
      return true;
    } catch (error) {
      setProblem(problemOf(error));
      return false;
    } finally {
      setBusy(false);
      reload?.();
    }
  };
  return { problem, busy, act };
}
