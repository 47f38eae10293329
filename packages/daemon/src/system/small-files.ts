/**
 * Small files read and written safely: state, settings and records that a
 * hostile container or a crash must not turn into something else.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { errnoCode } from "../storage/safe-fs.js";
import { NO_FOLLOW } from "./proc.js";

/**
 * A small regular file's text; undefined when absent, a link, not a file or
 * larger than `max`. Reads up to `max` + 1 bytes rather than trusting the
 * size, so /proc files (whose size says 0) read too; never blocks on a FIFO.
 */
export async function readSmallFile(path: string, max: number): Promise<string | undefined> {
  let file;
  try {
    file = await open(path, constants.O_RDONLY | NO_FOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT" || code === "ELOOP" || code === "ENOTDIR") return undefined;
    throw error;
  }
  try {
    if (!(await file.stat()).isFile()) return undefined;
    const buffer = Buffer.alloc(max + 1);
    const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
    return bytesRead > max ? undefined : buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await file.close();
  }
}

/** Written to a new file and renamed over the old: a crash leaves one or the other. */
export async function writeFileAtomic(path: string, text: string, mode = 0o600): Promise<void> {
  const temporary = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  const file = await open(
    temporary,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NO_FOLLOW,
    mode,
  );
  try {
    await file.writeFile(text);
  } finally {
    await file.close();
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
