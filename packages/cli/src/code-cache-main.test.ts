import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const repository = fileURLToPath(new URL("../../..", import.meta.url));

describe("the image's main.js: the CommonJS bundle with V8's code cache", () => {
  let dir: string;
  const main = () => join(dir, "main.ts");
  const start = (env: Record<string, string> = {}) =>
    run(process.execPath, ["--import", "tsx", main(), "a", "b"], {
      cwd: repository,
      env: { ...process.env, ...env },
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "town-code-cache-"));
    await copyFile(fileURLToPath(new URL("./code-cache-main.ts", import.meta.url)), main());
    // A bundle needing what Node gives a CommonJS module: its `#!` line dropped,
    // require from its own directory, __filename, and the process's arguments.
    await writeFile(join(dir, "helper.cjs"), "module.exports = (words) => words.join('+');\n");
    await writeFile(
      join(dir, "town.cjs"),
      "#!/usr/bin/env node\n" +
        "const join = require('./helper.cjs');\n" +
        "function greet(name) { return 'ran ' + require('node:path').basename(__filename) + ' ' + name; }\n" +
        "console.log(greet(join(process.argv.slice(2))));\n",
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes the cache when asked, then runs from it without complaint", async () => {
    const first = await start({ TOWN_WRITE_CODE_CACHE: "1" });
    assert.equal(first.stdout, "ran town.cjs a+b\n");
    assert.ok((await stat(join(dir, "town.cjs.cache"))).size > 0);
    const cached = await readFile(join(dir, "town.cjs.cache"));
    const second = await start();
    assert.equal(second.stdout, "ran town.cjs a+b\n");
    assert.equal(second.stderr, "");
    // Only the build's run writes it.
    assert.deepEqual(await readFile(join(dir, "town.cjs.cache")), cached);
  });

  it("says so and compiles the bundle when the cache is not V8's", async () => {
    await writeFile(join(dir, "town.cjs.cache"), "not a code cache");
    const { stdout, stderr } = await start();
    assert.equal(stdout, "ran town.cjs a+b\n");
    assert.match(stderr, /town\.cjs\.cache is not for this Node; the bundle is compiled instead/);
  });
});
