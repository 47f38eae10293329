/**
 * `backup`, this project's extension: how a package's app is quiesced before
 * a snapshot of its volumes, `stop` (its containers stopped, started again
 * after) or `command` (run in its container first), with a `timeout`.
 * Without it a snapshot is crash-consistent.
 */

import {
  hasMarker,
  MAX_QUIESCE_ARG_LENGTH,
  MAX_QUIESCE_ARGS,
  parseQuiesceTimeout,
  QUIESCE_MODES,
  type QuiesceMode,
} from "../rules.js";
import type { Field, FieldReader } from "./reader.js";
import type { PackageDefinition } from "./types.js";

export function readBackup(
  r: FieldReader,
  node: Field,
  runtime: { vm: boolean },
): PackageDefinition["backup"] {
  if (node == null) return undefined;
  const fields = r.fieldsOf(node, "backup", ["quiesce", "command", "timeout"]);
  const quiesceNode = fields.get("quiesce");
  const quiesce = r.required(quiesceNode, "backup.quiesce");
  if (quiesce !== "" && !isQuiesceMode(quiesce)) {
    r.source.error("backup.quiesce", quiesceNode, `"${quiesce}" is not one of stop, command`);
  }
  // There is no running a command inside a VM's guest; it can only be shut down.
  if (runtime.vm && quiesce === "command") {
    r.source.error(
      "backup.quiesce",
      quiesceNode,
      "a virtual machine can only be stopped for a snapshot (there is no command to run in it)",
    );
  }
  const command = readCommand(r, fields, quiesce === "command");
  const timeout = r.text(fields.get("timeout"), "backup.timeout");
  if (timeout !== undefined && !hasMarker(timeout)) {
    const parsed = parseQuiesceTimeout(timeout);
    if (typeof parsed === "string") r.source.error("backup.timeout", fields.get("timeout"), parsed);
  }
  // With a bad mode the file has an error and the definition is dropped: "stop" only fills the type.
  return {
    quiesce: isQuiesceMode(quiesce) ? quiesce : "stop",
    command,
    ...(timeout === undefined ? {} : { timeout }),
  };
}

/** The argument list, required for `quiesce: command` and refused otherwise. */
function readCommand(
  r: FieldReader,
  fields: ReadonlyMap<string, Field>,
  wanted: boolean,
): string[] {
  const node = fields.get("command");
  if (node == null) {
    if (wanted) r.source.keyError("backup", "command is required with quiesce: command");
    return [];
  }
  if (!wanted) {
    r.source.error("backup.command", node, "is only for quiesce: command");
    return [];
  }
  const before = r.source.issues.length;
  const items = r.source.list(node, "backup.command");
  if (items.length === 0) {
    // No error yet: an empty list rather than something that is not a list.
    if (r.source.issues.length === before)
      r.source.error("backup.command", node, "must not be empty");
    return [];
  }
  if (items.length > MAX_QUIESCE_ARGS) {
    r.source.error("backup.command", node, `has more than ${MAX_QUIESCE_ARGS} arguments`);
    return [];
  }
  const command = items.map((item, i) =>
    r.text(item, `backup.command.${i}`, { max: MAX_QUIESCE_ARG_LENGTH }),
  );
  if (command[0] === "") r.source.error("backup.command.0", items[0], "must not be empty");
  return command.map((arg) => arg ?? "");
}

function isQuiesceMode(text: string): text is QuiesceMode {
  return (QUIESCE_MODES as readonly string[]).includes(text);
}
