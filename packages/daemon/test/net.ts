/**
 * Test helpers for networking against the real programs: whether they are
 * here, a DNS query with dig, an HTTPS request through Caddy with curl, and
 * free ports for a test's ingress and DNS.
 */
import { execFile, execFileSync } from "node:child_process";
import { chmod, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePorts } from "./runtime/podman-host.js";

const run = promisify(execFile);

/** Why the networking tests cannot run here, or false. */
export function networkMissing(): string | false {
  if (process.getuid?.() !== 0) return "dnsmasq drops root after binding: the test needs root";
  for (const program of ["caddy", "dnsmasq", "dig", "curl"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${program} || test -x /usr/sbin/${program}`], {
        stdio: "ignore",
      });
    } catch {
      return `${program} is not installed`;
    }
  }
  return false;
}

/** The A records dnsmasq on 127.0.0.1:`port` gives for `name`, one per line. */
export async function dig(port: number, name: string): Promise<string> {
  const { stdout } = await run("dig", [
    "@127.0.0.1",
    "-p",
    String(port),
    name,
    "A",
    "+short",
    "+time=2",
    "+tries=1",
  ]);
  return stdout.trim();
}

/** curl's arguments for a GET of `https://host:port/path` through Caddy on loopback, trusting only `caFile`. */
export function curlViaCaddy(caFile: string, host: string, port: number, path = "/"): string[] {
  return [
    "-sS",
    "--max-time",
    "10",
    "--cacert",
    caFile,
    "--resolve",
    `${host}:${port}:127.0.0.1`,
    `https://${host}:${port}${path}`,
  ];
}

/** GETs `https://host:port/path` through Caddy, trusting only the given root; a status of 400 or more fails. */
export async function viaCaddy(
  caFile: string,
  host: string,
  port: number,
  path = "/",
): Promise<string> {
  const { stdout } = await run("curl", ["--fail", ...curlViaCaddy(caFile, host, port, path)]);
  return stdout;
}

/** Retries `check` until it resolves, for at most `ms`; the last error says why it did not. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T>,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}: ${String(error)}`, { cause: error });
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * A scratch directory others may pass through: dnsmasq drops to `nobody`
 * and must still reach the files a test keeps in it.
 */
export async function scratchDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

export interface NetworkPorts {
  httpsPort: number;
  httpPort: number;
  dnsPort: number;
  sitesPort: number;
  acmeChallengePort: number;
}

/** Free high ports for the ingress (HTTPS, HTTP and Caddy's loopback ones) and DNS of a test's network. */
export async function freeNetworkPorts(): Promise<NetworkPorts> {
  const [httpsPort = 0, httpPort = 0, dnsPort = 0, sitesPort = 0, acmeChallengePort = 0] =
    await freePorts(5);
  return { httpsPort, httpPort, dnsPort, sitesPort, acmeChallengePort };
}

/** A daemon's `network` on free ports with its DNS files in `scratch`, answering for loopback only. */
export async function loopbackNetwork(
  scratch: string,
): Promise<NetworkPorts & { lanAddresses: string[]; dnsDir: string }> {
  return {
    ...(await freeNetworkPorts()),
    lanAddresses: ["127.0.0.1"],
    dnsDir: join(scratch, "dns"),
  };
}
