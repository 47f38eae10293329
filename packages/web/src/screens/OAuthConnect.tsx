/**
 * The control of an `oauth` question: "Connect" asks the box to start the
 * account link, opens the provider's approval page in a new tab, and shows
 * how the link goes. The token stays in the box; the install names the link.
 */
import { useEffect, useState } from "react";
import type { OAuthFlow, Problem, VersionDetail } from "@townos/client";
import { client, problemOf } from "../api.js";
import { t } from "../messages.js";

/** How often the link's state is asked for while it waits for the approval. */
const WATCH_MS = 1500;

type Started = Pick<OAuthFlow, "id" | "state" | "error"> & { approveUrl: string };

export function OAuthConnect({
  detail,
  question,
  common,
  answeredBefore,
  onLinked,
}: {
  detail: VersionDetail;
  question: string;
  common: { id: string; "aria-invalid": boolean; "aria-describedby": string | undefined };
  /** The last install's answer is kept unless the account is linked again. */
  answeredBefore: boolean;
  /** The question's finished link, or undefined while there is none. */
  onLinked: (question: string, flowId: string | undefined) => void;
}) {
  const [flow, setFlow] = useState<Started>();
  const [problem, setProblem] = useState<Problem>();

  // One look per tick while pending; each answer is a new object, which schedules the next.
  useEffect(() => {
    if (flow?.state !== "pending") return;
    const timer = setTimeout(() => {
      client.oauthFlow(flow.id).then(
        (view) => {
          setFlow({ ...flow, state: view.state, error: view.error });
          if (view.state === "done") onLinked(question, view.id);
        },
        (error: unknown) => {
          setProblem(problemOf(error));
        },
      );
    }, WATCH_MS);
    return () => {
      clearTimeout(timer);
    };
  }, [flow, question, onLinked]);

  const connect = async (): Promise<void> => {
    setProblem(undefined);
    onLinked(question, undefined);
    // Opened during the click (a tab opened after the box answers would be blocked), without a way back to this page.
    const tab = window.open("", "_blank");
    if (tab) tab.opener = null;
    try {
      const started = await client.startOAuthFlow({
        repo: detail.repo,
        name: detail.name,
        version: detail.version,
        question,
      });
      setFlow(started);
      if (tab) tab.location.href = started.approveUrl;
    } catch (error) {
      tab?.close();
      setFlow(undefined);
      setProblem(problemOf(error));
    }
  };

  const status =
    flow === undefined
      ? answeredBefore
        ? t("oauth.linkedBefore")
        : t("oauth.notLinked")
      : flow.state === "pending"
        ? t("oauth.pending")
        : flow.state === "done"
          ? t("oauth.done")
          : flow.state === "expired"
            ? t("oauth.expired")
            : t("oauth.failed", { error: flow.error ?? "" });
  return (
    <>
      {/* The question's label names the group; the button keeps its own name. */}
      <span className="inline" id={common.id} role="group">
        <button
          type="button"
          aria-invalid={common["aria-invalid"]}
          aria-describedby={[`${common.id}-status`, common["aria-describedby"]]
            .filter((id) => id !== undefined)
            .join(" ")}
          disabled={flow?.state === "pending"}
          onClick={() => void connect()}
        >
          {flow === undefined ? t("oauth.connect") : t("oauth.again")}
        </button>
        <span
          id={`${common.id}-status`}
          role="status"
          className={flow?.state === "done" ? undefined : "muted"}
        >
          {status}
        </span>
      </span>
      {flow?.state === "pending" && (
        <p className="muted">
          <a href={flow.approveUrl} target="_blank" rel="noopener noreferrer">
            {t("oauth.openPage")}
          </a>
        </p>
      )}
      {problem && <p className="field-error">{problem.detail}</p>}
    </>
  );
}
