/**
 * Seeding volumes for real: templates written only where nothing is (and
 * never through a link out of the volume), git clones over smart HTTP from a
 * local `git http-backend`, host directories and archives copied into empty
 * volumes, and recovery from interrupted seeds.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buildTar } from "../../test/storage/archives.js";
import { sh } from "../../test/storage/loop-btrfs.js";
import { createRepo, git, startGitServer, type GitServer } from "../../test/git-server.js";
import {
  seedFromArchive,
  seedFromDirectory,
  seedFromGit,
  writeTemplates,
  type TemplateVolume,
} from "./seed.js";
import { recoverStaging } from "./staging.js";
import { expectTownError } from "../../../format/test/support.js";

const isRoot = process.getuid?.() === 0;
const owner = isRoot ? { uid: 1234, gid: 2345 } : undefined;
let base: string;
/** Where seeds stage, as a storage root's tmp/ would be. */
let stagingRoot: string;
let counter = 0;

before(async () => {
  base = await mkdtemp(join(os.tmpdir(), "town-seed-"));
  stagingRoot = join(base, "staging");
  await mkdir(stagingRoot, { mode: 0o700 });
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

async function freshVolume(): Promise<string> {
  const dir = join(base, `volume-${++counter}`);
  await mkdir(dir);
  return dir;
}

describe("templates", () => {
  it("writes files only where nothing is, 0600 in new 0750 directories", async () => {
    const dir = await freshVolume();
    await mkdir(join(dir, "existing"), { mode: 0o711 });
    const volumes: Record<string, TemplateVolume> = { config: owner ? { dir, owner } : { dir } };
    const files = [
      { volume: "config", path: "app/conf.d/main.ini", content: "[main]\nport = 8080\n" },
      { volume: "config", path: "existing/extra.ini", content: "extra" },
    ];
    assert.deepEqual(await writeTemplates(files, volumes), [
      { volume: "config", path: "app/conf.d/main.ini", written: true },
      { volume: "config", path: "existing/extra.ini", written: true },
    ]);
    const main = join(dir, "app", "conf.d", "main.ini");
    assert.equal(await readFile(main, "utf8"), "[main]\nport = 8080\n");
    assert.equal((await stat(main)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, "app"))).mode & 0o777, 0o750);
    assert.equal((await stat(join(dir, "app", "conf.d"))).mode & 0o777, 0o750);
    assert.equal(
      (await stat(join(dir, "existing"))).mode & 0o777,
      0o711,
      "existing directories keep their mode",
    );
    if (owner) {
      for (const path of ["app", "app/conf.d", "app/conf.d/main.ini", "existing/extra.ini"]) {
        const stats = await stat(join(dir, path));
        assert.deepEqual([stats.uid, stats.gid], [owner.uid, owner.gid], path);
      }
      assert.equal(
        (await stat(join(dir, "existing"))).uid,
        0,
        "existing directories keep their owner",
      );
    }
    // An edit survives the next render.
    await writeFile(main, "edited by hand");
    const again = await writeTemplates(files, volumes);
    assert.deepEqual(
      again.map((outcome) => outcome.written),
      [false, false],
    );
    assert.equal(await readFile(main, "utf8"), "edited by hand");
    assert.deepEqual(
      (await readdir(join(dir, "app", "conf.d"))).filter((name) => name.startsWith(".town-")),
      [],
    );
  });

  it("never writes through a link out of the volume, and says which files it refused", async () => {
    const dir = await freshVolume();
    const outside = join(base, `outside-${counter}`);
    await mkdir(outside);
    await symlink(outside, join(dir, "conf"));
    await symlink(join(outside, "planted"), join(dir, "direct.ini"));
    await writeFile(join(dir, "plain"), "a file");
    const error = await expectTownError(
      writeTemplates(
        [
          { volume: "v", path: "conf/app.ini", content: "x" },
          { volume: "v", path: "direct.ini", content: "x" },
          { volume: "v", path: "plain/below.ini", content: "x" },
          { volume: "v", path: "good.ini", content: "good" },
        ],
        { v: { dir } },
      ),
      "conflict",
      /2 file\(s\) could not be written safely/,
    );
    assert.deepEqual(error.issues, [
      { field: "v:conf/app.ini", message: 'goes through the symbolic link "conf"' },
      { field: "v:plain/below.ini", message: '"plain" is not a directory' },
    ]);
    assert.deepEqual(await readdir(outside), [], "nothing outside the volume");
    assert.equal(
      await readlink(join(dir, "direct.ini")),
      join(outside, "planted"),
      "a link at the path is kept",
    );
    assert.equal(await readFile(join(dir, "good.ini"), "utf8"), "good");
  });

  it("checks every file before writing any", async () => {
    const dir = await freshVolume();
    const error = await expectTownError(
      writeTemplates(
        [
          { volume: "v", path: "ok.ini", content: "x" },
          { volume: "v", path: "../escape.ini", content: "x" },
          { volume: "v", path: "/etc/passwd", content: "x" },
          { volume: "nope", path: "a", content: "x" },
          { volume: "v", path: "ok.ini", content: "again" },
        ],
        { v: { dir } },
      ),
      "invalid_argument",
      /4 invalid file\(s\)/,
    );
    assert.deepEqual(
      error.issues.map((issue) => `${issue.field ?? ""}: ${issue.message}`),
      [
        "v:../escape.ini: '..' in path",
        "v:/etc/passwd: absolute path",
        "nope:a: no such volume",
        "v:ok.ini: listed twice",
      ],
    );
    assert.deepEqual(await readdir(dir), []);
  });
});

