import { setTimeout as sleep } from "node:timers/promises";
import type { TownClient } from "@townos/client";
import { TownError } from "@townos/format";
import type { Io } from "./io.js";

/** How often the flow's state is asked for: the daemon polls the provider at its own interval. */
const WATCH_MS = 1000;

/**
 * Links an account for each oauth question: the daemon starts the flow, the
 * page to open is printed (stdout), and a dot per second shows the wait
 * (stderr) until the flow is done. Returns question → flow id for the
 * install; the token itself never comes to this side.
 */
export async function linkAccounts(
  api: TownClient,
  /** No version: the latest, as for an upgrade. */
  target: { repo: string; name: string; version?: string },
  questions: readonly string[],
  io: Pick<Io, "stdout" | "stderr">,
): Promise<Record<string, string>> {
  const flows: Record<string, string> = {};
  for (const question of questions) {
    const flow = await api.startOAuthFlow({ ...target, question });
    io.stdout(`Open this page to link the account for "${question}":\n  ${flow.approveUrl}\n`);
    const until = new Date(flow.expiresAt).toLocaleTimeString();
    io.stderr(`waiting for the approval (until ${until}) `);
    for (;;) {
      await sleep(WATCH_MS);
      const view = await api.oauthFlow(flow.id);
      if (view.state === "pending") {
        io.stderr(".");
        continue;
      }
      io.stderr("\n");
      if (view.state !== "done") {
        throw new TownError(
          "unavailable",
          `the account link for "${question}" ${view.state === "expired" ? "expired" : "failed"}${view.error === null ? "" : `: ${view.error}`}`,
        );
      }
      io.stderr(`linked the account for "${question}"\n`);
      break;
    }
    flows[question] = flow.id;
  }
  return flows;
}
