/**
 * Test helpers for the real HAProxy: whether it is here, and a directory of
 * its files with a self-signed certificate listed in the crt-list, as the
 * run-time side would write it.
 */
import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  CRT_LIST_FILE,
  HAPROXY_CONFIG_FILE,
  type HaproxyFiles,
} from "../src/ingress/haproxy-config.js";

const run = promisify(execFile);

export const HAPROXY = "/usr/sbin/haproxy";

/** Why the HAProxy tests cannot run here, or false. */
export function haproxyMissing(): string | false {
  for (const [program, args] of [
    [HAPROXY, ["-v"]],
    ["openssl", ["version"]],
  ] as const) {
    if (spawnSync(program, args).error !== undefined) return `${program} is not installed`;
  }
  return false;
}

/**
 * A self-signed ECDSA P-256 certificate for `names` (two days) in `dir`:
 * `cert.pem`, `key.pem`, and both in `server.pem`, the form HAProxy reads.
 */
export async function selfSignedCertificate(
  dir: string,
  names: readonly string[],
): Promise<{ certFile: string; keyFile: string; pemFile: string }> {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${names[0] ?? ""}`,
    "-addext",
    `subjectAltName=${names.map((name) => `DNS:${name}`).join(",")}`,
    "-keyout",
    keyFile,
    "-out",
    certFile,
  ]);
  const pemFile = join(dir, "server.pem");
  await writeFile(pemFile, (await readFile(certFile, "utf8")) + (await readFile(keyFile, "utf8")));
  return { certFile, keyFile, pemFile };
}

/**
 * A fresh directory for HAProxy's files, with one self-signed certificate
 * for `names` listed in the crt-list. `certFile` is the certificate alone,
 * for clients to trust.
 */
export async function haproxyDir(
  names: readonly string[],
): Promise<{ dir: string; certFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), "town-haproxy-"));
  const { certFile, pemFile } = await selfSignedCertificate(dir, names);
  await writeFile(join(dir, CRT_LIST_FILE), `${pemFile}\n`);
  return { dir, certFile };
}

/** Writes `files` into `dir`; returns the config's path. */
export async function writeHaproxyFiles(dir: string, files: HaproxyFiles): Promise<string> {
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return join(dir, HAPROXY_CONFIG_FILE);
}

/** `haproxy -c` on the config: its output; rejects when HAProxy finds it invalid. */
export async function haproxyCheck(configFile: string): Promise<string> {
  const { stdout, stderr } = await run(HAPROXY, ["-c", "-f", configFile]);
  return stdout + stderr;
}
