/**
 * Storage: how volumes are kept, and every volume (apps', people's, kept
 * after uninstalls) with its use against its quota; administrators upload
 * archives into volumes, download them, snapshot, set quotas, create and
 * delete volumes.
 */
import { useState, type SyntheticEvent } from "react";
import type { Problem, StorageView, UploadResult, VolumeView } from "@townos/client";
import { uploadWithProgress } from "../upload.js";
import { client, problemOf, useAction, useLoad } from "../api.js";
import { ErrorBox, Section, Spinner, TextField } from "../components.js";
import { formatBytes, formatTime, t, type MessageKey } from "../messages.js";
import { useSession } from "../session.js";
import { ManagedBadge, useManaged } from "../managed.js";
import { declaredVolumeName } from "../state.js";

export function Storage() {
  const session = useSession();
  const storage = useLoad(() => client.storage(), "storage");
  const volumes = useLoad(() => client.volumes({ limit: 500 }), "volumes");
  const isManaged = useManaged();
  /** Declared in the state repository: the daemon refuses deleting it or setting its quota by hand. */
  const managed = (volume: VolumeView): boolean => {
    const declared = declaredVolumeName(volume);
    return declared !== undefined && isManaged("volume", declared);
  };
  return (
    <>
      <div className="page-header">
        <h1>{t("storage.title")}</h1>
      </div>
      {storage.error && <ErrorBox problem={storage.error} onRetry={storage.reload} />}
      {storage.data && (
        <Section title={t("storage.mode", { mode: storage.data.mode })}>
          <p>{storage.data.reason}</p>
          <ul>
            {storage.data.notes.map((note) => (
              <li key={note}>{note}</li>
            ))}
          </ul>
        </Section>
      )}
      <h2>{t("storage.volumes")}</h2>
      {volumes.error && <ErrorBox problem={volumes.error} onRetry={volumes.reload} />}
      {!volumes.data && !volumes.error && <Spinner />}
      {volumes.data?.items.length === 0 && <p className="card empty">{t("storage.empty")}</p>}
      <ul className="stack">
        {volumes.data?.items.map((volume) => (
          <li key={volume.name}>
            <VolumeCard
              volume={volume}
              storage={storage.data}
              admin={session.isAdmin}
              managed={managed(volume)}
              changed={volumes.reload}
            />
          </li>
        ))}
      </ul>
      {session.isAdmin && <CreateVolume created={volumes.reload} />}
    </>
  );
}

