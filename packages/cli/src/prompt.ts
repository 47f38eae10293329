import { createInterface } from "node:readline/promises";
import { Writable } from "node:stream";

/** Asks on the terminal; with `hidden`, what is typed is not echoed. */
export async function ask(question: string, hidden = false): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (!muted) process.stdout.write(chunk);
      callback();
    },
  });
  const reader = createInterface({ input: process.stdin, output, terminal: true });
  try {
    const pending = reader.question(question);
    muted = hidden;
    const answer = await pending;
    if (hidden) process.stdout.write("\n");
    return answer;
  } finally {
    reader.close();
  }
}
