import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { findProgram } from "../src/storage/exec.js";
import { until } from "./daemon.js";
import { freePort } from "./runtime/podman-host.js";

/** Debian's docker-registry, or why it cannot run here (for `skip`). */
export const registryProgram = await findProgram("docker-registry");
export const registryMissing: string | false = registryProgram
  ? false
  : "docker-registry is not installed (apt: docker-registry)";

export interface Registry {
  /** `127.0.0.1:PORT`: plain HTTP, so clients name it as an insecure registry. */
  readonly address: string;
  close(): void;
}

/** A container registry on loopback storing its images under `dir`, answering once it is up. */
export async function startRegistry(dir: string): Promise<Registry> {
  if (!registryProgram) throw new Error(registryMissing || "no docker-registry");
  const address = `127.0.0.1:${await freePort()}`;
  const config = join(dir, "registry.yml");
  await writeFile(
    config,
    `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "registry")}\nhttp:\n  addr: ${address}\n`,
  );
  const child = spawn(registryProgram, ["serve", config], { stdio: "ignore" });
  const close = () => {
    child.kill();
  };
  try {
    await until(
      "the registry",
      10_000,
      () => fetch(`http://${address}/v2/`),
      (response) => response.ok,
    );
  } catch (error) {
    close();
    throw error;
  }
  return { address, close };
}
