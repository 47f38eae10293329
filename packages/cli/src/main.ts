#!/usr/bin/env node
import { runTown } from "./program.js";

process.exitCode = await runTown(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  cwd: process.cwd(),
});
