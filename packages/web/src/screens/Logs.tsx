import { useEffect, useLayoutEffect, useRef, useState } from "react";
import type { LogEvent, Problem } from "@townos/client";
import { client, problemOf } from "../api.js";
import { ErrorBox, Section } from "../components.js";
import { t } from "../messages.js";

/** Lines kept in the page: older ones scroll away. */
const MAX_LINES = 2000;
const TAIL = 200;

/** An app's logs, live: the last lines, then new ones as they come; searchable. */
export function Logs({ repo, name }: { repo: string; name: string }) {
  const [events, setEvents] = useState<LogEvent[]>([]);
  const [problem, setProblem] = useState<Problem>();
  const [search, setSearch] = useState("");
  const [follow, setFollow] = useState(true);
  const [attempt, setAttempt] = useState(0);
  const box = useRef<HTMLPreElement>(null);

  useEffect(() => {
    const controller = new AbortController();
    setEvents([]);
    setProblem(undefined);
    void (async () => {
      try {
        for await (const event of client.followAppLogs(
          repo,
          name,
          { tail: TAIL },
          controller.signal,
        )) {
          setEvents((current) => [...current.slice(-(MAX_LINES - 1)), event]);
        }
      } catch (error) {
        if (!controller.signal.aborted) setProblem(problemOf(error));
      }
    })();
    return () => {
      controller.abort();
    };
  }, [repo, name, attempt]);

  const needle = search.trim().toLowerCase();
  const shown = events.filter(
    (event) =>
      needle === "" || (event.type === "line" && event.text.toLowerCase().includes(needle)),
  );

  useLayoutEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [shown.length, follow]);

  // Logs are for administrators unless a setting opens them: others get a word instead of an error.
  if (problem?.status === 403) {
    return (
      <Section title={t("logs.title")}>
        <p className="muted">{t("logs.adminOnly")}</p>
      </Section>
    );
  }
  return (
    <Section
      title={t("logs.title")}
      actions={
        <div className="toolbar">
          <label className="search">
            <span className="visually-hidden">{t("logs.search")}</span>
            <input
              type="search"
              placeholder={t("logs.search")}
              value={search}
              onChange={(e) => {
                setSearch(e.target.value);
              }}
            />
          </label>
          <label className="choice">
            <input
              type="checkbox"
              checked={follow}
              onChange={(e) => {
                setFollow(e.target.checked);
              }}
            />
            {t("logs.follow")}
          </label>
        </div>
      }
    >
      {problem && (
        <ErrorBox
          problem={problem}
          onRetry={() => {
            setAttempt((n) => n + 1);
          }}
        />
      )}
      <pre className="logs" ref={box} tabIndex={0} aria-label={t("logs.title")}>
        {shown.length === 0
          ? t("logs.empty")
          : shown.map((event, index) =>
              event.type === "line" ? (
                <span key={index} className={event.stream === "stderr" ? "stderr" : undefined}>
                  {event.text}
                  {"\n"}
                </span>
              ) : (
                <span key={index} className="muted">
                  {t("logs.container", { container: event.container, state: event.state })}
                  {"\n"}
                </span>
              ),
            )}
      </pre>
    </Section>
  );
}
