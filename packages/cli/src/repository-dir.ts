import { lstat, open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { MAX_PACKAGE_FILE_BYTES, type RepositoryFile } from "@townos/format";

/**
 * Reads the files of a package repository from a directory: `featured.json`
 * and `packages/<name>/<version>.yaml`. Symbolic links are not followed and
 * at most one byte past the size limit is read (the parser reports the
 * size), so a hostile checkout cannot make us read outside it or without bound.
 */
export async function readRepositoryDir(dir: string): Promise<RepositoryFile[]> {
  const files: RepositoryFile[] = [];
  const featured = await readRegularFile(join(dir, "featured.json"));
  if (featured !== undefined) files.push({ path: "featured.json", text: featured });
  for (const name of await listDir(join(dir, "packages"))) {
    for (const file of await listDir(join(dir, "packages", name))) {
      if (!file.endsWith(".yaml")) continue;
      const text = await readRegularFile(join(dir, "packages", name, file));
      if (text !== undefined) files.push({ path: `packages/${name}/${file}`, text });
    }
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : 1));
}

async function listDir(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

async function readRegularFile(path: string): Promise<string | undefined> {
  try {
    const stat = await lstat(path);
    if (!stat.isFile()) return undefined;
    const handle = await open(path, "r");
    try {
      const buffer = Buffer.alloc(Math.min(stat.size, MAX_PACKAGE_FILE_BYTES + 1));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      return buffer.subarray(0, bytesRead).toString("utf8");
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

function isMissing(error: unknown): boolean {
  return (
    error instanceof Error &&
    "code" in error &&
    (error.code === "ENOENT" || error.code === "ENOTDIR")
  );
}
