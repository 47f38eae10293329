/**
 * A loopback HTTP server of small VM disk images for the VM image store's
 * API and dashboard tests: qcow2 files made with `qemu-img create`, one of
 * which (`/held.qcow2`) can be held after its first half, so that a test
 * sees a download midway.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface ImageServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** The bytes served at each path. */
  files: ReadonlyMap<string, Buffer>;
  /** From now on, `/held.qcow2` stops after its first half until `release`. */
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

/** Serves a 16 MiB (virtual) empty qcow2 at `/tiny.qcow2`, `/held.qcow2` and `/other/disk.qcow2`. */
export async function startImageServer(scratch: string): Promise<ImageServer> {
  const path = join(scratch, "tiny.qcow2");
  await run("qemu-img", ["create", "-q", "-f", "qcow2", path, "16M"]);
  const tiny = await readFile(path);
  const files = new Map([
    ["/tiny.qcow2", tiny],
    ["/held.qcow2", tiny],
    ["/other/disk.qcow2", tiny],
  ]);
  let held: Promise<void> | undefined;
  let release: () => void = () => undefined;
  const server = createServer((request, response) => {
    const body = files.get(request.url ?? "");
    if (!body) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-length": body.length });
    if (request.url !== "/held.qcow2" || held === undefined) {
      response.end(body);
      return;
    }
    const half = Math.floor(body.length / 2);
    response.write(body.subarray(0, half));
    void held.then(() => response.end(body.subarray(half)));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    files,
    hold: () => {
      held = new Promise((resolve) => {
        release = resolve;
      });
    },
    release: () => {
      release();
      held = undefined;
    },
    close: async () => {
      release();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
