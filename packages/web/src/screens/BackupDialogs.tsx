import { useState, type SyntheticEvent } from "react";
import type { BackupPolicyView, BackupTargetKind } from "@townos/client";
import { client, useAction, useLoad } from "../api.js";
import { ErrorBox, Modal, SecretValue, TextField } from "../components.js";
import { t, type MessageKey } from "../messages.js";
import {
  BOX,
  EMPTY_TARGET_FORM,
  KEEP_FIELDS,
  KEEP_PRESETS,
  keepOf,
  keepPresetIndex,
  policyBody,
  policyForm,
  SCHEDULE_PRESETS,
  subjectWords,
  targetBody,
  type PolicyForm,
  type TargetForm,
} from "../backups.js";

const KINDS: BackupTargetKind[] = ["path", "btrfs", "restic"];

/** Adds a target; a restic password the daemon made is shown here once, until the person closes. */
export function AddTarget({ added, onClose }: { added: () => void; onClose: () => void }) {
  const [form, setForm] = useState<TargetForm>(EMPTY_TARGET_FORM);
  const [missing, setMissing] = useState<MessageKey>();
  const [madePassword, setMadePassword] = useState<string>();
  const { problem, busy, act } = useAction(added);
  const field =
    (key: "name" | "location" | "password" | "env") =>
    (value: string): void => {
      setForm({ ...form, [key]: value });
    };
  const submit = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    const body = targetBody(form);
    setMissing("missing" in body ? body.missing : undefined);
    if ("missing" in body) return;
    await act(async () => {
      const { password } = await client.addBackupTarget(body);
      // A made password is shown before the dialog may close: it is never shown again.
      if (password === null) onClose();
      else setMadePassword(password);
    });
  };

  if (madePassword !== undefined) {
    return (
      <Modal title={t("backups.addTargetTitle")} onClose={onClose}>
        <div className="form">
          <p role="alert">{t("backups.madePassword")}</p>
          <SecretValue value={madePassword} />
          <div className="actions">
            <button type="button" className="primary" onClick={onClose}>
              {t("backups.stored")}
            </button>
          </div>
        </div>
      </Modal>
    );
  }
  return (
    <Modal title={t("backups.addTargetTitle")} onClose={onClose} locked={busy}>
      <form className="form" noValidate onSubmit={(event) => void submit(event)}>
        <TextField
          label={t("backups.name")}
          value={form.name}
          onChange={field("name")}
          placeholder="usb-disk"
          autoComplete="off"
          required
        />
        <fieldset>
          <legend>{t("backups.kind")}</legend>
          {KINDS.map((kind) => (
            <label key={kind} className="choice">
              <input
                type="radio"
                name="target-kind"
                checked={form.kind === kind}
                onChange={() => {
                  setForm({ ...form, kind });
                }}
              />
              {t(`backups.kind.${kind}`)}
            </label>
          ))}
        </fieldset>
        <TextField
          label={t(`backups.location.${form.kind}`)}
          value={form.location}
          onChange={field("location")}
          placeholder={form.kind === "restic" ? "/mnt/usb/restic" : "/mnt/usb/town-backups"}
          autoComplete="off"
          required
        />
        {form.kind === "restic" && (
          <>
            <TextField
              label={t("backups.password")}
              type="password"
              autoComplete="new-password"
              value={form.password}
              onChange={field("password")}
            />
            <label>
              {t("backups.env")}
              <textarea
                rows={2}
                value={form.env}
                placeholder="AWS_ACCESS_KEY_ID=…"
                onChange={(e) => {
                  field("env")(e.target.value);
                }}
              />
            </label>
          </>
        )}
        {missing && (
          <p className="field-error" role="alert">
            {t(missing)}
          </p>
        )}
        {problem && <ErrorBox problem={problem} />}
        {busy && <progress aria-label={t("backups.addTargetTitle")} />}
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            {t("common.cancel")}
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {t("backups.add")}
          </button>
        </div>
      </form>
    </Modal>
  );
}

