/**
 * For integration tests: a network namespace joined to the host by a veth
 * pair on a private /30, so that multicast (SSDP, mDNS) and a router
 * (miniupnpd) can be tested with every packet staying between the host and
 * a namespace the test made. Removing the namespace removes both veth ends
 * and, with `exec`'s processes killed first, everything in it.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface TestNetns {
  name: string;
  /** The veth end in the host namespace, and its address. */
  hostInterface: string;
  hostAddress: string;
  /** The veth end inside the namespace, and its address. */
  namespaceInterface: string;
  namespaceAddress: string;
  /** Runs a program inside the namespace and returns its output. */
  exec(args: readonly string[]): Promise<string>;
  /** Starts a long-running program inside the namespace; killed by `remove`. */
  spawn(args: readonly string[]): ChildProcess;
  /** Kills what runs inside and deletes the namespace (and veth pair). Idempotent. */
  remove(): Promise<void>;
}

/** False when namespaces can be made here, else why not (for `skip`). */
export const netnsMissing: string | false = whyNoNetns();

function whyNoNetns(): string | false {
  if (process.getuid?.() !== 0) return "network namespaces need root";
  try {
    execFileSync("ip", ["-V"], { stdio: "ignore" });
  } catch {
    return "iproute2 (ip) is not installed";
  }
  return false;
}

/**
 * Makes `<prefix>-<pid>-<index>` with addresses 10.213.<pid % 256>.<4·index + 1|2>/30.
 * `index` (0–63) tells apart several namespaces of one test process.
 */
export async function createTestNetns(prefix: string, index: number): Promise<TestNetns> {
  const name = `${prefix}-${process.pid}-${index}`;
  const tag = `${(process.pid % 100_000).toString(36)}${index}`;
  const hostInterface = `tvh${tag}`;
  const namespaceInterface = `tvn${tag}`;
  const base = `10.213.${process.pid % 256}`;
  const hostAddress = `${base}.${4 * index + 1}`;
  const namespaceAddress = `${base}.${4 * index + 2}`;
  const children = new Set<ChildProcess>();
  const inside = (args: readonly string[]): string[] => ["netns", "exec", name, ...args];

  let removed = false;
  const removeSync = (): void => {
    if (removed) return;
    removed = true;
    for (const child of children) child.kill("SIGKILL");
    try {
      const pids = execFileSync("ip", ["netns", "pids", name], { encoding: "utf8" });
      for (const pid of pids.split("\n").filter((line) => line.trim() !== ""))
        process.kill(Number(pid), "SIGKILL");
    } catch {
      // No namespace, no processes.
    }
    for (const args of [
      ["netns", "del", name],
      ["link", "del", hostInterface],
    ]) {
      try {
        execFileSync("ip", args, { stdio: "ignore" });
      } catch {
        // Already gone.
      }
    }
  };
  // A test that crashes still leaves no namespace behind.
  process.once("exit", removeSync);

  try {
    await run("ip", ["netns", "add", name]);
    await run("ip", [
      "link",
      "add",
      hostInterface,
      "type",
      "veth",
      "peer",
      "name",
      namespaceInterface,
    ]);
    await run("ip", ["link", "set", namespaceInterface, "netns", name]);
    await run("ip", ["addr", "add", `${hostAddress}/30`, "dev", hostInterface]);
    await run("ip", ["link", "set", hostInterface, "up"]);
    await run("ip", inside(["ip", "link", "set", "lo", "up"]));
    await run(
      "ip",
      inside(["ip", "addr", "add", `${namespaceAddress}/30`, "dev", namespaceInterface]),
    );
    await run("ip", inside(["ip", "link", "set", namespaceInterface, "up"]));
    // Multicast sent inside the namespace leaves through the veth (there is no default route).
    await run("ip", inside(["ip", "route", "add", "224.0.0.0/4", "dev", namespaceInterface]));
  } catch (error) {
    removeSync();
    throw error;
  }

  return {
    name,
    hostInterface,
    hostAddress,
    namespaceInterface,
    namespaceAddress,
    async exec(args) {
      const { stdout } = await run("ip", inside(args), { timeout: 30_000 });
      return stdout;
    },
    spawn(args) {
      const child = spawn("ip", inside(args), { stdio: ["ignore", "pipe", "pipe"] });
      children.add(child);
      child.once("exit", () => children.delete(child));
      return child;
    },
    async remove() {
      removeSync();
      process.off("exit", removeSync);
      await Promise.resolve();
    },
  };
}
