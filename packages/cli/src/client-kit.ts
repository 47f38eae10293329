import type { Command } from "commander";
import type { TownClient } from "@townos/client";
import { connect } from "./connect.js";
import type { Io } from "./io.js";
import { UsageError } from "./usage.js";

export interface JsonFlag {
  json?: boolean;
}

/** What the commands that talk to a daemon share: the client, output, and asking for what is missing. */
export interface ClientKit {
  client: () => Promise<TownClient>;
  print: (text: string) => void;
  json: (value: unknown) => void;
  /** Asks for what was not given, when there is a terminal to ask on. */
  need: (value: string | undefined, question: string, hidden?: boolean) => Promise<string>;
  /** An account's password: from the flag (with a warning), TOWN_PASSWORD, or the prompt. */
  password: (flag: string | undefined) => Promise<string>;
}

export function clientKit(program: Command, io: Io): ClientKit {
  const print = (text: string): void => {
    io.stdout(text.endsWith("\n") ? text : `${text}\n`);
  };
  const need = async (
    value: string | undefined,
    question: string,
    hidden = false,
  ): Promise<string> => {
    if (value !== undefined) return value;
    if (!io.interactive) throw usage(`${question.replace(/:\s*$/, "")} is required`);
    return io.ask(question, hidden);
  };
  return {
    client: () => connect(program, io),
    print,
    json: (value) => {
      print(JSON.stringify(value, null, 2));
    },
    need,
    password: async (flag) => {
      if (flag !== undefined) {
        io.stderr(
          "town: warning: a password given with --password is visible to other users in the process list and stays in the shell history; leave it out to be asked, or set TOWN_PASSWORD\n",
        );
        return flag;
      }
      return need(io.env["TOWN_PASSWORD"] || undefined, "Password: ", true);
    },
  };
}

export function usage(message: string): UsageError {
  return new UsageError(message);
}
