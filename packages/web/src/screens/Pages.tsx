/**
 * Pages (administrators): static websites from an uploaded archive, a git
 * repository or a container image, optionally built first. Each page shows
 * its state (the step under way, or why the last deploy failed), its
 * addresses and versions; new versions upload with progress, and the build
 * log follows a deploy live.
 */
import { useEffect, useLayoutEffect, useRef, useState, type SyntheticEvent } from "react";
import type { PageInfo, PageLogLine, PageSourceType, Problem } from "@townos/client";
import { client, problemOf, useAction, useLoad } from "../api.js";
import { ErrorBox, HookUrl, Modal, Spinner, TextField } from "../components.js";
import { formatBytes, formatTime, t, type MessageKey } from "../messages.js";
import {
  createPageBody,
  EMPTY_PAGE_FORM,
  pageFactRows,
  pageStatus,
  type PageForm,
} from "../pages.js";
import { uploadWithProgress } from "../upload.js";
import { ManagedBadge, useManaged } from "../managed.js";

/** How often the list is read while a page deploys, and otherwise. */
const FAST_MS = 2000;
const SLOW_MS = 15_000;
/** Build log lines kept in the page: older ones scroll away. */
const MAX_LINES = 2000;
const ARCHIVES = ".tar,.tar.gz,.tgz,.tar.xz,.zip";

export function Pages() {
  const [deploying, setDeploying] = useState(false);
  const [creating, setCreating] = useState(false);
  const list = useLoad(() => client.pages(), "pages", deploying ? FAST_MS : SLOW_MS);
  const isManaged = useManaged();
  useEffect(() => {
    setDeploying(list.data?.items.some((page) => page.state === "deploying") ?? false);
  }, [list.data]);
  return (
    <>
      <div className="page-header">
        <h1>{t("pages.title")}</h1>
        <button
          type="button"
          className="primary"
          onClick={() => {
            setCreating(true);
          }}
        >
          {t("pages.create")}
        </button>
      </div>
      <p className="muted">{t("pages.intro")}</p>
      {list.error && <ErrorBox problem={list.error} onRetry={list.reload} />}
      {!list.data && !list.error && <Spinner />}
      {list.data?.items.length === 0 && <p className="card empty">{t("pages.empty")}</p>}
      <ul className="stack">
        {list.data?.items.map((page) => (
          <li key={page.name}>
            <PageCard page={page} managed={isManaged("page", page.name)} changed={list.reload} />
          </li>
        ))}
      </ul>
      {creating && (
        <CreatePage
          created={list.reload}
          onClose={() => {
            setCreating(false);
          }}
        />
      )}
    </>
  );
}

/** An upload's progress: bytes sent, then the daemon publishing the version. */
function UploadProgress({ sent, label }: { sent: { sent: number; total: number }; label: string }) {
  if (sent.total > 0 && sent.sent < sent.total) {
    return (
      <>
        <progress aria-label={label} value={sent.sent} max={sent.total} />
        <p role="status">
          {t("pages.uploadProgress", {
            sent: formatBytes(sent.sent),
            total: formatBytes(sent.total),
            percent: Math.floor((sent.sent / sent.total) * 100),
          })}
        </p>
      </>
    );
  }
  return (
    <>
      <progress aria-label={label} />
      <p role="status">{t("pages.publishing")}</p>
    </>
  );
}

/** What a page's card and its domains section show. */
interface PageProps {
  page: PageInfo;
  /** Declared in the state repository: the daemon refuses deleting it or changing its domains by hand. */
  managed: boolean;
  changed: () => void;
}

