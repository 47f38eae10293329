#!/usr/bin/env node
import { processIo, runTown } from "./program.js";

process.exitCode = await runTown(process.argv.slice(2), processIo());
