import type { Command } from "commander";
import type { ConsolePassword } from "@townos/client";
import { clientKit, usage, type JsonFlag } from "./client-kit.js";
import type { Io } from "./io.js";
import { readSecretText } from "./state-commands.js";

/** `town console-password …`: root's password on the Town OS image's own screen (administrators). */
export function registerConsolePasswordCommands(program: Command, io: Io): void {
  const { client, print, json } = clientKit(program, io);
  const show = (answer: ConsolePassword, flags: JsonFlag): void => {
    if (flags.json) {
      json(answer);
      return;
    }
    print(
      answer.set
        ? "Root has a console password: it logs in on the box's own screen and keyboard (Alt+F2), never over the network."
        : "No console password: nobody can log in on the box's own screen.",
    );
    if (!answer.served)
      print("(This box does not run the Town OS image: the password is kept, unused.)");
  };

  /** Typed twice on a terminal (not echoed), else one line from stdin. */
  const readPassword = async (): Promise<string> => {
    if (!io.interactive) return readSecretText(process.stdin, "The console password");
    const password = await io.ask("Console password for root: ", true);
    if ((await io.ask("The same again: ", true)) !== password) {
      throw usage("the two passwords differ");
    }
    return password;
  };

  const command = program
    .command("console-password")
    .description(
      "root's password for the Town OS image's own screen and keyboard (kept as a hash on the data pool; SSH stays key-only)",
    )
    .option("--json")
    .action(async (flags: JsonFlag) => {
      show(await (await client()).consolePassword(), flags);
    });
  command
    .command("set")
    .description("set or change it: typed twice on a terminal, else read from stdin")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      const password = await readPassword();
      show(await (await client()).setConsolePassword(password), flags);
    });
  command
    .command("clear")
    .description("remove it: root is locked on the console again")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      show(await (await client()).clearConsolePassword(), flags);
    });
}
