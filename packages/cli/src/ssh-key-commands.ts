import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import type { SshKeys } from "@townos/client";
import { clientKit, usage, type JsonFlag } from "./client-kit.js";
import type { Io } from "./io.js";
import { table } from "./text.js";

/** `town ssh-key …`: root's SSH keys on the Town OS image (administrators). */
export function registerSshKeyCommands(program: Command, io: Io): void {
  const { client, print, json } = clientKit(program, io);
  const show = (answer: SshKeys, flags: JsonFlag): void => {
    if (flags.json) {
      json(answer);
      return;
    }
    print(
      answer.keys.length === 0
        ? "No SSH keys: nobody can log in over SSH."
        : table(
            ["FINGERPRINT", "TYPE", "COMMENT"],
            answer.keys.map((key) => [key.fingerprint, key.type, key.comment || "-"]),
          ),
    );
    if (!answer.served)
      print("(This box does not run the Town OS image's SSH server: the keys are kept, unused.)");
  };

  const keys = program
    .command("ssh-key")
    .description("SSH keys that may log in to the Town OS image as root (kept on the data pool)");
  keys
    .command("ls")
    .description("list the keys")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      show(await (await client()).sshKeys(), flags);
    });
  keys
    .command("add")
    .description(
      "add keys: authorized_keys lines as arguments, or from a file (e.g. ~/.ssh/id_ed25519.pub)",
    )
    .argument("[key...]", "one whole key line each, quoted")
    .option("--file <path>", "a public key file; one key per line")
    .option("--json")
    .action(async (given: string[], flags: JsonFlag & { file?: string }) => {
      const lines = [...given];
      if (flags.file !== undefined) {
        const text = await readFile(resolve(io.cwd, flags.file), "utf8");
        lines.push(
          ...text.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#")),
        );
      }
      if (lines.length === 0) throw usage("give a key line or --file");
      const api = await client();
      const current = await api.sshKeys();
      show(await api.setSshKeys([...current.keys.map((key) => key.line), ...lines]), flags);
    });
  keys
    .command("rm")
    .description("remove the keys with this fingerprint or comment")
    .argument("<fingerprint-or-comment>")
    .option("--json")
    .action(async (which: string, flags: JsonFlag) => {
      const api = await client();
      const current = await api.sshKeys();
      const kept = current.keys.filter((key) => key.fingerprint !== which && key.comment !== which);
      if (kept.length === current.keys.length)
        throw usage(`no SSH key has the fingerprint or comment "${which}"`);
      show(await api.setSshKeys(kept.map((key) => key.line)), flags);
    });
}
