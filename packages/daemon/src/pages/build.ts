/**
 * A page's optional build: the command runs by `/bin/sh -c` in a container
 * of the build image, with the source directory mounted read-write at
 * `/site` and as its working directory. Its output lines go to the deploy's
 * log. Whatever the container writes is untrusted: the caller sanitises the
 * output before serving it.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { PageBuild } from "@townos/api";
import { TownError } from "@townos/format";
import type { HostRuntime, Workload } from "../runtime/workload.js";
import { formatDuration, printable } from "../storage/names.js";
import type { DeployLog } from "./types.js";

/** Where the source directory is in the build container. */
export const BUILD_MOUNT = "/site";
/** How often a build whose log ended is asked whether it has exited. */
const EXIT_POLL_MS = 200;

export interface BuildOptions {
  page: string;
  build: Pick<PageBuild, "image" | "command">;
  /** Normalized absolute host path of the source directory (real directories all the way). */
  sourceDir: string;
  labels: Readonly<Record<string, string>>;
  /** The build image's registry is reached over plain HTTP. */
  insecure: boolean;
  timeoutMs: number;
  log: DeployLog;
  signal: AbortSignal;
}

/** Why a build was stopped from outside. */
class Stopped extends Error {}

/**
 * Runs the build to its end; the container is removed whatever happens.
 * @throws TownError `io` when the build exits non-zero ("the build exited
 *   with code N"), times out or is cancelled; the runtime's errors (a
 *   missing image is `not_found`).
 */
export async function runBuild(runtime: HostRuntime, options: BuildOptions): Promise<void> {
  const { build, log } = options;
  const name = `town-page-build-${options.page}-${randomBytes(4).toString("hex")}`;
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(
      new Stopped(`the build took longer than ${formatDuration(options.timeoutMs)}`),
    );
  }, options.timeoutMs);
  const onAbort = () => {
    controller.abort(new Stopped("the build was cancelled"));
  };
  options.signal.addEventListener("abort", onAbort, { once: true });
  if (options.signal.aborted) onAbort();
  const signal = controller.signal;
  try {
    if (!(await runtime.imageExists(build.image))) {
      log.line("town", `pulling ${build.image}`);
      await runtime.pullImage(build.image, {
        ...(options.insecure ? { tlsVerify: false } : {}),
        signal,
      });
    }
    signal.throwIfAborted();
    await runtime.ensure(buildWorkload(name, options));
    log.line("town", `running ${printable(build.command, 200)} in ${build.image}`);
    await runtime.start(name);
    let last = "";
    for await (const line of await runtime.logs(name, { follow: true, signal })) {
      log.line(line.stream, line.text);
      if (line.text.trim() !== "") last = line.text.trim();
    }
    const exitCode = await exitCodeOf(runtime, name, signal);
    if (exitCode !== 0) {
      // The last words usually say why (the whole output is in the log).
      const why = last === "" ? "" : `: ${printable(last, 200)}`;
      throw new TownError("io", `the build exited with code ${exitCode}${why}`);
    }
    log.line("town", "the build finished");
  } catch (error) {
    const reason: unknown = signal.reason;
    if (signal.aborted && reason instanceof Stopped) throw new TownError("io", reason.message);
    throw error;
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener("abort", onAbort);
    // Stops it first when it still runs (a timeout, a cancel, a failure reading its log).
    await runtime.remove(name, { timeoutSeconds: 2 });
  }
}

/** Waits until the container has exited (its log can end a moment before) and gives its exit code. */
async function exitCodeOf(
  runtime: HostRuntime,
  name: string,
  signal: AbortSignal,
): Promise<number> {
  for (;;) {
    signal.throwIfAborted();
    const info = await runtime.inspect(name);
    if (!info) throw new TownError("io", "the build container disappeared");
    if (!info.state.running) return info.state.exitCode;
    await sleep(EXIT_POLL_MS, undefined, { signal });
  }
}

function buildWorkload(name: string, options: BuildOptions): Workload {
  return {
    kind: "container",
    name,
    hostname: "build",
    image: options.build.image,
    entrypoint: ["/bin/sh", "-c"],
    command: [options.build.command],
    env: {},
    workingDir: BUILD_MOUNT,
    labels: options.labels,
    mounts: [{ source: options.sourceDir, target: BUILD_MOUNT }],
    ports: [],
    network: null,
    restart: "no",
  };
}
