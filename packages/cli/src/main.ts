#!/usr/bin/env -S node --max-semi-space-size=4
// A 4 MB young generation (V8's default is 16 MB) keeps the daemon's memory
// small on a home box at no measurable cost in throughput (npm run bench).
import { processIo } from "./io.js";
import { runTown } from "./program.js";

// No top-level await: the image bundles this file as CommonJS (os/build.sh).
void runTown(process.argv.slice(2), processIo()).then((code) => {
  process.exitCode = code;
});