function PageCard({ page, managed, changed }: PageProps) {
  const { problem, busy, act } = useAction(changed);
  const [file, setFile] = useState<File>();
  const [sent, setSent] = useState<{ sent: number; total: number }>();
  const id = `page-${page.name}`;
  const status = pageStatus(page);
  const deploying = page.state === "deploying";

  const upload = async (event: SyntheticEvent<HTMLFormElement>): Promise<void> => {
    event.preventDefault();
    const form = event.currentTarget;
    if (!file) return;
    const done = await act(async () => {
      setSent({ sent: 0, total: file.size });
      try {
        await uploadWithProgress<PageInfo>(
          client.pageContentUrl(page.name),
          file,
          (done, total) => {
            setSent({ sent: done, total });
          },
        );
      } finally {
        setSent(undefined);
      }
    });
    if (done) {
      form.reset();
      setFile(undefined);
    }
  };
  const remove = (): void => {
    if (window.confirm(t("pages.deleteConfirm", { name: page.name }))) {
      void act(() => client.deletePage(page.name));
    }
  };

  return (
    <article className="card" aria-labelledby={id}>
      <div className="card-header">
        <h3 id={id} className="break">
          {page.name}
        </h3>
        <span className="inline">
          {managed && <ManagedBadge />}
          <span className={status.badge === "empty" ? "badge" : `badge badge-${status.badge}`}>
            {status.label}
          </span>
        </span>
      </div>
      {deploying && (
        <>
          <progress aria-label={t("pages.state.deploying")} />
          {status.detail !== null && <p role="status">{status.detail}</p>}
        </>
      )}
      {page.state === "failed" && (
        <div className="error-box" role="alert">
          <strong>{t("pages.failed")}</strong>
          {status.detail !== null && <p className="break">{status.detail}</p>}
          {page.current !== null && <p>{t("pages.failedKept")}</p>}
        </div>
      )}
      {page.state === "empty" && status.detail !== null && <p className="muted">{status.detail}</p>}
      {page.urls.length > 0 && (
        <ul className="links">
          {page.urls.map((url) => (
            <li key={url}>
              <a href={url} target="_blank" rel="noreferrer">
                {url}
              </a>
            </li>
          ))}
        </ul>
      )}
      <p className="muted">
        {page.updatedAt === null
          ? t("pages.neverUpdated")
          : t("pages.updated", { time: formatTime(page.updatedAt) })}
      </p>
      <dl className="notes">
        {pageFactRows(page).map(([label, value]) => (
          <div key={label}>
            <dt>{label}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
      <Domains page={page} managed={managed} changed={changed} />
      {page.source.type === "git" && (
        <HookUrl
          load={() => client.pageHook(page.name)}
          show={t("pages.hookShow")}
          hint={t("pages.hookHint")}
        />
      )}
      {page.source.type === "archive" && (
        <form className="inline" onSubmit={(event) => void upload(event)}>
          <label className="visually-hidden" htmlFor={`${id}-file`}>
            {t("pages.archive", { name: page.name })}
          </label>
          <input
            id={`${id}-file`}
            type="file"
            accept={ARCHIVES}
            onChange={(e) => {
              setFile(e.target.files?.[0]);
            }}
          />
          <button type="submit" disabled={!file || busy || deploying}>
            {t("pages.upload")}
          </button>
        </form>
      )}
      <div className="toolbar">
        {page.source.type !== "archive" && (
          <button
            type="button"
            disabled={busy || deploying}
            onClick={() => void act(() => client.rebuildPage(page.name))}
          >
            {t("pages.rebuild")}
          </button>
        )}
        <button
          type="button"
          disabled={busy || deploying || page.previous === null}
          onClick={() => void act(() => client.rollbackPage(page.name))}
        >
          {t("pages.rollback")}
        </button>
        <button type="button" className="danger" disabled={busy || managed} onClick={remove}>
          {t("pages.delete")}
        </button>
      </div>
      {sent && <UploadProgress sent={sent} label={t("pages.archive", { name: page.name })} />}
      {busy && !sent && <p role="status">{t("pages.working")}</p>}
      {/* A failed upload's reason is the card's failure already. */}
      {problem && !(page.state === "failed" && problem.detail === page.error) && (
        <ErrorBox problem={problem} />
      )}
      <BuildLog
        name={page.name}
        deploying={deploying}
        deployed={`${page.state} ${page.current?.id ?? ""} ${page.error ?? ""}`}
      />
    </article>
  );
}

function Domains({ page, managed, changed }: PageProps) {
  const [domain, setDomain] = useState("");
  const { problem, busy, act } = useAction(changed);
  const add = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    if (await act(() => client.addPageDomain(page.name, domain.trim()))) setDomain("");
  };
  return (
    <details>
      <summary>{t("pages.domains", { count: page.domains.length })}</summary>
      {page.domains.length === 0 ? (
        <p className="muted">{t("pages.noDomains")}</p>
      ) : (
        <ul>
          {page.domains.map((name) => (
            <li key={name}>
              <span className="break">{name}</span>{" "}
              <button
                type="button"
                className="small"
                aria-label={t("pages.removeDomain", { domain: name })}
                disabled={busy || managed}
                onClick={() => void act(() => client.removePageDomain(page.name, name))}
              >
                {t("common.remove")}
              </button>
            </li>
          ))}
        </ul>
      )}
      <form className="inline" onSubmit={(event) => void add(event)}>
        <label className="visually-hidden" htmlFor={`page-${page.name}-domain`}>
          {t("pages.domain")}
        </label>
        <input
          id={`page-${page.name}-domain`}
          placeholder="www.example.org"
          value={domain}
          onChange={(e) => {
            setDomain(e.target.value);
          }}
        />
        <button type="submit" disabled={busy || managed || domain.trim() === ""}>
          {t("pages.addDomain")}
        </button>
      </form>
      {problem && <ErrorBox problem={problem} />}
    </details>
  );
}

/**
 * The last deploy's log, shown on request and opened by itself when a deploy
 * starts: followed live while it runs, read once otherwise.
 */
function BuildLog({
  name,
  deploying,
  deployed,
}: {
  name: string;
  deploying: boolean;
  /** Changes when a deploy ended (or a version was swapped in): the log is read again. */
  deployed: string;
}) {
  const [open, setOpen] = useState(deploying);
  const [lines, setLines] = useState<PageLogLine[]>([]);
  const [truncated, setTruncated] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const [attempt, setAttempt] = useState(0);
  const box = useRef<HTMLPreElement>(null);

  useEffect(() => {
    if (deploying) setOpen(true);
  }, [deploying]);

  useEffect(() => {
    if (!open) return;
    const controller = new AbortController();
    setProblem(undefined);
    void (async () => {
      try {
        if (deploying) {
          setLines([]);
          setTruncated(false);
          for await (const event of client.followPageLog(name, controller.signal)) {
            if (event.type !== "line") break;
            setLines((current) => [...current.slice(-(MAX_LINES - 1)), event]);
          }
        } else {
          const log = await client.pageLog(name);
          if (controller.signal.aborted) return;
          setLines(log.items);
          setTruncated(log.truncated);
        }
      } catch (error) {
        if (!controller.signal.aborted) setProblem(problemOf(error));
      }
    })();
    return () => {
      controller.abort();
    };
  }, [name, open, deploying, deployed, attempt]);

  useLayoutEffect(() => {
    if (box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines.length]);

  return (
    <div>
      <button
        type="button"
        className="small"
        aria-expanded={open}
        onClick={() => {
          setOpen(!open);
        }}
      >
        {t("pages.log")}
      </button>
      {open && (
        <>
          {problem && (
            <ErrorBox
              problem={problem}
              onRetry={() => {
                setAttempt((n) => n + 1);
              }}
            />
          )}
          {truncated && <p className="muted">{t("pages.logTruncated")}</p>}
          <pre
            className="logs"
            ref={box}
            tabIndex={0}
            aria-label={t("pages.log")}
            aria-live={deploying ? "polite" : "off"}
          >
            {lines.length === 0
              ? t("pages.logEmpty")
              : lines.map((line, index) => (
                  <span
                    key={index}
                    className={
                      line.stream === "stderr"
                        ? "stderr"
                        : line.stream === "town"
                          ? "muted"
                          : undefined
                    }
                  >
                    {line.text}
                    {"\n"}
                  </span>
                ))}
          </pre>
        </>
      )}
    </div>
  );
}

const SOURCE_TYPES: { type: PageSourceType; label: MessageKey }[] = [
  { type: "archive", label: "pages.type.archive" },
  { type: "git", label: "pages.type.git" },
  { type: "image", label: "pages.type.image" },
];

/**
 * Creating a page: a git or image page starts deploying at once (its card
 * shows the progress); an archive page is created, then its file is sent.
 */
function CreatePage({ created, onClose }: { created: () => void; onClose: () => void }) {
  const [form, setForm] = useState<PageForm>(EMPTY_PAGE_FORM);
  const [file, setFile] = useState<File>();
  const [missing, setMissing] = useState<MessageKey>();
  const [problem, setProblem] = useState<Problem>();
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState<{ sent: number; total: number }>();
  /** Set once the page exists but its archive did not arrive: creating again would conflict. */
  const [orphan, setOrphan] = useState<string>();
  const field = (key: keyof PageForm) => (value: string) => {
    setForm({ ...form, [key]: value });
  };

  const submit = async (event: SyntheticEvent): Promise<void> => {
    event.preventDefault();
    const made = createPageBody(form);
    const gap =
      "missing" in made
        ? made.missing
        : form.type === "archive" && !file
          ? "pages.missing.archive"
          : undefined;
    setMissing(gap);
    if ("missing" in made || gap !== undefined) return;
    setBusy(true);
    setProblem(undefined);
    let name: string | undefined;
    try {
      name = (await client.createPage(made.body)).name;
      created();
      if (form.type === "archive" && file) {
        setSent({ sent: 0, total: file.size });
        await uploadWithProgress<PageInfo>(client.pageContentUrl(name), file, (done, total) => {
          setSent({ sent: done, total });
        });
      }
      onClose();
    } catch (error) {
      setProblem(problemOf(error));
      if (name !== undefined) setOrphan(name);
    } finally {
      setBusy(false);
      setSent(undefined);
      created();
    }
  };

  return (
    <Modal title={t("pages.createTitle")} onClose={onClose} locked={busy}>
      <form className="form" noValidate onSubmit={(event) => void submit(event)}>
        <TextField
          label={t("pages.name")}
          value={form.name}
          onChange={field("name")}
          placeholder="my-site"
          autoComplete="off"
          required
        />
        <fieldset>
          <legend>{t("pages.sourceType")}</legend>
          {SOURCE_TYPES.map(({ type, label }) => (
            <label key={type} className="choice">
              <input
                type="radio"
                name="page-source"
                checked={form.type === type}
                onChange={() => {
                  setForm({ ...form, type });
                }}
              />
              {t(label)}
            </label>
          ))}
        </fieldset>
        <div className="group">
          {form.type === "archive" && (
            <label>
              {t("pages.archiveFile")}
              <input
                type="file"
                accept={ARCHIVES}
                onChange={(e) => {
                  setFile(e.target.files?.[0]);
                }}
              />
            </label>
          )}
          {form.type === "git" && (
            <>
              <TextField
                label={t("pages.gitUrl")}
                value={form.url}
                onChange={field("url")}
                type="url"
                placeholder="https://git.example.org/me/site.git"
                autoComplete="off"
              />
              <TextField
                label={t("pages.branchOptional")}
                value={form.branch}
                onChange={field("branch")}
              />
            </>
          )}
          {form.type === "image" ? (
            <>
              <TextField
                label={t("pages.imageRef")}
                value={form.image}
                onChange={field("image")}
                placeholder="localhost/my-site:1"
              />
              <TextField
                label={t("pages.imagePath")}
                value={form.path}
                onChange={field("path")}
                placeholder="/usr/share/nginx/html"
              />
            </>
          ) : (
            <TextField
              label={t("pages.dirOptional")}
              value={form.dir}
              onChange={field("dir")}
              placeholder="public"
            />
          )}
        </div>
        <label className="choice">
          <input
            type="checkbox"
            checked={form.build}
            onChange={(e) => {
              setForm({ ...form, build: e.target.checked });
            }}
          />
          {t("pages.buildToggle")}
        </label>
        {form.build && (
          <div className="group">
            <TextField
              label={t("pages.buildImage")}
              value={form.buildImage}
              onChange={field("buildImage")}
              placeholder="localhost/hugo:latest"
            />
            <TextField
              label={t("pages.buildCommand")}
              value={form.buildCommand}
              onChange={field("buildCommand")}
              placeholder="hugo --minify"
            />
            <TextField
              label={t("pages.buildOutput")}
              value={form.output}
              onChange={field("output")}
              placeholder="public"
            />
          </div>
        )}
        <TextField
          label={t("pages.domainsOptional")}
          value={form.domains}
          onChange={field("domains")}
          placeholder="www.example.org"
        />
        {missing && (
          <p className="field-error" role="alert">
            {t(missing)}
          </p>
        )}
        {sent && <UploadProgress sent={sent} label={t("pages.archive", { name: form.name })} />}
        {orphan !== undefined && (
          <p className="field-error">{t("pages.createdNoContent", { name: orphan })}</p>
        )}
        {problem && <ErrorBox problem={problem} />}
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            {orphan === undefined ? t("common.cancel") : t("common.close")}
          </button>
          {orphan === undefined && (
            <button type="submit" className="primary" disabled={busy}>
              {t("pages.createSubmit")}
            </button>
          )}
        </div>
      </form>
    </Modal>
  );
}
