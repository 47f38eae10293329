/** The `notes` section: labelled values shown to the person after install. */

import type { Field, FieldReader } from "./reader.js";
import { NOTE_TYPES, type NoteDefinition, type NoteType } from "./types.js";

export function readNotes(r: FieldReader, node: Field): Map<string, NoteDefinition> {
  const notes = new Map<string, NoteDefinition>();
  for (const [label, value] of r.source.map(node, "notes")) {
    const field = `notes.${label}`;
    // A bare string is what an author would expect to mean a plain note.
    if (!r.source.isMapping(value, field)) {
      notes.set(label, { value: r.text(value, field) ?? "", type: "" });
      continue;
    }
    const fields = r.fieldsOf(value, field, ["value", "type"]);
    const type = r.text(fields.get("type"), `${field}.type`) ?? "";
    if (!isNoteType(type)) {
      r.source.error(
        `${field}.type`,
        fields.get("type"),
        `unknown note type "${type}" (url, phone, email)`,
      );
    }
    notes.set(label, {
      value: r.text(fields.get("value"), `${field}.value`) ?? "",
      type: isNoteType(type) ? type : "",
    });
  }
  return notes;
}

function isNoteType(type: string): type is NoteType {
  return (NOTE_TYPES as readonly string[]).includes(type);
}