/** Sets a subject's schedule, retention and targets; `policy` null for a new subject. */
export function PolicyDialog({
  policy,
  targets,
  saved,
  onClose,
}: {
  policy: BackupPolicyView | null;
  targets: string[];
  saved: () => void;
  onClose: () => void;
}) {
  const [form, setForm] = useState<PolicyForm>(() =>
    policy
      ? policyForm(policy.subject, policy.schedule, policy.keep, policy.targets)
      : policyForm("", SCHEDULE_PRESETS[0]?.cron ?? "", KEEP_PRESETS[0]?.keep ?? {}, []),
  );
  const [missing, setMissing] = useState<MessageKey>();
  // Apart from the typed subject, so that the typing is kept when the choice changes back.
  const [wholeBox, setWholeBox] = useState(false);
  const { problem, busy, act } = useAction(saved);
  // Apps to pick from; a volume's name is typed.
  const apps = useLoad(() => client.apps({ limit: 500 }), "apps");
  const submit = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    const body = policyBody(wholeBox ? { ...form, subject: BOX } : form);
    setMissing("missing" in body ? body.missing : undefined);
    if ("missing" in body) return;
    if (await act(() => client.setBackupPolicy(body))) onClose();
  };
  const preset = SCHEDULE_PRESETS.find((p) => p.cron === form.schedule.trim());
  const keepPreset = keepPresetIndex(keepOf(form.keep));
  return (
    <Modal
      title={
        policy
          ? t("backups.policyTitle", { subject: subjectWords(policy.subject) })
          : t("backups.newPolicyTitle")
      }
      onClose={onClose}
      locked={busy}
    >
      <form className="form" noValidate onSubmit={(event) => void submit(event)}>
        {policy === null && (
          <fieldset>
            <legend>{t("backups.subjectKind")}</legend>
            <label className="choice">
              <input
                type="radio"
                name="policy-subject-kind"
                checked={!wholeBox}
                onChange={() => {
                  setWholeBox(false);
                }}
              />
              {t("backups.subjectKind.one")}
            </label>
            <label className="choice">
              <input
                type="radio"
                name="policy-subject-kind"
                checked={wholeBox}
                onChange={() => {
                  setWholeBox(true);
                }}
              />
              {t("backups.subjectKind.box")}
            </label>
          </fieldset>
        )}
        {policy === null && !wholeBox && (
          <>
            <TextField
              label={t("backups.subject")}
              value={form.subject}
              onChange={(subject) => {
                setForm({ ...form, subject });
              }}
              list="backup-subjects"
              placeholder="main/wiki"
              autoComplete="off"
              required
            />
            <datalist id="backup-subjects">
              {apps.data?.items.map((app) => (
                <option key={`${app.repo}/${app.name}`} value={`${app.repo}/${app.name}`} />
              ))}
            </datalist>
          </>
        )}
        <label>
          {t("backups.schedulePreset")}
          <select
            value={preset?.cron ?? ""}
            onChange={(e) => {
              if (e.target.value !== "") setForm({ ...form, schedule: e.target.value });
            }}
          >
            {SCHEDULE_PRESETS.map((p) => (
              <option key={p.cron} value={p.cron}>
                {t(p.label)}
              </option>
            ))}
            <option value="">{t("backups.schedule.custom")}</option>
          </select>
        </label>
        <TextField
          label={t("backups.schedule")}
          value={form.schedule}
          onChange={(schedule) => {
            setForm({ ...form, schedule });
          }}
          autoComplete="off"
        />
        <label>
          {t("backups.keepPreset")}
          <select
            value={keepPreset === -1 ? "" : String(keepPreset)}
            onChange={(e) => {
              const chosen = KEEP_PRESETS[Number(e.target.value)];
              if (e.target.value !== "" && chosen) {
                setForm(policyForm(form.subject, form.schedule, chosen.keep, form.targets));
              }
            }}
          >
            {KEEP_PRESETS.map((p, index) => (
              <option key={p.label} value={String(index)}>
                {t(p.label)}
              </option>
            ))}
            <option value="">{t("backups.schedule.custom")}</option>
          </select>
        </label>
        <fieldset className="keep-counts">
          <legend>{t("backups.keep")}</legend>
          {KEEP_FIELDS.map((kind) => (
            <TextField
              key={kind}
              label={t(`backups.keepField.${kind}`)}
              value={form.keep[kind]}
              inputMode="numeric"
              size={4}
              onChange={(count) => {
                setForm({ ...form, keep: { ...form.keep, [kind]: count } });
              }}
            />
          ))}
        </fieldset>
        <fieldset>
          <legend>{t("backups.sendTo")}</legend>
          {targets.length === 0 && <p className="muted">{t("backups.onlyHere")}</p>}
          {targets.map((name) => (
            <label key={name} className="choice">
              <input
                type="checkbox"
                checked={form.targets.includes(name)}
                onChange={(e) => {
                  setForm({
                    ...form,
                    targets: e.target.checked
                      ? [...form.targets, name]
                      : form.targets.filter((other) => other !== name),
                  });
                }}
              />
              {name}
            </label>
          ))}
        </fieldset>
        {missing && (
          <p className="field-error" role="alert">
            {t(missing)}
          </p>
        )}
        {problem && <ErrorBox problem={problem} />}
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            {t("common.cancel")}
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {t("common.save")}
          </button>
        </div>
      </form>
    </Modal>
  );
}
