// The Town OS image's packages/cli/dist/main.js (os/build.sh puts it there,
// beside town.cjs, the command line and daemon bundled into one CommonJS
// file): runs the bundle with the V8 code cache the build made for it
// (town.cjs.cache). Compiling the 6 MB bundle is a third of the daemon's
// start-up CPU, seconds on a slow box; with the cache V8 skips most of it.
// Node 20 keeps no such cache for ES modules (module.enableCompileCache came
// in Node 22), hence CommonJS run through vm.Script, as Node runs a module.
// A cache V8 rejects (another Node, other flags) only costs the compile.
// TOWN_WRITE_CODE_CACHE=1: the build's run, which writes the cache at exit.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire, Module } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";

type ModuleFunction = (
  exports: unknown,
  require: NodeJS.Require,
  module: { exports: unknown },
  filename: string,
  dirname: string,
) => void;

const bundle = fileURLToPath(new URL("./town.cjs", import.meta.url));
const cacheFile = `${bundle}.cache`;
let cachedData: Buffer | undefined;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  // No cache: V8 compiles the bundle as usual.
}
// The entry's `#!` line, which Node's own loader drops, is no JavaScript inside the wrapper.
const source = readFileSync(bundle, "utf8").replace(/^#!.*/, "");
const script = new Script(Module.wrap(source), {
  filename: bundle,
  ...(cachedData === undefined ? {} : { cachedData }),
});
if (script.cachedDataRejected === true) {
  process.stderr.write(`town: ${cacheFile} is not for this Node; the bundle is compiled instead\n`);
}
if (process.env["TOWN_WRITE_CODE_CACHE"] === "1") {
  // At exit: the cache then holds every function this run compiled, not only the top level.
  process.on("exit", () => {
    writeFileSync(cacheFile, script.createCachedData());
  });
}
const run = script.runInThisContext() as ModuleFunction;
const module = { exports: {} };
run(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
