/**
 * Reading trees and blobs of a clone, memoized by object id. Reading an
 * object through isomorphic-git costs about 0.3 ms, and git objects never
 * change under their id: a reader handed the previous read's memo reads from
 * git only what is new, so an unchanged refresh reads no object at all.
 */
import fs from "node:fs";
import * as git from "isomorphic-git";

/** What a blob holds once read: its UTF-8 text, or why it is not taken. */
export type BlobContent = { text: string } | { reason: string };

/** Trees (as entries) and blobs (as content) by object id. */
export interface ObjectMemo {
  trees: Map<string, git.TreeEntry[]>;
  blobs: Map<string, BlobContent>;
}

/** Reads trees and blobs through the previous read's memo; `used` is the memo for the next. */
export class ObjectReader {
  /** What this reader read (or found in the previous memo). */
  readonly used: ObjectMemo = { trees: new Map(), blobs: new Map() };
  private readonly caches = new Map<string, object>();
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });

  /**
   * @param previous the memo of an earlier read, of any clone.
   * @param maxBlobBytes larger blobs are not taken. isomorphic-git cannot tell
   *   an object's size without inflating it: what bounds the memory is the
   *   transport's check of every fetched object.
   */
  constructor(
    private readonly previous: ObjectMemo | undefined,
    private readonly maxBlobBytes: number,
  ) {}

  /** The entries of a tree, or of a commit's root tree. */
  async tree(dir: string, oid: string): Promise<git.TreeEntry[]> {
    let entries = this.used.trees.get(oid) ?? this.previous?.trees.get(oid);
    entries ??= (await git.readTree({ fs, dir, oid, cache: this.cache(dir) })).tree;
    this.used.trees.set(oid, entries);
    return entries;
  }

  /** A blob as UTF-8 text, or why it is not taken (too large, not UTF-8). */
  async blob(dir: string, oid: string): Promise<BlobContent> {
    let content = this.used.blobs.get(oid) ?? this.previous?.blobs.get(oid);
    if (!content) {
      const { blob } = await git.readBlob({ fs, dir, oid, cache: this.cache(dir) });
      if (blob.byteLength > this.maxBlobBytes) {
        content = {
          reason: `file is ${blob.byteLength} bytes, more than the ${this.maxBlobBytes} allowed`,
        };
      } else {
        try {
          content = { text: this.decoder.decode(blob) };
        } catch {
          content = { reason: "not valid UTF-8 text" };
        }
      }
    }
    this.used.blobs.set(oid, content);
    return content;
  }

  /** isomorphic-git's own cache (parsed pack indexes), one per git directory. */
  private cache(dir: string): object {
    let cache = this.caches.get(dir);
    if (!cache) {
      cache = {};
      this.caches.set(dir, cache);
    }
    return cache;
  }
}
