import type { FastifyBaseLogger } from "fastify";
import { writeFileAtomic } from "./small-files.js";

/**
 * Writes how the boot ended (`ready` or `failed`) for what waits on it (on
 * the image, the copy of the OS into RAM). A failure is logged, never thrown:
 * the daemon serves either way.
 */
export async function writeBootedFile(
  file: string,
  state: string,
  log: FastifyBaseLogger,
): Promise<void> {
  try {
    await writeFileAtomic(file, `${state}\n`, 0o644);
  } catch (error) {
    log.warn({ err: error, file }, "could not say that the boot ended");
  }
}
