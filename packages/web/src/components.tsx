import { useEffect, useRef, useState, type InputHTMLAttributes, type ReactNode } from "react";
import type { AppView, Problem } from "@townos/client";
import { useAction } from "./api.js";
import { t, type MessageKey } from "./messages.js";

/** A failure as the API described it: title and detail, never a blank page. */
export function ErrorBox({ problem, onRetry }: { problem: Problem; onRetry?: () => void }) {
  return (
    <div className="error-box" role="alert">
      <strong>{problem.title}</strong>
      {problem.detail !== "" && <p>{problem.detail}</p>}
      {problem.issues && problem.issues.length > 0 && (
        <ul>
          {problem.issues.map((issue, index) => (
            <li key={index}>
              {(issue.question ?? issue.field) ? `${issue.question ?? issue.field}: ` : ""}
              {issue.message}
            </li>
          ))}
        </ul>
      )}
      {onRetry && (
        <button type="button" onClick={onRetry}>
          {t("common.retry")}
        </button>
      )}
    </div>
  );
}

export function Spinner({ label = t("common.loading") }: { label?: string }) {
  return (
    <p className="spinner" role="status">
      <span className="spinner-dot" aria-hidden="true" /> {label}
    </p>
  );
}

export type AppStatus = "running" | "stopped" | "failed" | "starting" | "held";

/** One word for an app's state; failing wins, since it needs a person. */
export function appStatus(app: AppView): AppStatus {
  if (app.lastError !== null) return "failed";
  if (app.held) return "held";
  if (!app.running) return "stopped";
  return app.containers.length > 0 && app.containers.every((c) => c.state === "running")
    ? "running"
    : "starting";
}

export function StatusBadge({ status }: { status: AppStatus }) {
  return <span className={`badge badge-${status}`}>{t(`status.${status}` as MessageKey)}</span>;
}

export function CopyButton({ text }: { text: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      className="small"
      onClick={() => {
        // Browsers give no clipboard to plain-HTTP pages other than localhost.
        const clipboard = navigator.clipboard as Clipboard | undefined;
        void clipboard?.writeText(text).then(() => {
          setCopied(true);
          window.setTimeout(() => {
            setCopied(false);
          }, 1500);
        });
      }}
    >
      {copied ? t("common.copied") : t("common.copy")}
    </button>
  );
}

/** A secret shown as dots until asked, with a copy button. */
export function SecretValue({ value }: { value: string }) {
  const [shown, setShown] = useState(false);
  return (
    <span className="secret">
      <code>{shown ? value : "••••••••"}</code>{" "}
      <button
        type="button"
        className="small"
        onClick={() => {
          setShown(!shown);
        }}
      >
        {shown ? t("common.hide") : t("common.show")}
      </button>{" "}
      <CopyButton text={value} />
    </span>
  );
}

/**
 * A webhook URL, fetched only when asked for: it holds a secret token. `load`
 * reads it; `show` labels the button, `hint` says what to do with it.
 */
export function HookUrl({
  load,
  show,
  hint,
}: {
  load: () => Promise<{ url: string }>;
  show: string;
  hint: string;
}) {
  const [url, setUrl] = useState<string>();
  const { problem, busy, act } = useAction();
  return (
    <div>
      {url === undefined ? (
        <button
          type="button"
          disabled={busy}
          onClick={() =>
            void act(async () => {
              setUrl((await load()).url);
            })
          }
        >
          {show}
        </button>
      ) : (
        <>
          <p className="muted">{hint}</p>
          <SecretValue value={url} />
        </>
      )}
      {problem && <ErrorBox problem={problem} />}
    </div>
  );
}

/**
 * A modal dialog on the native `<dialog>`: focus stays inside, Escape closes
 * it (unless `locked`, while something runs that must not be abandoned).
 */
export function Modal({
  title,
  onClose,
  locked = false,
  children,
}: {
  title: string;
  onClose: () => void;
  locked?: boolean;
  children: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  return (
    <dialog
      ref={ref}
      className="modal"
      aria-label={title}
      onCancel={(event) => {
        event.preventDefault();
        if (!locked) onClose();
      }}
    >
      <header className="modal-header">
        <h2>{title}</h2>
        <button
          type="button"
          className="icon"
          aria-label={t("common.close")}
          disabled={locked}
          onClick={onClose}
        >
          ×
        </button>
      </header>
      {children}
    </dialog>
  );
}

/** A titled section of a page. */
export function Section({
  title,
  children,
  actions,
}: {
  title: string;
  children: ReactNode;
  actions?: ReactNode;
}) {
  return (
    <section className="card">
      <div className="card-header">
        <h2>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

/** A labelled text input: the label names the field for screen readers and tests alike. */
export function TextField({
  label,
  value,
  onChange,
  ...input
}: {
  label: string;
  value: string;
  onChange: (value: string) => void;
} & Omit<InputHTMLAttributes<HTMLInputElement>, "value" | "onChange">) {
  return (
    <label>
      {label}
      <input
        {...input}
        value={value}
        onChange={(event) => {
          onChange(event.target.value);
        }}
      />
    </label>
  );
}