function VolumeCard({
  volume,
  storage,
  admin,
  managed,
  changed,
}: {
  volume: VolumeView;
  storage: StorageView | undefined;
  admin: boolean;
  managed: boolean;
  changed: () => void;
}) {
  const [busy, setBusy] = useState<MessageKey>();
  const [problem, setProblem] = useState<Problem>();
  const [uploaded, setUploaded] = useState<UploadResult>();
  const [sent, setSent] = useState<{ sent: number; total: number }>();
  const [file, setFile] = useState<File>();
  const [quota, setQuota] = useState("");
  const id = `volume-${volume.name}`;

  /** Runs one change; `busy` names it for the progress line. */
  const act = async (what: MessageKey, work: () => Promise<unknown>): Promise<void> => {
    setBusy(what);
    setProblem(undefined);
    try {
      await work();
      changed();
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(undefined);
    }
  };

  const upload = (event: SyntheticEvent): void => {
    event.preventDefault();
    if (!file) return;
    void act("storage.uploading", async () => {
      setSent({ sent: 0, total: file.size });
      try {
        setUploaded(
          await uploadWithProgress(client.volumeArchiveUrl(volume.name), file, (done, total) => {
            setSent({ sent: done, total });
          }),
        );
      } finally {
        setSent(undefined);
      }
    });
  };

  const remove = (): void => {
    if (window.confirm(t("storage.deleteConfirm", { name: volume.name }))) {
      void act("storage.deleting", () => client.removeVolume(volume.name));
    }
  };

  return (
    <article className="card" aria-labelledby={id}>
      <div className="card-header">
        <h3 id={id} className="break">
          {volume.name}
        </h3>
        <span className="inline">
          {managed && <ManagedBadge />}
          <span className="badge">{t(`storage.kind.${volume.kind}` as MessageKey)}</span>
        </span>
      </div>
      {volume.usedBy !== null && (
        <p className="muted">{t("storage.usedBy", { app: volume.usedBy })}</p>
      )}
      {volume.quota !== null ? (
        <>
          <meter
            min={0}
            max={volume.quota}
            value={volume.usedBytes}
            high={volume.quota * 0.9}
            aria-label={t("storage.usage", { name: volume.name })}
          />
          <p>
            {t("storage.usedOf", {
              used: formatBytes(volume.usedBytes),
              quota: formatBytes(volume.quota),
            })}
          </p>
        </>
      ) : (
        <p>{t("storage.used", { used: formatBytes(volume.usedBytes) })}</p>
      )}
      {volume.snapshots > 0 && (
        <Snapshots volume={volume.name} count={volume.snapshots} admin={admin} onChange={changed} />
      )}
      {admin && (
        <>
          <form className="inline" onSubmit={upload}>
            <label className="visually-hidden" htmlFor={`${id}-file`}>
              {t("storage.archive", { name: volume.name })}
            </label>
            <input
              id={`${id}-file`}
              type="file"
              accept=".tar,.tar.gz,.tgz,.tar.xz,.tar.bz2,.zip"
              onChange={(e) => {
                setFile(e.target.files?.[0]);
              }}
            />
            <button type="submit" disabled={!file || busy !== undefined}>
              {t("storage.upload")}
            </button>
          </form>
          <div className="toolbar">
            {/* A plain link: the browser streams the archive to disk, whatever its size. */}
            <a
              className="button"
              href={client.volumeArchiveUrl(volume.name)}
              download={`${volume.name}.tar.gz`}
            >
              {t("storage.download")}
            </a>
            <button
              type="button"
              disabled={busy !== undefined}
              onClick={() =>
                void act("storage.snapshotting", () => client.snapshotVolume(volume.name))
              }
            >
              {t("storage.snapshot")}
            </button>
            {storage?.capabilities.quotas === true && (
              <form
                className="inline"
                onSubmit={(event) => {
                  event.preventDefault();
                  void act("storage.settingQuota", () =>
                    client.setVolumeQuota(volume.name, quota.trim() === "" ? null : quota.trim()),
                  );
                }}
              >
                <label className="visually-hidden" htmlFor={`${id}-quota`}>
                  {t("storage.quota")}
                </label>
                <input
                  id={`${id}-quota`}
                  placeholder={t("storage.quotaPlaceholder")}
                  value={quota}
                  disabled={managed}
                  onChange={(e) => {
                    setQuota(e.target.value);
                  }}
                />
                <button type="submit" disabled={busy !== undefined || managed}>
                  {t("storage.setQuota")}
                </button>
              </form>
            )}
            {volume.usedBy === null && volume.kind !== "package" && (
              <button
                type="button"
                className="danger"
                disabled={busy !== undefined || managed}
                onClick={remove}
              >
                {t("storage.delete")}
              </button>
            )}
          </div>
        </>
      )}
      {busy !== undefined && (
        <>
          {sent && sent.total > 0 ? (
            <>
              <progress aria-label={t(busy)} value={sent.sent} max={sent.total} />
              <p role="status">
                {t("storage.uploadProgress", {
                  sent: formatBytes(sent.sent),
                  total: formatBytes(sent.total),
                  percent: Math.floor((sent.sent / sent.total) * 100),
                })}
              </p>
            </>
          ) : (
            <>
              <progress aria-label={t(busy)} />
              <p role="status">{t(busy)}</p>
            </>
          )}
        </>
      )}
      {uploaded && (
        <p role="status">
          {t("storage.uploaded", {
            entries: uploaded.entries,
            bytes: formatBytes(uploaded.bytes),
          })}
          {uploaded.refusedCount > 0 && (
            <span className="field-error">
              {" "}
              {t("storage.refused", {
                count: uploaded.refusedCount,
                paths: uploaded.refused.map((entry) => entry.path).join(", "),
              })}
            </span>
          )}
        </p>
      )}
      {problem && <ErrorBox problem={problem} />}
    </article>
  );
}

function CreateVolume({ created }: { created: () => void }) {
  const [name, setName] = useState("");
  const [quota, setQuota] = useState("");
  const { problem, busy, act } = useAction();
  const submit = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    await act(async () => {
      await client.createVolume({
        name: name.trim(),
        ...(quota.trim() === "" ? {} : { quota: quota.trim() }),
      });
      setName("");
      setQuota("");
      created();
    });
  };
  return (
    <Section title={t("storage.create")}>
      <form className="form" onSubmit={(event) => void submit(event)}>
        <TextField label={t("storage.name")} value={name} onChange={setName} required />
        <label>
          {t("storage.quotaOptional")}
          <input
            value={quota}
            placeholder={t("storage.quotaPlaceholder")}
            onChange={(e) => {
              setQuota(e.target.value);
            }}
          />
        </label>
        {problem && <ErrorBox problem={problem} />}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {t("storage.createSubmit")}
          </button>
        </div>
      </form>
    </Section>
  );
}

/** A volume's snapshots, loaded when opened; administrators may delete them. */
function Snapshots({
  volume,
  count,
  admin,
  onChange,
}: {
  volume: string;
  count: number;
  admin: boolean;
  onChange: () => void;
}) {
  const [open, setOpen] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const list = useLoad(
    () => (open ? client.volumeSnapshots(volume) : Promise.resolve([])),
    `snapshots:${volume}:${String(open)}:${count}`,
  );
  const remove = (name: string): void => {
    if (!window.confirm(t("storage.snapshotDeleteConfirm", { name }))) return;
    client.removeVolumeSnapshot(volume, name).then(onChange, (error: unknown) => {
      setProblem(problemOf(error));
    });
  };
  return (
    <details
      onToggle={(event) => {
        setOpen(event.currentTarget.open);
      }}
    >
      <summary>{t("storage.snapshots", { count })}</summary>
      {problem && <ErrorBox problem={problem} />}
      {list.error && <ErrorBox problem={list.error} />}
      <ul>
        {list.data?.map((snapshot) => (
          <li key={snapshot.name}>
            {snapshot.name} · {formatTime(snapshot.createdAt)}{" "}
            {admin && (
              <button
                type="button"
                className="danger"
                onClick={() => {
                  remove(snapshot.name);
                }}
              >
                {t("storage.snapshotDelete")}
              </button>
            )}
          </li>
        ))}
      </ul>
    </details>
  );
}
