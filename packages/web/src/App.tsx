/**
 * The shell: finds out whether the daemon is booting, needs its first-run
 * setup or has a session, then shows the signed-in pages under a header.
 */
import { useCallback, useEffect, useState, type ReactNode } from "react";
import type { Account, Problem, Status } from "@townos/client";
import { client, onSessionExpired, problemOf } from "./api.js";
import { ErrorBox, Spinner } from "./components.js";
import { t, type MessageKey } from "./messages.js";
import { Link, matchPath, navigate, useLocation } from "./router.js";
import { SessionContext, type Session } from "./session.js";
import { AppPage } from "./screens/AppPage.js";
import { Home } from "./screens/Home.js";
import { Login, Setup } from "./screens/Welcome.js";
import { PackagePage } from "./screens/PackagePage.js";
import { Store } from "./screens/Store.js";
import { Repositories } from "./screens/Repositories.js";
import { Audit, Network, Settings, Users } from "./screens/Admin.js";
import { Storage } from "./screens/Storage.js";
import { VmImages } from "./screens/VmImages.js";
import { Pages } from "./screens/Pages.js";
import { Monitoring } from "./screens/Monitoring.js";
import { Backups } from "./screens/Backups.js";
import { State } from "./screens/State.js";

type Phase =
  | { kind: "loading" }
  | { kind: "booting"; status: Status }
  | { kind: "unreachable"; problem: Problem }
  | { kind: "setup" }
  | { kind: "signedOut"; notice: "expired" | "loggedOut" | null }
  | { kind: "signedIn"; account: Account };

const BOOT_POLL_MS = 1000;

export function App() {
  const [phase, setPhase] = useState<Phase>({ kind: "loading" });

  const start = useCallback(async (): Promise<void> => {
    try {
      const status = await client.status();
      if (status.state !== "ready") {
        setPhase({ kind: "booting", status });
        return;
      }
      if (status.setupNeeded === true) {
        setPhase({ kind: "setup" });
        return;
      }
      const account = await client.me().catch((error: unknown) => {
        if (problemOf(error).code === "unauthenticated") return null;
        throw error;
      });
      setPhase(account ? { kind: "signedIn", account } : { kind: "signedOut", notice: null });
    } catch (error) {
      setPhase({ kind: "unreachable", problem: problemOf(error) });
    }
  }, []);

  useEffect(() => {
    void start();
  }, [start]);

  // While booting, ask again every second; a failed boot waits for a person.
  useEffect(() => {
    if (phase.kind !== "booting" || phase.status.state === "failed") return;
    const timer = window.setTimeout(() => void start(), BOOT_POLL_MS);
    return () => {
      window.clearTimeout(timer);
    };
  }, [phase, start]);

  useEffect(
    () =>
      onSessionExpired(() => {
        setPhase((current) =>
          current.kind === "signedIn" ? { kind: "signedOut", notice: "expired" } : current,
        );
      }),
    [],
  );

  const signedIn = useCallback((account: Account) => {
    setPhase({ kind: "signedIn", account });
  }, []);
  const logout = useCallback(() => {
    void client
      .logout()
      .catch(() => undefined)
      .then(() => {
        setPhase({ kind: "signedOut", notice: "loggedOut" });
        navigate("/login");
      });
  }, []);

  switch (phase.kind) {
    case "loading":
      return (
        <Centered>
          <Spinner />
        </Centered>
      );
    case "booting":
      return (
        <Centered>
          <h1>{phase.status.state === "failed" ? t("boot.failed") : t("boot.title")}</h1>
          {phase.status.state === "failed" ? (
            <ErrorBox
              problem={{
                type: "about:blank",
                title: t("boot.failed"),
                status: 503,
                detail: phase.status.error ?? "",
                code: "unavailable",
              }}
              onRetry={() => void start()}
            />
          ) : (
            <>
              <progress aria-label={t("boot.title")} />
              <p>{t("boot.step", { step: phase.status.step })}</p>
            </>
          )}
        </Centered>
      );
    case "unreachable":
      return (
        <Centered>
          <ErrorBox problem={phase.problem} onRetry={() => void start()} />
        </Centered>
      );
    case "setup":
      return (
        <Centered>
          <Setup onDone={signedIn} />
        </Centered>
      );
    case "signedOut":
      return (
        <Centered>
          <Login notice={phase.notice} onDone={signedIn} />
        </Centered>
      );
    case "signedIn":
      return <Shell account={phase.account} logout={logout} />;
  }
}

