/**
 * Writing archive entries (from tar or zip) into a private staging tree,
 * entry by entry, refusing what is not safe and remembering what was made
 * so that later entries are judged against it: links may only point inside,
 * hard links only at files unpacked before, nothing may be made inside a
 * refused entry, a file or a link. Every refusal is recorded with its reason;
 * going past a limit throws. Restoring a backup (`asBackedUp`), links may
 * point anywhere, names may hold control characters and entries keep their
 * archived owners: what is made is still judged by the paths of what was
 * made before, never by following a link, so nothing lands outside the tree.
 */
import { chmod, lchown, link, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import type * as yauzl from "yauzl";
import { getFileNameLowLevel } from "yauzl";
import { TownError } from "@townos/format";
import { printable } from "./names.js";
import { checkEntryPath, MAX_PATH_BYTES, symlinkTargetProblem, type PathCheck } from "./paths.js";
import {
  checkOwner,
  createFileInside,
  ensureDirs,
  MAX_REPORTED,
  PathRefused,
  type Owner,
  type RefusedEntry,
} from "./safe-fs.js";
import type { TarEntry } from "./tar-reader.js";

/** Largest symbolic-link target stored as zip data. */
const MAX_LINK_TARGET_BYTES = 4096;

export interface ExtractionLimits {
  /** Most bytes of file content, all entries together. */
  maxBytes: number;
  /** Most entries, refused ones included. */
  maxEntries: number;
}

type Made = "directory" | "file" | "link";

export interface Ownership {
  /** Owner of what is made (of entries without one of their own, `asBackedUp`); default the daemon. */
  owner: Owner | undefined;
  /** A backup restored: archived owners kept, links kept wherever they point. */
  asBackedUp: boolean;
}

/** Writes entries into a private tree, refusing what is not safe, and remembers what it made. */
export class Extraction {
  entries = 0;
  bytes = 0;
  refused: RefusedEntry[] = [];
  refusedCount = 0;
  private readonly made = new Map<string, Made>();
  private readonly refusedPaths = new Set<string>();
  private readonly directoryModes = new Map<string, number>();
  private readonly known = new Set<string>();
  private readonly owner: Owner | undefined;
  private readonly asBackedUp: boolean;

  constructor(
    private readonly root: string,
    readonly limits: ExtractionLimits,
    ownership: Ownership,
    private readonly signal: AbortSignal,
    private readonly onWrite: () => void,
  ) {
    this.owner = ownership.owner;
    this.asBackedUp = ownership.asBackedUp;
  }

  async tarEntry(entry: TarEntry, body: AsyncIterable<Buffer>): Promise<void> {
    this.count();
    const mode = entry.mode & 0o1777;
    const owner = this.ownerOf(entry);
    switch (entry.type) {
      case "File":
      case "OldFile":
      case "ContiguousFile":
        return this.file(entry.path, mode, entry.mtime, entry.size, () => body, owner);
      case "Directory":
        return this.directory(entry.path, mode, owner);
      case "SymbolicLink":
        return this.symlink(entry.path, entry.linkpath, owner);
      case "Link":
        return this.hardlink(entry.path, entry.linkpath);
      case "CharacterDevice":
      case "BlockDevice":
        this.refuse(entry.path, "device file");
        return;
      case "FIFO":
        this.refuse(entry.path, "FIFO");
        return;
      default:
        this.refuse(entry.path, `unsupported entry type (${entry.type})`);
    }
  }

  async zipEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<void> {
    this.count();
    const name = getFileNameLowLevel(
      entry.generalPurposeBitFlag,
      entry.fileNameRaw,
      entry.extraFields,
      false,
    );
    // Unix zips keep the mode (type included) in the high half of the external attributes.
    const unixMode = entry.versionMadeBy >> 8 === 3 ? entry.externalFileAttributes >>> 16 : 0;
    const type = unixMode & 0o170000;
    if (name.endsWith("/") || type === 0o040000) {
      return this.directory(name, unixMode & 0o1777 || 0o755, this.owner);
    }
    if (type !== 0 && type !== 0o100000 && type !== 0o120000) {
      this.refuse(name, type === 0o010000 ? "FIFO" : type === 0o140000 ? "socket" : "device file");
      return;
    }
    if (entry.isEncrypted()) {
      this.refuse(name, "encrypted");
      return;
    }
    if (!entry.canDecodeFileData()) {
      this.refuse(name, `unsupported compression method ${entry.compressionMethod}`);
      return;
    }
    const open = async () => (await zip.openReadStreamPromise(entry)) as AsyncIterable<Buffer>;
    if (type !== 0o120000) {
      return this.file(
        name,
        unixMode & 0o1777 || 0o644,
        entry.getLastModDate(),
        entry.uncompressedSize,
        open,
        this.owner,
      );
    }
    // A link's target is its data.
    if (entry.uncompressedSize > MAX_LINK_TARGET_BYTES) {
      this.refuse(name, "link target too long");
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of await open()) chunks.push(chunk);
    return this.symlink(name, Buffer.concat(chunks).toString("utf8"), this.owner);
  }

  /** Directory modes last: read-only directories would have stopped the unpack. */
  async finish(): Promise<void> {
    const deepestFirst = [...this.directoryModes].sort(
      ([a], [b]) => b.split("/").length - a.split("/").length,
    );
    for (const [path, mode] of deepestFirst) await chmod(join(this.root, path), mode);
  }

  private checkPath(name: string): PathCheck {
    return checkEntryPath(name, { anyCharacters: this.asBackedUp });
  }

  /** The archived owner when restoring a backup and the entry has a valid one, else `owner`. */
  private ownerOf(entry: TarEntry): Owner | undefined {
    if (!this.asBackedUp || entry.uid === undefined || entry.gid === undefined) return this.owner;
    const archived = { uid: entry.uid, gid: entry.gid };
    try {
      checkOwner(archived);
    } catch {
      return this.owner;
    }
    return archived;
  }

  private count(): void {
    this.signal.throwIfAborted();
    if (++this.entries > this.limits.maxEntries) {
      throw new TownError(
        "payload_too_large",
        `archive: more than ${this.limits.maxEntries} entries`,
      );
    }
  }

  private checkBudget(size: number): void {
    if (this.bytes + size > this.limits.maxBytes) {
      throw new TownError(
        "payload_too_large",
        `archive: unpacks to more than ${this.limits.maxBytes} bytes`,
      );
    }
  }

  private async file(
    name: string,
    mode: number,
    mtime: Date | undefined,
    size: number,
    open: () => Promise<AsyncIterable<Buffer>> | AsyncIterable<Buffer>,
    owner: Owner | undefined,
  ): Promise<void> {
    const parts = await this.place(name, "file");
    if (!parts) return;
    this.checkBudget(size);
    const handle = await createFileInside(this.root, parts, 0o600);
    try {
      for await (const chunk of await open()) {
        this.signal.throwIfAborted();
        this.checkBudget(chunk.length);
        this.bytes += chunk.length;
        let written = 0;
        while (written < chunk.length) {
          written += (await handle.write(chunk, written, chunk.length - written)).bytesWritten;
        }
        this.onWrite();
      }
      await handle.chmod(mode);
      if (owner) await handle.chown(owner.uid, owner.gid);
      if (mtime && !Number.isNaN(mtime.getTime())) await handle.utimes(mtime, mtime);
    } finally {
      await handle.close();
    }
    this.made.set(parts.join("/"), "file");
  }

  private async directory(name: string, mode: number, owner: Owner | undefined): Promise<void> {
    const check = this.checkPath(name);
    // The archive's root ("./"): the target itself, left as it is.
    if ("parts" in check && check.parts.length === 0) return;
    const parts = await this.place(name, "directory");
    if (!parts) return;
    await ensureDirs(this.root, parts, { mode: 0o700, owner: this.owner, known: this.known });
    // Its own owner even when an entry inside it came first and made it with the default one.
    if (owner && owner !== this.owner)
      await lchown(join(this.root, ...parts), owner.uid, owner.gid);
    this.made.set(parts.join("/"), "directory");
    this.directoryModes.set(parts.join("/"), mode);
  }

  private async symlink(name: string, target: string, owner: Owner | undefined): Promise<void> {
    const parts = await this.place(name, "link", (linkParts) => {
      if (!this.asBackedUp) return symlinkTargetProblem(linkParts, target);
      if (target === "") return "empty link target";
      if (target.includes("\0")) return "NUL in link target";
      if (Buffer.byteLength(target) > MAX_PATH_BYTES) return "link target too long";
      return undefined;
    });
    if (!parts) return;
    const path = join(this.root, ...parts);
    await symlink(target, path);
    if (owner) await lchown(path, owner.uid, owner.gid);
    this.made.set(parts.join("/"), "link");
  }

  private async hardlink(name: string, target: string): Promise<void> {
    const targetCheck = this.checkPath(target);
    const targetPath = "parts" in targetCheck ? targetCheck.parts.join("/") : "";
    const parts = await this.place(name, "file", (linkParts) => {
      if ("reason" in targetCheck) return `hard link target: ${targetCheck.reason}`;
      if (this.made.get(targetPath) !== "file" || linkParts.join("/") === targetPath) {
        return `hard link to "${printable(target)}", which is not a file unpacked before it`;
      }
      return undefined;
    });
    if (!parts) return;
    await link(join(this.root, targetPath), join(this.root, ...parts));
    this.made.set(parts.join("/"), "file");
  }

  /**
   * Checks an entry's path (and `problem`, the entry's own check), makes its
   * parent directories (implicit ones get mode 0755) and returns its
   * components, or refuses it and returns undefined. A later entry replaces
   * an earlier file or link at the same path, as tar does; other clashes are
   * refused.
   */
  private async place(
    name: string,
    kind: Made,
    problem?: (parts: string[]) => string | undefined,
  ): Promise<string[] | undefined> {
    const check = this.checkPath(name);
    if ("reason" in check) {
      this.refuse(name, check.reason);
      return;
    }
    const { parts } = check;
    if (parts.length === 0) {
      this.refuse(name, "names the target directory itself");
      return;
    }
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      if (this.refusedPaths.has(prefix)) {
        this.refuse(name, `inside the refused entry "${printable(prefix)}"`);
        return;
      }
      const made = this.made.get(prefix);
      if (made !== undefined && made !== "directory") {
        this.refuse(
          name,
          `inside "${printable(prefix)}", which is a ${made === "link" ? "link" : "file"}`,
        );
        return;
      }
    }
    const own = problem?.(parts);
    if (own) {
      this.refuse(name, own);
      return;
    }
    const path = parts.join("/");
    const existing = this.made.get(path);
    if (existing !== undefined && (existing === "directory") !== (kind === "directory")) {
      this.refuse(name, "clashes with an earlier entry of another type");
      return;
    }
    if (existing !== undefined && existing !== "directory") {
      await unlink(join(this.root, ...parts));
      this.made.delete(path);
    }
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      if (this.made.has(prefix)) continue;
      this.made.set(prefix, "directory");
      this.directoryModes.set(prefix, 0o755);
    }
    try {
      await ensureDirs(this.root, parts.slice(0, -1), {
        mode: 0o700,
        owner: this.owner,
        known: this.known,
      });
    } catch (error) {
      // Only this unpack writes in its staging tree: a refusal here means someone else did.
      if (error instanceof PathRefused)
        throw new TownError("io", `archive: the staging directory changed: ${error.reason}`);
      throw error;
    }
    return parts;
  }

  private refuse(name: string, reason: string): void {
    this.refusedCount++;
    if (this.refused.length < MAX_REPORTED)
      this.refused.push({ path: printable(name, 300), reason });
    const check = this.checkPath(name);
    if ("parts" in check && check.parts.length > 0) this.refusedPaths.add(check.parts.join("/"));
  }
}
