/**
 * The certificates Caddy keeps (it obtains and renews them: local CA and
 * ACME), read for HAProxy. Caddy's storage is written by another, less
 * trusted user: nothing there is followed as a link, every file is bounded,
 * and a pair is taken only when the certificate names the host, is valid
 * now and matches its key. Of several issuers' certificates for one host the
 * one that stays valid longest wins (a public one replacing a local one, a
 * renewal replacing its predecessor).
 */
import { constants } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { join } from "node:path";
import { openNoFollow } from "./run-as.js";

/** A chain of a few certificates and a key: far below this. */
const MAX_PEM_BYTES = 64 * 1024;

/** One host's certificate chain and key as one PEM, HAProxy's format. */
export interface HostCertificate {
  host: string;
  pem: string;
  /** When the certificate stops being valid (ms since the epoch). */
  validTo: number;
}

/**
 * The usable certificate of each of `hosts` in Caddy's `storageDir`
 * (`certificates/<issuer>/<host>/<host>.crt` and `.key`); hosts without one
 * are absent from the result.
 */
export async function readCertificates(
  storageDir: string,
  hosts: readonly string[],
  now = Date.now(),
): Promise<Map<string, HostCertificate>> {
  const root = join(storageDir, "certificates");
  let issuers: string[];
  try {
    if (!(await lstat(root)).isDirectory()) return new Map();
    // Dirent types are the entries' own: a link is not a directory.
    issuers = (await readdir(root, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch {
    return new Map();
  }
  const found = new Map<string, HostCertificate>();
  for (const host of hosts) {
    for (const issuer of issuers) {
      const candidate = await readPair(join(root, issuer, host), host, now);
      const best = found.get(host);
      if (candidate && (!best || candidate.validTo > best.validTo)) found.set(host, candidate);
    }
  }
  return found;
}

async function readPair(
  dir: string,
  host: string,
  now: number,
): Promise<HostCertificate | undefined> {
  const info = await lstat(dir).catch(() => undefined);
  if (!info?.isDirectory()) return undefined;
  const chain = await readBounded(join(dir, `${host}.crt`));
  const key = await readBounded(join(dir, `${host}.key`));
  if (chain === undefined || key === undefined) return undefined;
  try {
    const certificate = new X509Certificate(chain);
    const validFrom = Date.parse(certificate.validFrom);
    const validTo = Date.parse(certificate.validTo);
    if (!(validFrom <= now && now < validTo)) return undefined;
    if (certificate.checkHost(host) === undefined) return undefined;
    if (!certificate.checkPrivateKey(createPrivateKey(key))) return undefined;
    return { host, pem: `${chain.trimEnd()}\n${key.trimEnd()}\n`, validTo };
  } catch {
    // Not a certificate and key Caddy made: ignored, as if absent.
    return undefined;
  }
}

async function readBounded(path: string): Promise<string | undefined> {
  let file;
  try {
    file = await openNoFollow(path, constants.O_RDONLY);
  } catch {
    return undefined;
  }
  try {
    if ((await file.stat()).size > MAX_PEM_BYTES) return undefined;
    const buffer = Buffer.alloc(MAX_PEM_BYTES + 1);
    const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
    return bytesRead > MAX_PEM_BYTES ? undefined : buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await file.close();
  }
}
