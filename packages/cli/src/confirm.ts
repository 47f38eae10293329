import type { Io } from "./io.js";
import { UsageError } from "./usage.js";

/**
 * Asks before a change that replaces data; goes on with `--yes` or when the
 * person answers y, else stops the command. Without a terminal to ask on,
 * `--yes` is required.
 */
export async function confirm(io: Io, question: string, yes: boolean | undefined): Promise<void> {
  if (yes === true) return;
  if (!io.interactive) {
    throw new UsageError(`${question}: confirm with --yes (there is no terminal to ask on)`);
  }
  const answer = await io.ask(`${question}? [y/N] `, false);
  if (!/^y(es)?$/i.test(answer.trim())) throw new UsageError("cancelled: nothing was changed");
}
