import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { runTown } from "../src/program.js";

export interface TownRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the town command in-process with captured output and no terminal. */
export async function runTownCaptured(
  argv: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<TownRun> {
  let stdout = "";
  let stderr = "";
  const code = await runTown(argv, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    cwd: options.cwd,
    env: options.env ?? {},
    interactive: false,
    ask: () => Promise.reject(new Error("no terminal in tests")),
  });
  return { code, stdout, stderr };
}

/** A request the fake daemon received, its body read in full. */
export interface DaemonRequest {
  /** `METHOD /path?query`. */
  key: string;
  body: string;
}

/** Answers a request with `body` as JSON. */
export function answerJson(response: ServerResponse, body: unknown): void {
  response.writeHead(200, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

/**
 * A stand-in daemon on a loopback port for the tests of the describe block
 * this is called in: it starts before them and stops after, with a scratch
 * directory (named from `prefix`) that `town` runs in, its token set.
 */
export function fakeDaemon(
  prefix: string,
  answer: (request: DaemonRequest, response: ServerResponse) => void,
): { readonly dir: string; town: (...argv: string[]) => Promise<TownRun> } {
  let server: Server | undefined;
  let dir: string | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
    const listening = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const key = `${request.method ?? ""} ${request.url ?? ""}`;
        answer({ key, body: Buffer.concat(chunks).toString() }, response);
      });
    });
    server = listening;
    await new Promise<void>((done) => listening.listen(0, "127.0.0.1", done));
  });
  after(async () => {
    const listening = server;
    if (listening !== undefined) await new Promise((done) => listening.close(done));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });
  const started = (): { server: Server; dir: string } => {
    if (server === undefined || dir === undefined)
      throw new Error("the fake daemon starts before the tests");
    return { server, dir };
  };
  return {
    get dir() {
      return started().dir;
    },
    town: (...argv) => {
      const { port } = started().server.address() as AddressInfo;
      return runTownCaptured(["--server", `http://127.0.0.1:${port}`, ...argv], {
        cwd: started().dir,
        env: { TOWN_TOKEN: "t" },
      });
    },
  };
}
