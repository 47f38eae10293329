/**
 * Installing a package: typed answers (defaults, then the answers given last
 * time), a check of what the install will do, then its live progress.
 */
import { useCallback, useEffect, useState, type SyntheticEvent } from "react";
import type {
  AppInstallPreview,
  AppProgress,
  Problem,
  VersionDetail,
  InstallRequest,
} from "@townos/client";
import { client, problemOf, randomHex } from "../api.js";
import { ErrorBox, Modal } from "../components.js";
import { formatBytes, t, tOr, type MessageKey } from "../messages.js";
import { navigate } from "../router.js";
import { OAuthConnect } from "./OAuthConnect.js";
import {
  BYTE_FACTORS,
  BYTE_UNITS,
  DURATION_FACTORS,
  DURATION_UNITS,
  splitUnit,
  validate,
  type Answers,
  type FieldErrors,
} from "../answers.js";

type Question = VersionDetail["questions"][number];

/** Bytes as generated secrets are long: 32, like the daemon's. */
const SECRET_BYTES = 32;

export function InstallDialog({ detail, onClose }: { detail: VersionDetail; onClose: () => void }) {
  const [step, setStep] = useState<"answers" | "preview" | "progress">("answers");
  const [answers, setAnswers] = useState<Answers>(() =>
    Object.fromEntries(detail.questions.map((q) => [q.name, q.default ?? ""])),
  );
  const [errors, setErrors] = useState<FieldErrors>({});
  const [problem, setProblem] = useState<Problem>();
  const [preview, setPreview] = useState<AppInstallPreview>();
  const [progress, setProgress] = useState<AppProgress[]>([]);
  const [busy, setBusy] = useState(false);
  /** oauth question → its finished account link, whose token the box puts in. */
  const [links, setLinks] = useState<Record<string, string>>({});
  const onLinked = useCallback((question: string, flowId: string | undefined) => {
    setLinks(({ [question]: _replaced, ...others }) =>
      flowId === undefined ? others : { ...others, [question]: flowId },
    );
  }, []);

  // What was answered last time (a reinstall) beats the defaults.
  useEffect(() => {
    let live = true;
    client.lastAnswers(detail.repo, detail.name).then(
      (last) => {
        if (!live) return;
        setAnswers((current) => {
          const next = { ...current };
          for (const q of detail.questions) {
            const previous = last.answers[q.name];
            if (previous !== undefined) next[q.name] = previous;
          }
          return next;
        });
      },
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [detail]);

  const visible = detail.questions.filter((q) => q.showIf === null || answers[q.showIf] === "true");
  const linked = visible.filter((q) => links[q.name] !== undefined);
  const request: InstallRequest = {
    repo: detail.repo,
    name: detail.name,
    version: detail.version,
    answers: Object.fromEntries(
      visible.filter((q) => !linked.includes(q)).map((q) => [q.name, answers[q.name] ?? ""]),
    ),
    ...(linked.length === 0
      ? {}
      : { oauthFlows: Object.fromEntries(linked.map((q) => [q.name, links[q.name] ?? ""])) }),
  };

  const check = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    setProblem(undefined);
    const local = validate(
      visible.filter((q) => !linked.includes(q)),
      answers,
    );
    setErrors(local);
    if (Object.keys(local).length > 0) return;
    setBusy(true);
    try {
      const result = await client.previewInstall(request);
      if (result.questionsToAnswer.length > 0 || result.problems.length > 0) {
        // The daemon's own words at each field; a generic hint where it gave none.
        setErrors({
          ...Object.fromEntries(result.questionsToAnswer.map((q) => [q, t("install.checkAnswer")])),
          ...Object.fromEntries(
            result.answerProblems.flatMap((issue) =>
              issue.question === undefined ? [] : [[issue.question, issue.message]],
            ),
          ),
        });
        if (result.problems.length > 0) {
          setProblem({
            type: "about:blank",
            title: t("install.fixBelow"),
            status: 422,
            detail: "",
            code: "invalid_answers",
            issues: result.problems,
          });
        }
        return;
      }
      setPreview(result);
      setStep("preview");
    } catch (error) {
      showFailure(problemOf(error));
    } finally {
      setBusy(false);
    }
  };

  /** Issues about answers go to their fields; the rest to the box on top. */
  const showFailure = (failure: Problem): void => {
    const perField = (failure.issues ?? []).flatMap((issue) =>
      issue.question === undefined ? [] : [[issue.question, issue.message] as const],
    );
    if (perField.length > 0) {
      setErrors(Object.fromEntries(perField));
      setStep("answers");
    }
    setProblem(failure);
  };

  const install = async (): Promise<void> => {
    setStep("progress");
    setBusy(true);
    setProblem(undefined);
    try {
      const { app } = await client.changeApp({ action: "install", request }, (line) => {
        setProgress((lines) => [...lines, line]);
      });
      navigate(`/apps/${encodeURIComponent(app.repo)}/${encodeURIComponent(app.name)}`);
    } catch (error) {
      showFailure(problemOf(error));
    } finally {
      setBusy(false);
    }
  };

  const stepLabel = (key: MessageKey, mine: typeof step) => (
    <li aria-current={step === mine ? "step" : undefined}>{t(key)}</li>
  );

  return (
    <Modal
      title={t("install.title", { name: detail.name })}
      onClose={onClose}
      locked={step === "progress" && busy}
    >
      <ol className="steps">
        {stepLabel("install.stepAnswers", "answers")}
        {stepLabel("install.stepPreview", "preview")}
        {stepLabel("install.stepProgress", "progress")}
      </ol>
      {problem && <ErrorBox problem={problem} />}
      {step === "answers" && (
        <form className="form" noValidate onSubmit={(event) => void check(event)}>
          {detail.questions.length === 0 && <p>{t("pkg.noQuestions")}</p>}
          {detail.questions
            .filter((q) => q.showIf === null)
            .map((q) => (
              <div key={q.name}>
                <QuestionField
                  question={q}
                  value={answers[q.name] ?? ""}
                  error={errors[q.name]}
                  link={{ detail, onLinked }}
                  onChange={(value) => {
                    setAnswers({ ...answers, [q.name]: value });
                  }}
                />
                {q.type === "boolean" && answers[q.name] === "true" && (
                  <div className="group">
                    {detail.questions
                      .filter((child) => child.showIf === q.name)
                      .map((child) => (
                        <QuestionField
                          key={child.name}
                          question={child}
                          value={answers[child.name] ?? ""}
                          error={errors[child.name]}
                          link={{ detail, onLinked }}
                          onChange={(value) => {
                            setAnswers({ ...answers, [child.name]: value });
                          }}
                        />
                      ))}
                  </div>
                )}
              </div>
            ))}
          <div className="actions">
            <button type="button" onClick={onClose}>
              {t("common.cancel")}
            </button>
            <button type="submit" className="primary" disabled={busy}>
              {t("install.next")}
            </button>
          </div>
        </form>
      )}
      {step === "preview" && preview && (
        <div className="form">
          <PreviewSummary preview={preview} />
          <div className="actions">
            <button
              type="button"
              onClick={() => {
                setStep("answers");
              }}
            >
              {t("common.back")}
            </button>
            <button
              type="button"
              className="primary"
              disabled={!preview.disk.fits}
              onClick={() => void install()}
            >
              {t("install.confirm")}
            </button>
          </div>
        </div>
      )}
      {step === "progress" && (
        <div className="form">
          <p role="status">{busy ? t("install.progress") : t("install.done")}</p>
          <ProgressList lines={progress} />
          {!busy && (
            <div className="actions">
              <button type="button" onClick={onClose}>
                {t("common.close")}
              </button>
            </div>
          )}
        </div>
      )}
    </Modal>
  );
}

/** The steps of a change so far: each once, with its latest state and detail. */
export function ProgressList({ lines }: { lines: AppProgress[] }) {
  const steps = new Map<string, AppProgress>();
  for (const line of lines) steps.set(line.step, line);
  return (
    <ul className="progress-list" aria-live="polite">
      {[...steps.values()].map((line) => (
        <li key={line.step} className={line.state}>
          <span aria-hidden="true">{line.state === "done" ? "✓" : "…"}</span> {line.step}
          {line.detail !== undefined && <span className="muted"> {line.detail}</span>}
        </li>
      ))}
    </ul>
  );
}

function PreviewSummary({ preview }: { preview: AppInstallPreview }) {
  const { disk } = preview;
  return (
    <>
      <h3>{t("install.volumes")}</h3>
      {preview.volumes.length === 0 ? (
        <p>{t("install.noVolumes")}</p>
      ) : (
        <ul>
          {preview.volumes.map((v) => (
            <li key={v.volume}>
              {v.action === "reuse"
                ? t("install.volumeReuse", {
                    volume: v.name,
                    mountpoint: v.mountpoint,
                    from: v.from ?? "",
                  })
                : t("install.volumeNew", { volume: v.name, mountpoint: v.mountpoint })}
            </li>
          ))}
        </ul>
      )}
      <h3>{t("install.ports")}</h3>
      {preview.ports.length === 0 ? (
        <p>{t("install.noPorts")}</p>
      ) : (
        <ul>
          {preview.ports.map((p, index) => (
            <li key={index}>
              {t("install.port", {
                host: String(p.host ?? t("install.portAuto")),
                container: p.container,
                exposure: tOr(`exposure.${p.exposure}`, p.exposure),
              })}
            </li>
          ))}
        </ul>
      )}
      <h3>{t("install.disk")}</h3>
      <ul>
        {disk.quotaBytes > 0 && (
          <li>{t("install.diskQuota", { quota: formatBytes(disk.quotaBytes) })}</li>
        )}
        {disk.unboundedVolumes > 0 && (
          <li>{t("install.diskUnbounded", { count: disk.unboundedVolumes })}</li>
        )}
        {disk.freeBytes !== null && (
          <li>{t("install.diskFree", { free: formatBytes(disk.freeBytes) })}</li>
        )}
      </ul>
      {!disk.fits && <p className="field-error">{t("install.diskNoFit")}</p>}
    </>
  );
}

function QuestionField({
  question,
  value,
  error,
  link,
  onChange,
}: {
  question: Question;
  value: string;
  error: string | undefined;
  /** What an oauth question's Connect button needs. */
  link: {
    detail: VersionDetail;
    onLinked: (question: string, flowId: string | undefined) => void;
  };
  onChange: (value: string) => void;
}) {
  const id = `q-${question.name}`;
  const errorId = `${id}-error`;
  const common = {
    id,
    "aria-invalid": error !== undefined,
    "aria-describedby": error === undefined ? undefined : errorId,
  };
  const label = (
    <>
      {question.query}
      {question.optional && <span className="muted"> ({t("common.optional")})</span>}
    </>
  );
  const errorLine = error !== undefined && (
    <p id={errorId} className="field-error">
      {error}
    </p>
  );

  if (question.type === "boolean") {
    return (
      <div className={`field checkbox${error ? " invalid" : ""}`}>
        <input
          type="checkbox"
          {...common}
          checked={value === "true"}
          onChange={(e) => {
            onChange(e.target.checked ? "true" : "false");
          }}
        />
        <label htmlFor={id}>{label}</label>
        {errorLine}
      </div>
    );
  }

  let control;
  switch (question.type) {
    case "secret":
      control = <SecretInput common={common} value={value} onChange={onChange} />;
      break;
    case "oauth":
      control = (
        <OAuthConnect
          detail={link.detail}
          question={question.name}
          common={common}
          answeredBefore={value !== ""}
          onLinked={link.onLinked}
        />
      );
      break;
    case "port":
      control = (
        <span className="inline">
          <input
            {...common}
            inputMode="numeric"
            placeholder={t("install.portAuto")}
            value={value}
            onChange={(e) => {
              onChange(e.target.value.trim());
            }}
          />
          <button
            type="button"
            onClick={() => {
              onChange("");
            }}
          >
            {t("install.pickPort")}
          </button>
        </span>
      );
      break;
    case "bytes":
      control = (
        <UnitInput
          common={common}
          value={value}
          units={BYTE_UNITS}
          factors={BYTE_FACTORS}
          onChange={onChange}
        />
      );
      break;
    case "duration":
      control = (
        <UnitInput
          common={common}
          value={value}
          units={DURATION_UNITS}
          factors={DURATION_FACTORS}
          onChange={onChange}
        />
      );
      break;
    default:
      control = (
        <input
          {...common}
          placeholder={question.type === "hostname" ? t("install.portAuto") : undefined}
          value={value}
          onChange={(e) => {
            onChange(e.target.value);
          }}
        />
      );
  }
  return (
    <div className={`field${error ? " invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {control}
      {errorLine}
    </div>
  );
}

interface Common {
  id: string;
  "aria-invalid": boolean;
  "aria-describedby": string | undefined;
}

function SecretInput({
  common,
  value,
  onChange,
}: {
  common: Common;
  value: string;
  onChange: (value: string) => void;
}) {
  const [shown, setShown] = useState(false);
  return (
    <span className="inline">
      <input
        {...common}
        type={shown ? "text" : "password"}
        autoComplete="new-password"
        placeholder={t("install.secretAuto")}
        value={value}
        onChange={(e) => {
          onChange(e.target.value);
        }}
      />
      <button
        type="button"
        onClick={() => {
          setShown(!shown);
        }}
      >
        {shown ? t("common.hide") : t("common.show")}
      </button>
      <button
        type="button"
        onClick={() => {
          onChange(randomHex(SECRET_BYTES));
          setShown(true);
        }}
      >
        {t("install.generate")}
      </button>
    </span>
  );
}

/** A number with a unit (sizes, durations), kept as the daemon reads it: `10gb`, `30m`. */
function UnitInput({
  common,
  value,
  units,
  factors,
  onChange,
}: {
  common: Common;
  value: string;
  units: readonly string[];
  factors: Record<string, number>;
  onChange: (value: string) => void;
}) {
  const [amount, unit] = splitUnit(value, units, factors);
  return (
    <span className="inline">
      <input
        {...common}
        inputMode="decimal"
        value={amount}
        onChange={(e) => {
          onChange(e.target.value.trim() === "" ? "" : `${e.target.value}${unit}`);
        }}
      />
      <select
        aria-label={t("install.unit")}
        value={unit}
        onChange={(e) => {
          onChange(amount === "" ? "" : `${amount}${e.target.value}`);
        }}
      >
        {units.map((u) => (
          <option key={u} value={u}>
            {u.toUpperCase()}
          </option>
        ))}
      </select>
    </span>
  );
}