function Centered({ children }: { children: ReactNode }) {
  return (
    <main id="main" className="centered">
      <div className="centered-inner">
        <p className="brand">{t("app.name")}</p>
        {children}
      </div>
    </main>
  );
}

interface NavItem {
  to: string;
  label: MessageKey;
  admin?: boolean;
}

const NAV: NavItem[] = [
  { to: "/", label: "nav.home" },
  { to: "/store", label: "nav.store" },
  { to: "/storage", label: "nav.storage" },
  { to: "/vm-images", label: "nav.vmImages", admin: true },
  { to: "/pages", label: "nav.pages", admin: true },
  { to: "/monitoring", label: "nav.monitoring" },
  { to: "/backups", label: "nav.backups", admin: true },
  { to: "/state", label: "nav.state", admin: true },
  { to: "/repositories", label: "nav.repositories" },
  { to: "/users", label: "nav.users", admin: true },
  { to: "/audit", label: "nav.audit", admin: true },
  { to: "/settings", label: "nav.settings" },
  { to: "/network", label: "nav.network" },
];

function Shell({ account, logout }: { account: Account; logout: () => void }) {
  const location = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  const session: Session = { account, isAdmin: account.role === "admin", logout };
  const path = location.split("?")[0] ?? "/";

  // Signed in: the welcome pages lead home.
  useEffect(() => {
    if (path === "/login" || path === "/setup") navigate("/", { replace: true });
  }, [path]);
  useEffect(() => {
    setMenuOpen(false);
  }, [path]);

  // An app's page belongs to Home, where the apps are listed.
  const active = (to: string): boolean =>
    to === "/" ? path === "/" || path.startsWith("/apps/") : path.startsWith(to);
  return (
    <SessionContext.Provider value={session}>
      <a className="skip" href="#main">
        {t("nav.skip")}
      </a>
      <header className="topbar">
        <Link to="/" className="brand">
          {t("app.name")}
        </Link>
        <button
          type="button"
          className="menu-button"
          aria-expanded={menuOpen}
          aria-controls="main-nav"
          onClick={() => {
            setMenuOpen(!menuOpen);
          }}
        >
          {t("nav.open")}
        </button>
        <nav id="main-nav" aria-label={t("nav.label")} className={menuOpen ? "open" : ""}>
          <ul>
            {NAV.filter((item) => item.admin !== true || session.isAdmin).map((item) => (
              <li key={item.to}>
                <Link to={item.to} aria-current={active(item.to) ? "page" : undefined}>
                  {t(item.label)}
                </Link>
              </li>
            ))}
          </ul>
          <details className="user-menu">
            <summary>
              {account.username}
              {session.isAdmin ? ` (${t("user.admin")})` : ""}
            </summary>
            <div className="user-menu-body">
              <p>{t("user.menu", { name: account.username })}</p>
              <button type="button" onClick={logout}>
                {t("user.logout")}
              </button>
            </div>
          </details>
        </nav>
      </header>
      <main id="main" className="page">
        <Routes path={path} />
      </main>
    </SessionContext.Provider>
  );
}

function Routes({ path }: { path: string }) {
  let params: Record<string, string> | null;
  if (path === "/") return <Home />;
  if (path === "/store") return <Store />;
  if ((params = matchPath("/store/:repo/:name", path)))
    return <PackagePage key={path} repo={params["repo"] ?? ""} name={params["name"] ?? ""} />;
  if ((params = matchPath("/apps/:repo/:name", path)))
    return <AppPage key={path} repo={params["repo"] ?? ""} name={params["name"] ?? ""} />;
  if (path === "/repositories") return <Repositories />;
  if (path === "/storage") return <Storage />;
  if (path === "/vm-images") return <VmImages />;
  if (path === "/pages") return <Pages />;
  if (path === "/monitoring") return <Monitoring />;
  if (path === "/backups") return <Backups />;
  if (path === "/state") return <State />;
  if (path === "/users") return <Users />;
  if (path === "/audit") return <Audit />;
  if (path === "/settings") return <Settings />;
  if (path === "/network") return <Network />;
  if (path === "/login" || path === "/setup") return <Spinner />;
  return (
    <ErrorBox
      problem={{
        type: "about:blank",
        title: "Not found",
        status: 404,
        detail: t("common.notFound", { path }),
        code: "not_found",
      }}
    />
  );
}
