/**
 * Test helpers for pages over the real ingress: the box's CA saved for
 * curl, pages ready to deploy (they wait for the ingress's first start), and
 * what Caddy answers at a page's name.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { TownClient } from "@townos/client";
import { until } from "./daemon.js";
import { curlViaCaddy, eventually } from "./net.js";

const run = promisify(execFile);

export interface PageAnswer {
  status: number;
  body: string;
}

/** Saves the box's CA root as `<scratch>/ca.crt` once Caddy made it, and waits until pages deploy. Returns the file. */
export async function readyForPages(
  daemonUrl: string,
  admin: TownClient,
  scratch: string,
): Promise<string> {
  const pem = await eventually("the local CA", async () => {
    const answer = await fetch(`${daemonUrl}/tls/ca.crt`);
    assert.equal(answer.status, 200);
    return answer.text();
  });
  const caFile = join(scratch, "ca.crt");
  await writeFile(caFile, pem);
  await until(
    "pages to be ready",
    60_000,
    () => admin.createPage({ name: "probe", source: { type: "archive" } }),
    () => true,
  );
  await admin.deletePage("probe");
  return caFile;
}

/** GETs `https://<host>:<port><path>` through Caddy on loopback, trusting only `caFile`. */
export async function visitPage(
  caFile: string,
  host: string,
  port: number,
  path = "/",
): Promise<PageAnswer> {
  const { stdout } = await run("curl", [
    "-w",
    "\n%{http_code}",
    ...curlViaCaddy(caFile, host, port, path),
  ]);
  const cut = stdout.lastIndexOf("\n");
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

/** Waits until `path` at `host` answers 200 with `body`. */
export function servesPage(
  caFile: string,
  host: string,
  port: number,
  body: string,
  path = "/",
): Promise<void> {
  return eventually(`${host}${path} to serve "${body.trim()}"`, async () => {
    assert.deepEqual(await visitPage(caFile, host, port, path), { status: 200, body });
  });
}
