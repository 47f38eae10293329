/**
 * An app's notes as the API shows them: those holding a secret answer (the
 * postgres connection URL with its password, say) are marked, and emptied
 * for callers who are not administrators.
 */
import { planSecrets, type CompiledPackage } from "@townos/format";
import { containsSecret } from "../redact.js";

export interface AppNote {
  label: string;
  /** Empty in a secret note shown to someone other than an administrator. */
  value: string;
  type: string;
  /** Holds the value of a secret answer: only administrators see it. */
  secret: boolean;
}

/** The plan's notes, each marked when it holds the value of a secret answer. */
export function appNotes(plan: CompiledPackage | null): AppNote[] {
  if (!plan) return [];
  const secrets = planSecrets(plan);
  return plan.notes.map((note) => ({ ...note, secret: containsSecret(note.value, secrets) }));
}

/** The notes as a caller sees them: secret values only for administrators. */
export function notesFor(notes: readonly AppNote[], admin: boolean): AppNote[] {
  return notes.map((note) => (note.secret && !admin ? { ...note, value: "" } : note));
}
