/**
 * Where the QEMU runtime keeps each VM: `<stateDir>/<hash of its name>/`
 * holds its record (`vm.json`: the workload, its fingerprint, what happened
 * to it), the environment file, QMP's socket, QEMU's pid and stderr, and
 * the console log. The directory is named by a short hash, not the name,
 * so that the socket's path stays below the 108 bytes a unix socket path
 * may take; the name is in the record. The VM's disk is not here: it lives
 * in the app's volume and outlives the directory.
 */
import { createHash, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { open, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { TownError } from "@townos/format";
import { NO_FOLLOW } from "../../system/proc.js";
import { writeFileAtomic } from "../../system/small-files.js";
import type { Workload } from "../workload.js";
import type { Accelerator, QemuPaths } from "./qemu-args.js";

export interface VmPaths extends QemuPaths {
  dir: string;
  record: string;
  pidFile: string;
  /** QEMU's own stderr. */
  qemuLog: string;
}

/** What the runtime knows of one VM between daemon runs. */
export interface VmRecord {
  id: string;
  name: string;
  /** Ms since the epoch. */
  created: number;
  fingerprint: string;
  workload: Workload;
  /** What was last asked: a VM asked to run is supervised (and adopted by the next daemon). */
  wanted: "running" | "stopped";
  /** What its last start ran with; null before the first. */
  accelerator: Accelerator | null;
  startedAt: number | null;
  finishedAt: number | null;
  exitCode: number;
  restartCount: number;
  /** Why the last start or run failed, or "". */
  error: string;
}

const DIR_HASH_LENGTH = 16;
/** The longest file name QEMU gets a path to in the directory. */
const LONGEST_SOCKET = "qmp.sock";
const MAX_SOCKET_PATH_BYTES = 107;

/** The directory name of a VM: a short hash of its name. */
export function vmDirName(name: string): string {
  return createHash("sha256").update(name).digest("hex").slice(0, DIR_HASH_LENGTH);
}

export function vmPaths(stateDir: string, name: string): VmPaths {
  const dir = join(stateDir, vmDirName(name));
  return {
    dir,
    record: join(dir, "vm.json"),
    qmpSocket: join(dir, LONGEST_SOCKET),
    environmentFile: join(dir, "environment"),
    pidFile: join(dir, "qemu.pid"),
    qemuLog: join(dir, "qemu.log"),
  };
}

/** @throws TownError invalid_argument when QMP's socket in this directory would be too long a path */
export function checkStateDir(stateDir: string): void {
  const longest = join(stateDir, "x".repeat(DIR_HASH_LENGTH), LONGEST_SOCKET);
  if (!stateDir.startsWith("/") || Buffer.byteLength(longest) > MAX_SOCKET_PATH_BYTES)
    throw new TownError(
      "invalid_argument",
      `the VM state directory ${stateDir} must be an absolute path short enough for a unix socket below it`,
    );
}

export function newVmId(): string {
  return randomBytes(16).toString("hex");
}

/** The record, or undefined when the VM has none (absent, or removed meanwhile). */
export async function readRecord(path: string): Promise<VmRecord | undefined> {
  let text: string;
  try {
    const file = await open(path, constants.O_RDONLY | NO_FOLLOW);
    try {
      text = await readFile(file, "utf8");
    } finally {
      await file.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new TownError("io", `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new TownError("io", `${path} is not JSON`);
  }
  const record = value as Partial<VmRecord> | null;
  if (
    typeof record !== "object" ||
    record === null ||
    typeof record.id !== "string" ||
    typeof record.name !== "string" ||
    typeof record.fingerprint !== "string" ||
    typeof record.workload !== "object"
  )
    throw new TownError("io", `${path} is not a VM record`);
  return record as VmRecord;
}

export function writeRecord(paths: VmPaths, record: VmRecord): Promise<void> {
  return writeFileAtomic(paths.record, `${JSON.stringify(record, null, 2)}\n`);
}

/** The VM directories present (names are hashes; their records say whose). */
export async function vmDirs(stateDir: string): Promise<string[]> {
  try {
    const entries = await readdir(stateDir, { withFileTypes: true });
    return entries
      .filter((entry) => entry.isDirectory() && /^[0-9a-f]{16}$/.test(entry.name))
      .map((entry) => join(stateDir, entry.name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}
