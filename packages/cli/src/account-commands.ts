import type { Command } from "commander";
import { ApiError } from "@townos/client";
import { DEFAULT_DATA_DIR, SETUP_CODE_FILE } from "@townos/daemon";
import { allPages } from "./connect.js";
import { forgetToken, readSetupCode, saveToken } from "./credentials.js";
import { table } from "./text.js";
import { clientKit, type JsonFlag } from "./client-kit.js";
import type { Io } from "./io.js";

/** `town setup`, `login`, `logout` and `user …`: the box's first run, sessions and accounts. */
export function registerAccountCommands(program: Command, io: Io): void {
  const { client, print, json, need, password } = clientKit(program, io);
  program
    .command("setup")
    .description("create the first administrator of a new box, and sign in")
    .option("--username <name>")
    .option("--password <password>")
    .option("--email <address>")
    .option(
      "--code <code>",
      `the setup code the daemon logged (default: read from ${SETUP_CODE_FILE} in TOWN_DATA_DIR, ${DEFAULT_DATA_DIR})`,
    )
    .action(
      async (flags: { username?: string; password?: string; email?: string; code?: string }) => {
        const api = await client();
        const setupCode =
          flags.code ??
          (await readSetupCode(io.env)) ??
          (io.interactive ? await io.ask("Setup code (in the daemon's log): ", false) : undefined);
        const signedIn = await api.setup({
          username: await need(flags.username, "Username: "),
          password: await password(flags.password),
          ...(flags.email ? { email: flags.email } : {}),
          ...(setupCode ? { setupCode } : {}),
        });
        await saveToken(io.env, signedIn.token);
        print(`Town OS is set up; signed in as ${signedIn.account.username} (administrator)`);
      },
    );

  program
    .command("login")
    .description("sign in and keep the session token for later commands")
    .option("--username <name>")
    .option("--password <password>")
    .action(async (flags: { username?: string; password?: string }) => {
      const api = await client();
      // A token saved before the daemon restarted is no longer valid: signing in must not send it.
      api.token = undefined;
      const signedIn = await api.login({
        username: await need(flags.username, "Username: "),
        password: await password(flags.password),
      });
      await saveToken(io.env, signedIn.token);
      print(`signed in as ${signedIn.account.username}`);
    });

  program
    .command("logout")
    .description("end this session")
    .action(async () => {
      const api = await client();
      if (api.token) {
        try {
          await api.logout();
        } catch (error) {
          // An expired session is already over; forgetting the token is all that is left.
          if (!(error instanceof ApiError && error.problem.code === "unauthenticated")) throw error;
        }
      }
      await forgetToken(io.env);
      print("signed out");
    });

  const user = program.command("user").description("accounts (administrators)");
  user
    .command("add")
    .option("--username <name>")
    .option("--password <password>")
    .option("--email <address>")
    .option("--admin", "make the account an administrator")
    .action(
      async (flags: { username?: string; password?: string; email?: string; admin?: boolean }) => {
        const account = await (
          await client()
        ).createAccount({
          username: await need(flags.username, "Username: "),
          password: await password(flags.password),
          role: flags.admin ? "admin" : "user",
          ...(flags.email ? { email: flags.email } : {}),
        });
        print(`added ${account.username} (${account.role})`);
      },
    );
  user
    .command("ls")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const page = await allPages((query) => client().then((api) => api.accounts(query)));
      if (flags.json) {
        json(page);
        return;
      }
      print(
        table(
          ["USERNAME", "ROLE", "STATE", "EMAIL"],
          page.map((a) => [a.username, a.role, a.disabled ? "disabled" : "active", a.email ?? ""]),
        ),
      );
    });
  for (const [name, disabled] of [
    ["disable", true],
    ["enable", false],
  ] as const) {
    user
      .command(name)
      .argument("<username>")
      .action(async (username: string) => {
        const account = await (await client()).updateAccount(username, { disabled });
        print(`${account.username} is ${account.disabled ? "disabled" : "enabled"}`);
      });
  }
  user
    .command("promote")
    .argument("<username>")
    .action(async (username: string) => {
      await (await client()).updateAccount(username, { role: "admin" });
      print(`${username} is an administrator`);
    });
}
