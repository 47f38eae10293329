/**
 * Archives into and out of real directories: round trips through every
 * format (with the system's xz, bzip2 and zip), hostile archives built byte
 * by byte, limits, time-outs and memory.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmod,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { createGzip, gunzipSync } from "node:zlib";
import { TownError } from "@townos/format";
import { buildTar, buildZip, generatedTar, type TarSpec } from "../../test/storage/archives.js";
import { packVolume, unpackArchive, type ArchiveFormat, type UnpackResult } from "./archive.js";
import { expectTownError } from "../../../format/test/support.js";

const MiB = 1024 * 1024;
let base: string;
/** Where unpacks stage, as a storage root's tmp/ would be. */
let staging: string;
let counter = 0;

before(async () => {
  base = await mkdtemp(join(os.tmpdir(), "town-archive-"));
  staging = join(base, "staging");
  await mkdir(staging, { mode: 0o700 });
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

/** A fresh `<parent>/target`; `parent` holds nothing else, so escapes show. */
async function freshTarget(): Promise<{ parent: string; target: string }> {
  const parent = join(base, `case-${++counter}`);
  const target = join(parent, "target");
  await mkdir(target, { recursive: true });
  return { parent, target };
}

async function assertContained(parent: string): Promise<void> {
  assert.deepEqual(await readdir(parent), ["target"], "nothing written beside the target");
  const leftovers = (await readdir(join(parent, "target"))).filter((name) =>
    name.startsWith(".town-"),
  );
  assert.deepEqual(leftovers, [], "nothing of Town OS's own in the target");
  assert.deepEqual(await readdir(staging), [], "no staging left behind");
}

function unpack(
  data: Buffer | Readable,
  target: string,
  options: {
    format?: ArchiveFormat | "auto";
    maxBytes?: number;
    maxEntries?: number;
    timeoutMs?: number;
  } = {},
): Promise<UnpackResult> {
  const input = Buffer.isBuffer(data) ? Readable.from([data]) : data;
  return unpackArchive(input, options.format ?? "auto", target, {
    stagingRoot: staging,
    maxBytes: options.maxBytes ?? 64 * MiB,
    ...(options.maxEntries === undefined ? {} : { maxEntries: options.maxEntries }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every entry of a tree as one line: path, type, permissions, content hash or link target. */
async function describeTree(dir: string, prefix = ""): Promise<string[]> {
  const lines: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    const stats = await lstat(path);
    const mode = (stats.mode & 0o7777).toString(8);
    if (stats.isSymbolicLink()) lines.push(`${prefix}${name} link -> ${await readlink(path)}`);
    else if (stats.isDirectory()) {
      lines.push(`${prefix}${name}/ ${mode}`);
      lines.push(...(await describeTree(path, `${prefix}${name}/`)));
    } else {
      const hash = createHash("sha256")
        .update(await readFile(path))
        .digest("hex")
        .slice(0, 12);
      lines.push(`${prefix}${name} ${mode} ${hash} nlink=${stats.nlink}`);
    }
  }
  return lines;
}

describe("round trips", () => {
  let source: string;
  let expected: string[];
  before(async () => {
    source = join(base, "source");
    await mkdir(join(source, "docs", "deep"), { recursive: true });
    await writeFile(join(source, "docs", "readme.md"), "# hello\n");
    await writeFile(
      join(source, "docs", "deep", "blob.bin"),
      Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251)),
    );
    await writeFile(join(source, "empty"), "");
    await writeFile(join(source, "run.sh"), "#!/bin/sh\necho hi\n");
    await chmod(join(source, "run.sh"), 0o755);
    await writeFile(join(source, "secret"), "s3cret");
    await chmod(join(source, "secret"), 0o600);
    await chmod(join(source, "docs", "deep"), 0o750);
    await symlink("docs/readme.md", join(source, "readme-link"));
    await symlink("../readme.md", join(source, "docs", "deep", "up-link"));
    await link(join(source, "secret"), join(source, "secret-hardlink"));
    expected = await describeTree(source);
  });

  for (const format of ["tar.gz", "tar.xz"] as const) {
    it(`packs and unpacks ${format}`, async () => {
      const archive = await collect(await packVolume(source, { format }));
      const { parent, target } = await freshTarget();
      const result = await unpack(archive, target, { format });
      assert.equal(result.format, format);
      assert.deepEqual(result.refused, []);
      assert.deepEqual(await describeTree(target), expected);
      await assertContained(parent);
    });
  }

  it("unpacks plain tar and tar.bz2 (through the system's bzip2)", async () => {
    const tar = gunzipSync(await collect(await packVolume(source, { format: "tar.gz" })));
    const bz2 = spawnSync("bzip2", ["-c"], { input: tar, maxBuffer: 64 * MiB }).stdout;
    for (const [format, data] of [
      ["tar", tar],
      ["tar.bz2", bz2],
    ] as const) {
      const { parent, target } = await freshTarget();
      const result = await unpack(data, target);
      assert.equal(result.format, format);
      assert.deepEqual(await describeTree(target), expected, format);
      await assertContained(parent);
    }
  });

  it("unpacks zip made by the zip program, links included", async () => {
    const zipFile = join(base, "made.zip");
    const made = spawnSync("zip", ["-qry", zipFile, "."], { cwd: source });
    assert.equal(made.status, 0, made.stderr.toString());
    const { parent, target } = await freshTarget();
    const result = await unpack(await readFile(zipFile), target);
    assert.equal(result.format, "zip");
    assert.deepEqual(result.refused, []);
    // zip keeps no hard links: the second name is a copy.
    const withoutLinks = (lines: string[]) => lines.map((line) => line.replace(/ nlink=\d+$/, ""));
    assert.deepEqual(withoutLinks(await describeTree(target)), withoutLinks(expected));
    await assertContained(parent);
  });

  it("packs only the chosen paths, and checks them first", async () => {
    const archive = await collect(
      await packVolume(source, { format: "tar.gz", paths: ["docs/deep", "run.sh"] }),
    );
    const { target } = await freshTarget();
    await unpack(archive, target);
    assert.deepEqual(
      (await describeTree(target)).map((line) => line.split(" ")[0]),
      ["docs/", "docs/deep/", "docs/deep/blob.bin", "docs/deep/up-link", "run.sh"],
    );
    await expectTownError(
      packVolume(source, { format: "tar.gz", paths: ["../etc"] }),
      "invalid_argument",
      /'\.\.'/,
    );
    await expectTownError(
      packVolume(source, { format: "tar.gz", paths: ["/etc"] }),
      "invalid_argument",
      /absolute/,
    );
    await expectTownError(
      packVolume(source, { format: "tar.gz", paths: ["readme-link/x"] }),
      "invalid_argument",
      /symbolic link "readme-link"/,
    );
    await expectTownError(
      packVolume(source, { format: "tar.gz", paths: ["nope"] }),
      "not_found",
      /does not exist/,
    );
  });

  it("leaves Town OS's own work in progress out of a whole-volume archive", async () => {
    const dir = join(base, "with-staging");
    await mkdir(join(dir, ".town-staging-0123"), { recursive: true });
    await writeFile(join(dir, "kept"), "k");
    const { target } = await freshTarget();
    await unpack(await collect(await packVolume(dir, { format: "tar.gz" })), target);
    assert.deepEqual(await readdir(target), ["kept"]);
  });
});

describe("hostile tar archives", () => {
  it("refuses every escape, reports each, and writes nothing outside", async () => {
    const entries: TarSpec[] = [
      { path: "../evil", body: "x" },
      { path: "/etc/evil-town-test", body: "x" },
      { path: "etc-link", type: "SymbolicLink", linkpath: "/etc" },
      { path: "etc-link/passwd", body: "root::0:0" },
      { path: "up-link", type: "SymbolicLink", linkpath: "../../outside" },
      { path: "hard-out", type: "Link", linkpath: "../../etc/passwd" },
      { path: "hard-abs", type: "Link", linkpath: "/etc/passwd" },
      { path: "hard-missing", type: "Link", linkpath: "nothing-here" },
      { path: "null", type: "CharacterDevice" },
      { path: "pipe", type: "FIFO" },
      { path: "ok.txt", body: "fine" },
      { path: "ok-link", type: "SymbolicLink", linkpath: "ok.txt" },
      { path: "ok-link/through", body: "x" },
      { path: "climb", type: "SymbolicLink", linkpath: "ok-link/.." },
      { path: "ok-hard", type: "Link", linkpath: "ok.txt" },
      { path: "./", type: "Directory" },
    ];
    const { parent, target } = await freshTarget();
    const result = await unpack(buildTar(entries), target);
    assert.deepEqual(
      result.refused.map((entry) => `${entry.path}: ${entry.reason}`),
      [
        "../evil: '..' in path",
        "/etc/evil-town-test: absolute path",
        'etc-link: link points outside (absolute target "/etc")',
        'etc-link/passwd: inside the refused entry "etc-link"',
        'up-link: link points outside ("../../outside")',
        "hard-out: hard link target: '..' in path",
        "hard-abs: hard link target: absolute path",
        'hard-missing: hard link to "nothing-here", which is not a file unpacked before it',
        "null: device file",
        "pipe: FIFO",
        'ok-link/through: inside "ok-link", which is a link',
        'climb: link target "ok-link/.." climbs after descending',
      ],
    );
    assert.equal(result.refusedCount, 12);
    assert.equal(result.entries, entries.length);
    assert.deepEqual(await readdir(target), ["ok-hard", "ok-link", "ok.txt"]);
    assert.equal((await lstat(join(target, "ok-hard"))).nlink, 2);
    await assertContained(parent);
    await assert.rejects(lstat("/etc/evil-town-test"), /ENOENT/);
  });

  it("replaces an earlier file of the same path, as tar does, but not a directory", async () => {
    const { target } = await freshTarget();
    const result = await unpack(
      buildTar([
        { path: "a", body: "first" },
        { path: "a", body: "second" },
        { path: "d/", type: "Directory" },
        { path: "d", body: "not a dir" },
      ]),
      target,
    );
    assert.equal(await readFile(join(target, "a"), "utf8"), "second");
    assert.deepEqual(result.refused, [
      { path: "d", reason: "clashes with an earlier entry of another type" },
    ]);
  });

  it("fails past the limits, leaving the target as it was", async () => {
    const { parent, target } = await freshTarget();
    const big = buildTar([
      { path: "a", body: Buffer.alloc(600 * 1024) },
      { path: "b", body: Buffer.alloc(600 * 1024) },
    ]);
    await expectTownError(
      unpack(big, target, { maxBytes: MiB }),
      "payload_too_large",
      /more than 1048576 bytes/,
    );
    const many = buildTar(Array.from({ length: 20 }, (_, i) => ({ path: `f${i}`, body: "x" })));
    await expectTownError(
      unpack(many, target, { maxEntries: 10 }),
      "payload_too_large",
      /more than 10 entries/,
    );
    await expectTownError(
      unpackArchive(Readable.from([big]), "auto", target, {
        stagingRoot: staging,
        maxBytes: 10 * MiB,
        maxArchiveBytes: 100_000,
      }),
      "payload_too_large",
      /archive is larger than 100000 bytes/,
    );
    assert.deepEqual(await readdir(target), []);
    await assertContained(parent);
  });

  it("refuses what is not an archive, a wrong format and corrupt data", async () => {
    const { parent, target } = await freshTarget();
    await expectTownError(
      unpack(Buffer.from("just text\n".repeat(100)), target),
      "invalid_argument",
      /not a tar/,
    );
    const tar = buildTar([{ path: "a", body: "x" }]);
    await expectTownError(
      unpack(tar, target, { format: "zip" }),
      "invalid_argument",
      /expected zip, but this is tar/,
    );
    const gz = await collect(Readable.from([tar]).pipe(createGzip()));
    gz[gz.length - 6] = (gz[gz.length - 6] ?? 0) ^ 0xff; // the CRC
    await expectTownError(unpack(gz, target), "invalid_argument", /gzip data is corrupt/);
    const xz = spawnSync("xz", ["-c"], {
      input: buildTar([{ path: "a", body: Buffer.alloc(200_000, 3) }]),
    }).stdout;
    await expectTownError(
      unpack(xz.subarray(0, xz.length - 40), target),
      "invalid_argument",
      /^archive: xz: Unexpected end of input$/,
    );
    assert.deepEqual(await readdir(target), []);
    await assertContained(parent);
  });

  it("fails when a top-level name is taken, before moving anything", async () => {
    const { target } = await freshTarget();
    await writeFile(join(target, "taken"), "mine");
    await expectTownError(
      unpack(
        buildTar([
          { path: "fresh", body: "x" },
          { path: "taken", body: "theirs" },
        ]),
        target,
      ),
      "conflict",
      /already there: "taken"/,
    );
    assert.deepEqual(await readdir(target), ["taken"]);
    assert.equal(await readFile(join(target, "taken"), "utf8"), "mine");
  });

  it(
    "gives everything to the owner asked for",
    { skip: process.getuid?.() === 0 ? false : "needs root" },
    async () => {
      const { target } = await freshTarget();
      await unpackArchive(
        Readable.from([
          buildTar([
            { path: "d/f", body: "x" },
            { path: "l", type: "SymbolicLink", linkpath: "d/f" },
          ]),
        ]),
        "tar",
        target,
        { stagingRoot: staging, maxBytes: MiB, owner: { uid: 1234, gid: 2345 } },
      );
      for (const path of ["d", "d/f", "l"]) {
        const stats = await lstat(join(target, path));
        assert.deepEqual([stats.uid, stats.gid], [1234, 2345], path);
      }
    },
  );

  it("times out on a stalled upload", async () => {
    const { parent, target } = await freshTarget();
    const stalled = new Readable({ read() {} });
    stalled.push(buildTar([{ path: "a", body: "x".repeat(2000) }]).subarray(0, 1024));
    await expectTownError(
      unpack(stalled, target, { timeoutMs: 300 }),
      "io",
      /timed out after 300 ms/,
    );
    assert.equal(stalled.destroyed, true);
    assert.deepEqual(await readdir(target), []);
    await assertContained(parent);
  });
});

describe("hostile zip archives", () => {
  it("refuses escapes by name and by link", async () => {
    const { parent, target } = await freshTarget();
    const result = await unpack(
      buildZip([
        { name: "../evil.txt", data: "x" },
        { name: "/abs.txt", data: "x" },
        { name: "win\\..\\..\\evil.txt", data: "x" },
        { name: "sym", data: "/etc", unixMode: 0o120777 },
        { name: "sym/passwd", data: "x" },
        { name: "fifo", unixMode: 0o010644 },
        { name: "dir/", unixMode: 0o040755 },
        { name: "dir/ok.txt", data: "fine", deflate: true, unixMode: 0o100640 },
        { name: "dir/rel", data: "ok.txt", unixMode: 0o120777 },
      ]),
      target,
    );
    assert.deepEqual(
      result.refused.map((entry) => `${entry.path}: ${entry.reason}`),
      [
        "../evil.txt: '..' in path",
        "/abs.txt: absolute path",
        "win/../../evil.txt: '..' in path",
        'sym: link points outside (absolute target "/etc")',
        'sym/passwd: inside the refused entry "sym"',
        "fifo: FIFO",
      ],
    );
    assert.deepEqual(await describeTree(target), [
      "dir/ 755",
      `dir/ok.txt 640 ${createHash("sha256").update("fine").digest("hex").slice(0, 12)} nlink=1`,
      "dir/rel link -> ok.txt",
    ]);
    await assertContained(parent);
  });

  it("stops a zip bomb, honest or lying about its size", async () => {
    const { parent, target } = await freshTarget();
    const zeros = Buffer.alloc(20 * MiB);
    await expectTownError(
      unpack(buildZip([{ name: "bomb", data: zeros, deflate: true }]), target, { maxBytes: MiB }),
      "payload_too_large",
      /more than 1048576 bytes/,
    );
    await assert.rejects(
      unpack(buildZip([{ name: "liar", data: zeros, deflate: true, declaredSize: 100 }]), target, {
        maxBytes: MiB,
      }),
      (error: unknown) =>
        error instanceof TownError &&
        ["invalid_argument", "payload_too_large"].includes(error.code),
    );
    assert.deepEqual(await readdir(target), []);
    await assertContained(parent);
  });

  it("refuses a broken zip", async () => {
    const { target } = await freshTarget();
    const zip = buildZip([{ name: "a", data: "x" }]);
    await expectTownError(
      unpack(zip.subarray(0, zip.length - 10), target),
      "invalid_argument",
      /not a valid zip/,
    );
  });
});

describe("memory", () => {
  it("stays flat while a 200 MB tar.gz streams through", async () => {
    const { target } = await freshTarget();
    const upload = generatedTar(200 * MiB, 8 * MiB).pipe(createGzip({ level: 1 }));
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      const result = await unpackArchive(upload, "tar.gz", target, {
        stagingRoot: staging,
        maxBytes: 300 * MiB,
      });
      assert.equal(result.bytes, 200 * MiB);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    const growth = (peak - baseline) / MiB;
    console.log(`# RSS growth while unpacking 200 MB: ${growth.toFixed(1)} MB`);
    assert.ok(growth < 64, `RSS grew by ${growth.toFixed(1)} MB`);
    await rm(target, { recursive: true, force: true });
  });
});
