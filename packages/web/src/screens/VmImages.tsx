/**
 * VM images (administrators): the base disks virtual machines start from,
 * with their sizes and where they came from; add one from a URL and watch it
 * download, or delete one no installed app uses.
 */
import { useEffect, useState, type SyntheticEvent } from "react";
import type { VmImage, VmImageDownload } from "@townos/client";
import { client, useAction, useLoad } from "../api.js";
import { ErrorBox, Section, Spinner, TextField } from "../components.js";
import { formatBytes, formatTime, t } from "../messages.js";
import { downloadText } from "../vm.js";

/** How often the list is read while a download runs, and otherwise. */
const FAST_MS = 1000;
const SLOW_MS = 15_000;

export function VmImages() {
  const [running, setRunning] = useState(false);
  const list = useLoad(() => client.vmImages(), "vm-images", running ? FAST_MS : SLOW_MS);
  useEffect(() => {
    setRunning(list.data?.downloads.some((d) => d.error === null) ?? false);
  }, [list.data]);
  return (
    <>
      <div className="page-header">
        <h1>{t("vmImages.title")}</h1>
      </div>
      <p className="muted">{t("vmImages.intro")}</p>
      {list.error && <ErrorBox problem={list.error} onRetry={list.reload} />}
      {!list.data && !list.error && <Spinner />}
      {list.data && list.data.downloads.length > 0 && (
        <ul className="stack">
          {list.data.downloads.map((download) => (
            <li key={download.name}>
              <DownloadCard download={download} changed={list.reload} />
            </li>
          ))}
        </ul>
      )}
      {list.data?.images.length === 0 && <p className="card empty">{t("vmImages.empty")}</p>}
      <ul className="stack">
        {list.data?.images.map((image) => (
          <li key={image.name}>
            <ImageCard image={image} changed={list.reload} />
          </li>
        ))}
      </ul>
      <AddImage added={list.reload} />
    </>
  );
}

function ImageCard({ image, changed }: { image: VmImage; changed: () => void }) {
  const { problem, busy, act } = useAction(changed);
  const id = `vm-image-${image.name}`;
  const remove = (): void => {
    if (window.confirm(t("vmImages.deleteConfirm", { name: image.name }))) {
      void act(() => client.removeVmImage(image.name));
    }
  };
  return (
    <article className="card" aria-labelledby={id}>
      <div className="card-header">
        <h3 id={id} className="break">
          {image.name}
        </h3>
        <span className="badge">{image.format}</span>
      </div>
      <p>
        {t("vmImages.sizes", {
          size: formatBytes(image.fileSize),
          virtual: formatBytes(image.virtualSize),
        })}
      </p>
      <p className="muted break">
        {image.source === null
          ? t("vmImages.noSource")
          : t("vmImages.source", { url: image.source })}{" "}
        · {t("vmImages.added", { time: formatTime(image.addedAt) })}
      </p>
      {image.usedBy.length > 0 && <p>{t("vmImages.usedBy", { apps: image.usedBy.join(", ") })}</p>}
      <div className="toolbar">
        <button type="button" className="danger" disabled={busy} onClick={remove}>
          {t("vmImages.delete")}
        </button>
      </div>
      {problem && <ErrorBox problem={problem} />}
    </article>
  );
}

function DownloadCard({ download, changed }: { download: VmImageDownload; changed: () => void }) {
  const { problem, busy, act } = useAction(changed);
  const id = `vm-download-${download.name}`;
  const total = download.totalBytes;
  return (
    <article className="card" aria-labelledby={id}>
      <div className="card-header">
        <h3 id={id} className="break">
          {download.name}
        </h3>
      </div>
      <p className="muted break">{t("vmImages.source", { url: download.url })}</p>
      {download.error === null ? (
        <>
          {download.phase === "download" && total !== null && total > 0 ? (
            <progress
              aria-label={t("vmImages.progress", { name: download.name })}
              value={download.receivedBytes}
              max={total}
            />
          ) : (
            <progress aria-label={t("vmImages.progress", { name: download.name })} />
          )}
          <p role="status">{downloadText(download)}</p>
        </>
      ) : (
        <>
          <div className="error-box" role="alert">
            <strong>{t("vmImages.failed")}</strong>
            <p>{download.error}</p>
          </div>
          <div className="toolbar">
            <button
              type="button"
              disabled={busy}
              onClick={() =>
                void act(() => client.addVmImage({ url: download.url, name: download.name }))
              }
            >
              {t("common.retry")}
            </button>
            <button
              type="button"
              disabled={busy}
              onClick={() => void act(() => client.removeVmImage(download.name))}
            >
              {t("vmImages.dismiss")}
            </button>
          </div>
        </>
      )}
      {problem && <ErrorBox problem={problem} />}
    </article>
  );
}

function AddImage({ added }: { added: () => void }) {
  const [url, setUrl] = useState("");
  const [name, setName] = useState("");
  const [sha256, setSha256] = useState("");
  const { problem, busy, act } = useAction(added);
  const submit = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    const done = await act(() =>
      client.addVmImage({
        url: url.trim(),
        ...(name.trim() === "" ? {} : { name: name.trim() }),
        ...(sha256.trim() === "" ? {} : { sha256: sha256.trim() }),
      }),
    );
    if (done) {
      setUrl("");
      setName("");
      setSha256("");
    }
  };
  return (
    <Section title={t("vmImages.add")}>
      <form className="form" onSubmit={(event) => void submit(event)}>
        <TextField
          label={t("vmImages.url")}
          value={url}
          onChange={setUrl}
          type="url"
          placeholder="https://…/disk.qcow2"
          required
        />
        <TextField label={t("vmImages.nameOptional")} value={name} onChange={setName} />
        <TextField label={t("vmImages.sha256Optional")} value={sha256} onChange={setSha256} />
        {problem && <ErrorBox problem={problem} />}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {t("vmImages.addSubmit")}
          </button>
        </div>
      </form>
    </Section>
  );
}