describe("seeding from git", () => {
  let server: GitServer;
  let served: string;
  before(async () => {
    served = join(base, "served");
    await mkdir(served);
    const repo = await createRepo(served, "site.git", {
      "index.html": "<h1>hello</h1>\n",
      "assets/app.js": "console.log(1);\n",
      "bin/start.sh": "#!/bin/sh\nexec httpd\n",
    });
    await sh("chmod", ["+x", join(repo, "bin", "start.sh")]);
    await symlink("index.html", join(repo, "home.html"));
    await git(repo, ["add", "--all"]);
    await git(repo, ["commit", "--quiet", "-m", "executable and link"]);
    await git(repo, ["checkout", "--quiet", "-b", "stable"]);
    await writeFile(join(repo, "index.html"), "<h1>stable</h1>\n");
    await git(repo, ["commit", "--quiet", "-am", "stable"]);
    await git(repo, ["checkout", "--quiet", "main"]);
    server = await startGitServer({ root: served });
  });
  after(async () => {
    await server.close();
  });

  it("clones a branch with its work tree into an empty volume", async () => {
    const dir = await freshVolume();
    const phases = new Set<string>();
    const result = await seedFromGit(
      dir,
      { url: server.url("site.git"), branch: "stable" },
      {
        stagingRoot,
        ...(owner ? { owner } : {}),
        onProgress: (progress) => phases.add(progress.phase),
      },
    );
    assert.ok(result.seeded);
    assert.match(result.commit, /^[0-9a-f]{40}$/);
    assert.ok(phases.size > 0, "progress was reported");
    assert.equal(await readFile(join(dir, "index.html"), "utf8"), "<h1>stable</h1>\n");
    assert.equal(await readlink(join(dir, "home.html")), "index.html");
    assert.equal((await stat(join(dir, "bin", "start.sh"))).mode & 0o111, 0o111);
    assert.deepEqual((await readdir(dir)).sort(), [
      ".git",
      "assets",
      "bin",
      "home.html",
      "index.html",
    ]);
    // A real work tree: git sees nothing changed.
    assert.equal(await git(dir, ["-c", "safe.directory=*", "status", "--porcelain"]), "");
    if (owner) assert.equal((await lstat(join(dir, ".git", "HEAD"))).uid, owner.uid);
    const again = await seedFromGit(dir, { url: server.url("site.git") }, { stagingRoot });
    assert.deepEqual(again, { seeded: false, reason: "the volume is not empty" });
  });

  it("follows the remote's default branch when none is named", async () => {
    const dir = await freshVolume();
    await seedFromGit(dir, { url: server.url("site.git") }, { stagingRoot });
    assert.equal(await readFile(join(dir, "index.html"), "utf8"), "<h1>hello</h1>\n");
  });

  it("leaves a volume that holds anything alone", async () => {
    const dir = await freshVolume();
    await writeFile(join(dir, "user-data"), "precious");
    const result = await seedFromGit(dir, { url: server.url("site.git") }, { stagingRoot });
    assert.equal(result.seeded, false);
    assert.deepEqual(await readdir(dir), ["user-data"]);
  });

  it("fails cleanly: no branch, bad URLs, too large", async () => {
    const dir = await freshVolume();
    await expectTownError(
      seedFromGit(dir, { url: server.url("site.git"), branch: "nope" }, { stagingRoot }),
      "not_found",
      /no branch "nope"/,
    );
    await expectTownError(
      seedFromGit(dir, { url: "file:///etc" }, { stagingRoot }),
      "invalid_argument",
      /only http/,
    );
    await expectTownError(
      seedFromGit(dir, { url: server.url("site.git"), branch: "-x" }, { stagingRoot }),
      "invalid_argument",
      /not a valid branch/,
    );
    await expectTownError(
      seedFromGit(dir, { url: server.url("site.git") }, { stagingRoot, maxDownloadBytes: 100 }),
      "invalid_argument",
      /larger than 100 bytes/,
    );
    await expectTownError(
      seedFromGit(dir, { url: server.url("missing.git") }, { stagingRoot }),
      "io",
      /HTTP 404/,
    );
    assert.deepEqual(await readdir(dir), [], "nothing left behind");
  });

  it("gives up on a server that never answers", async () => {
    const silent = http.createServer(() => {
      // Never answers.
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as AddressInfo;
    const dir = await freshVolume();
    try {
      await expectTownError(
        seedFromGit(
          dir,
          { url: `http://127.0.0.1:${port}/x.git` },
          { stagingRoot, timeoutMs: 300 },
        ),
        "io",
        /timed out after 300 ms/,
      );
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
    assert.deepEqual(await readdir(dir), []);
  });
});

describe("seeding from a host directory", () => {
  it("copies links as links, skips special files, and only into an empty volume", async () => {
    const source = join(base, "exported");
    await mkdir(join(source, "etc", "nginx"), { recursive: true });
    await writeFile(join(source, "etc", "nginx", "nginx.conf"), "events {}\n");
    await symlink("/etc/passwd", join(source, "etc", "absolute-link"));
    await sh("mkfifo", [join(source, "etc", "pipe")]);
    const dir = await freshVolume();
    const result = await seedFromDirectory(dir, source, {
      stagingRoot,
      maxBytes: 1024 * 1024,
      maxEntries: 100,
      ...(owner ? { owner } : {}),
    });
    assert.ok(result.seeded);
    assert.deepEqual(result.skipped, [{ path: "etc/pipe", reason: "FIFO not copied" }]);
    assert.equal(await readFile(join(dir, "etc", "nginx", "nginx.conf"), "utf8"), "events {}\n");
    assert.equal(
      await readlink(join(dir, "etc", "absolute-link")),
      "/etc/passwd",
      "copied as a link, not followed",
    );
    if (owner) assert.equal((await lstat(join(dir, "etc", "absolute-link"))).uid, owner.uid);
    assert.equal(
      (await seedFromDirectory(dir, source, { stagingRoot, maxBytes: 1024, maxEntries: 10 }))
        .seeded,
      false,
    );
    const small = await freshVolume();
    await expectTownError(
      seedFromDirectory(small, source, { stagingRoot, maxBytes: 3, maxEntries: 100 }),
      "payload_too_large",
      /more than 3 bytes/,
    );
    assert.deepEqual(await readdir(small), []);
  });
});

describe("seeding from an archive", () => {
  it("unpacks into an empty volume only", async () => {
    const dir = await freshVolume();
    const archive = buildTar([{ path: "data/db.sqlite", body: "SQLite" }]);
    const result = await seedFromArchive(dir, Readable.from([archive]), "auto", {
      stagingRoot,
      maxBytes: 1024,
    });
    assert.ok(result.seeded && result.result.entries === 1);
    assert.equal(await readFile(join(dir, "data", "db.sqlite"), "utf8"), "SQLite");
    const input = Readable.from([archive]);
    assert.equal(
      (await seedFromArchive(dir, input, "auto", { stagingRoot, maxBytes: 1024 })).seeded,
      false,
    );
    assert.equal(input.destroyed, true);
  });
});

describe("recovering interrupted seeds", () => {
  it("finishes a complete staged tree and discards an incomplete one", async () => {
    const finished = await freshVolume();
    const ready = join(stagingRoot, "ready-00000000000000aa");
    await mkdir(join(ready, "tree", "sub"), { recursive: true });
    await writeFile(join(ready, "tree", "sub", "f"), "done");
    await writeFile(join(ready, "target"), finished);
    const unfinished = await freshVolume();
    const half = join(stagingRoot, "stage-00000000000000bb");
    await mkdir(join(half, "tree"), { recursive: true });
    await writeFile(join(half, "tree", "half"), "half");
    await writeFile(join(half, "target"), unfinished);
    const refused = await freshVolume();
    const elsewhere = join(stagingRoot, "ready-00000000000000cc");
    await mkdir(join(elsewhere, "tree"), { recursive: true });
    await writeFile(join(elsewhere, "tree", "moved"), "moved");
    await writeFile(join(elsewhere, "target"), refused);

    await recoverStaging(stagingRoot, (target) => target !== refused);
    assert.deepEqual(await readdir(finished), ["sub"]);
    assert.equal(await readFile(join(finished, "sub", "f"), "utf8"), "done");
    assert.deepEqual(await readdir(unfinished), [], "an unfinished tree is discarded");
    assert.deepEqual(await readdir(refused), [], "only targets the caller accepts");
    assert.deepEqual(await readdir(stagingRoot), []);
  });

  it("never follows staging-looking links a container planted in its volume", async () => {
    const outside = join(base, `outside-${++counter}`);
    await mkdir(join(outside, "tree"), { recursive: true });
    await writeFile(join(outside, "tree", "secret"), "host secret");
    await writeFile(join(outside, "secret"), "host secret");
    const dir = await freshVolume();
    // What an app in the volume can make: a "complete" staged tree leading out, and one that is a link itself.
    await mkdir(join(dir, ".town-ready-0123456789abcdef"));
    await symlink(outside, join(dir, ".town-ready-0123456789abcdef", "tree"));
    await symlink(outside, join(dir, ".town-ready-fedcba9876543210"));
    await symlink(join(outside, "tree"), join(dir, ".town-staging-00112233445566ff"));
    const source = await freshVolume();
    await writeFile(join(source, "seeded"), "seeded");
    const result = await seedFromDirectory(dir, source, {
      stagingRoot,
      maxBytes: 10,
      maxEntries: 10,
    });
    assert.equal(result.seeded, true, "Town OS's names alone leave a volume empty");
    assert.deepEqual((await readdir(dir)).sort(), [
      ".town-ready-0123456789abcdef",
      ".town-ready-fedcba9876543210",
      ".town-staging-00112233445566ff",
      "seeded",
    ]);
    assert.deepEqual((await readdir(outside)).sort(), ["secret", "tree"], "nothing moved out");
    assert.deepEqual(await readdir(join(outside, "tree")), ["secret"]);
    assert.deepEqual(await readdir(stagingRoot), []);
  });
});
