/**
 * Reading a directory out of a container image without running it: the
 * image is pulled when missing, a container is created (never started) and
 * the directory is copied out of its file system as a tar. Volumes are
 * seeded this way (`archives`) and image pages are made this way.
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import type { HostRuntime, Workload } from "./workload.js";

export interface ImageFilesOptions {
  image: string;
  /** Absolute path of the directory in the image; the tar's entries are relative to it. */
  directory: string;
  /** Labels of the short-lived container: one a crash left is found by them. */
  labels: Readonly<Record<string, string>>;
  /** The image's registry is reached over plain HTTP. */
  insecure: boolean;
  /** The container's name starts with this (a unique suffix follows). */
  namePrefix: string;
  signal?: AbortSignal;
  /** Called before a pull, which may take a while. */
  onPull?: () => void;
}

/**
 * Gives `consume` the image's directory as an uncompressed tar stream and
 * removes the container afterwards, whatever happened.
 * @throws TownError from the runtime (`not_found` for a missing image or
 *   directory, `unavailable`), or what `consume` throws.
 */
export async function copyOutOfImage<T>(
  runtime: HostRuntime,
  options: ImageFilesOptions,
  consume: (tar: Readable) => Promise<T>,
): Promise<T> {
  if (!(await runtime.imageExists(options.image))) {
    options.onPull?.();
    await runtime.pullImage(options.image, {
      ...(options.insecure ? { tlsVerify: false } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }
  const name = `${options.namePrefix}-${randomBytes(6).toString("hex")}`;
  await runtime.ensure(readOnlyWorkload(name, options.image, options.labels));
  try {
    const tar = await runtime.copyFrom(name, options.directory, options.signal);
    return await consume(Readable.from(tar));
  } finally {
    await runtime.remove(name);
  }
}

/** A workload that is never started: only its file system is read. */
function readOnlyWorkload(
  name: string,
  image: string,
  labels: Readonly<Record<string, string>>,
): Workload {
  return {
    kind: "container",
    name,
    hostname: "image-files",
    image,
    command: ["true"],
    env: {},
    labels,
    mounts: [],
    ports: [],
    network: null,
    restart: "no",
  };
}
