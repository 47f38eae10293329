/**
 * Test helpers: a smart-HTTP git server and small wrappers around the system
 * `git` for building the repositories it serves.
 *
 * The server is `git http-backend` (the CGI program that ships with git) run
 * behind a Node `http` server on 127.0.0.1 and an ephemeral port, so clients
 * talk to real git over the real protocol. Repositories are plain (non-bare)
 * repositories under `root`; `git http-backend` finds their `.git` itself.
 * Only fetching is served (no receive-pack): tests commit straight into the
 * served repository with `commitFiles`.
 */
import { execFile, spawn } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";

export interface BasicAuth {
  username: string;
  password: string;
}

export interface GitServerOptions {
  /** Directory whose subdirectories are served, `/<name>` → `<root>/<name>`. */
  root: string;
  /** When set, every request needs these credentials (HTTP basic auth). */
  auth?: BasicAuth;
}

export interface GitServer {
  readonly port: number;
  /** The URL of a repository below the root, e.g. `url("family.git")`. */
  url(name: string): string;
  /** Requests answered so far (401s included). */
  readonly requests: number;
  /** Response body bytes sent so far: how much a client downloaded. */
  readonly bytesSent: number;
  /** Stops the server; later calls return the same promise. */
  close(): Promise<void>;
}

/** Environment for every `git` the helpers run: no user or system config, fixed identity. */
const gitEnv: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_AUTHOR_NAME: "Town Test",
  GIT_AUTHOR_EMAIL: "test@town.invalid",
  GIT_COMMITTER_NAME: "Town Test",
  GIT_COMMITTER_EMAIL: "test@town.invalid",
  GIT_TERMINAL_PROMPT: "0",
};

export async function startGitServer(options: GitServerOptions): Promise<GitServer> {
  let requests = 0;
  let bytesSent = 0;
  const server = http.createServer((req, res) => {
    requests++;
    if (options.auth && !authorized(req.headers.authorization, options.auth)) {
      res.writeHead(401, {
        "WWW-Authenticate": 'Basic realm="git"',
        "Content-Type": "text/plain",
      });
      res.end("authentication required\n");
      return;
    }
    serveCgi(req, res, options, (n) => {
      bytesSent += n;
    }).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" });
      res.end(`git http-backend failed: ${String(error)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    port,
    url: (name) => `http://127.0.0.1:${port}/${name}`,
    get requests() {
      return requests;
    },
    get bytesSent() {
      return bytesSent;
    },
    close: () => {
      // Idempotent: a test may stop the server early to prove it is not needed.
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => {
          if (error) reject(error);
          else resolve();
        });
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function authorized(header: string | undefined, auth: BasicAuth): boolean {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? "");
  if (!match?.[1]) return false;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  return decoded === `${auth.username}:${auth.password}`;
}

/** Runs one request through `git http-backend` (CGI/1.1: environment in, headers + body out). */
async function serveCgi(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  options: GitServerOptions,
  onBytes: (count: number) => void,
): Promise<void> {
  const body: Buffer[] = [];
  for await (const chunk of req) body.push(chunk as Buffer);
  const input = Buffer.concat(body);
  const url = new URL(req.url ?? "/", "http://localhost");
  const env: NodeJS.ProcessEnv = {
    ...gitEnv,
    GIT_PROJECT_ROOT: options.root,
    GIT_HTTP_EXPORT_ALL: "1",
    GATEWAY_INTERFACE: "CGI/1.1",
    REQUEST_METHOD: req.method ?? "GET",
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    CONTENT_LENGTH: String(input.length),
    REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
  };
  if (req.headers["content-type"]) env.CONTENT_TYPE = req.headers["content-type"];
  if (req.headers["content-encoding"]) env.HTTP_CONTENT_ENCODING = req.headers["content-encoding"];
  const protocol = req.headers["git-protocol"];
  if (typeof protocol === "string") env.HTTP_GIT_PROTOCOL = protocol;
  if (options.auth) env.REMOTE_USER = options.auth.username;

  const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"] });
  const stderr: Buffer[] = [];
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
  child.stdin.on("error", () => undefined);
  child.stdin.end(input);
  res.on("close", () => {
    if (child.exitCode === null) child.kill();
  });

  let head = Buffer.alloc(0);
  let headersDone = false;
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  for await (const chunk of child.stdout) {
    if (headersDone) {
      onBytes((chunk as Buffer).length);
      res.write(chunk);
      continue;
    }
    head = Buffer.concat([head, chunk as Buffer]);
    const split = headerEnd(head);
    if (!split) continue;
    headersDone = true;
    const { status, headers } = parseCgiHeaders(head.subarray(0, split.index).toString("latin1"));
    res.writeHead(status, headers);
    const rest = head.subarray(split.index + split.length);
    onBytes(rest.length);
    res.write(rest);
  }
  const code = await exited;
  if (!headersDone) {
    const message = Buffer.concat(stderr).toString("utf8");
    throw new Error(`exit ${String(code)}: ${message}`);
  }
  res.end();
}

function headerEnd(buffer: Buffer): { index: number; length: number } | undefined {
  const crlf = buffer.indexOf("\r\n\r\n");
  const lf = buffer.indexOf("\n\n");
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { index: crlf, length: 4 };
  if (lf >= 0) return { index: lf, length: 2 };
  return undefined;
}

function parseCgiHeaders(text: string): { status: number; headers: Record<string, string> } {
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 500;
    else headers[name] = value;
  }
  return { status, headers };
}

/** Runs the system `git` in `cwd` and returns its trimmed standard output. */
export function git(cwd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      ["-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", ...args],
      { cwd, env: gitEnv, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`git ${args.join(" ")}: ${stderr || error.message}`));
        else resolve(stdout.trim());
      },
    );
  });
}

/** File contents by slash-separated path; `null` deletes the file. */
export type FileChanges = Record<string, string | Buffer | null>;

/**
 * Creates the repository `<root>/<name>` with one commit holding `files`, on
 * branch `main`, and returns its directory.
 */
export async function createRepo(
  root: string,
  name: string,
  files: Record<string, string | Buffer>,
): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  await git(dir, ["init", "--quiet"]);
  await commitFiles(dir, files, "initial commit");
  return dir;
}

/** Writes and deletes files in `repoDir`, commits everything, returns the new commit id. */
export async function commitFiles(
  repoDir: string,
  files: FileChanges,
  message: string,
): Promise<string> {
  for (const [path, content] of Object.entries(files)) {
    const full = join(repoDir, ...path.split("/"));
    if (content === null) {
      await rm(full, { force: true });
    } else {
      await mkdir(dirname(full), { recursive: true });
      await writeFile(full, content);
    }
  }
  await git(repoDir, ["add", "--all"]);
  await git(repoDir, ["commit", "--quiet", "--allow-empty", "-m", message]);
  return git(repoDir, ["rev-parse", "HEAD"]);
}

/** Serves content.git (one index.html) and apps.git with site 1.0 and 2.0 seeded from it. */
export async function serveSeededSite(
  root: string,
  sitePackage: (version: string, gitUrl: string) => string,
): Promise<GitServer> {
  await createRepo(root, "content.git", { "index.html": "seeded from git\n" });
  const server = await startGitServer({ root });
  const gitUrl = server.url("content.git");
  await createRepo(root, "apps.git", {
    "packages/site/1.0.yaml": sitePackage("1.0", gitUrl),
    "packages/site/2.0.yaml": sitePackage("2.0", gitUrl),
  });
  return server;
}
