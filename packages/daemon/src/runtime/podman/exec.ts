/** Commands run in a running container, their output kept within a bound. */
import { setTimeout as sleep } from "node:timers/promises";
import { TownError } from "@townos/format";
import { Decoder } from "./decode.js";
import type { LibpodClient } from "./libpod-client.js";
import { MAX_LINE_BYTES, namePath } from "./params.js";
import { demultiplex } from "./streams.js";
import { streamError, TimeLimit } from "./time-limit.js";
import type { ExecOptions, ExecResult } from "../workload.js";

const EXEC_TIMEOUT_MS = 5 * 60_000;
const MAX_OUTPUT_BYTES = 1024 * 1024;

/**
 * Runs a command in a running container (for `post_update` commands) and
 * returns its exit code and output. `conflict` when the container does
 * not run.
 */
export async function exec(
  client: LibpodClient,
  name: string,
  command: readonly string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  const context = `exec in container ${name}`;
  if (command.length === 0)
    throw new TownError("invalid_argument", `podman: ${context}: no command`);
  const timeoutMs = options.timeoutMs ?? EXEC_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const body: Record<string, unknown> = {
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    Cmd: [...command],
    Env: Object.entries(options.env ?? {}).map(([key, value]) => `${key}=${value}`),
  };
  if (options.workdir !== undefined) body["WorkingDir"] = options.workdir;
  if (options.user !== undefined) body["User"] = options.user;
  const d = new Decoder(context);
  const created = await client.request({
    method: "POST",
    path: `/containers/${namePath(name, context)}/exec`,
    body,
    context,
  });
  const id = d.string(d.object(created.body, "answer"), "Id");
  const output = await execOutput(
    client,
    id,
    context,
    timeoutMs,
    options.maxOutputBytes ?? MAX_OUTPUT_BYTES,
  );
  // The stream ends as the process does; libpod records the exit code a moment later.
  for (;;) {
    const { body: inspected } = await client.request({
      method: "GET",
      path: `/exec/${encodeURIComponent(id)}/json`,
      context,
    });
    const session = d.object(inspected, "exec session");
    if (!d.boolean(session, "Running"))
      return { ...output, exitCode: d.number(session, "ExitCode") };
    if (Date.now() > deadline) {
      throw new TownError("unavailable", `podman: ${context}: not done within ${timeoutMs} ms`);
    }
    await sleep(20);
  }
}

async function execOutput(
  client: LibpodClient,
  id: string,
  context: string,
  timeoutMs: number,
  maxBytes: number,
): Promise<Omit<ExecResult, "exitCode">> {
  const limit = new TimeLimit(timeoutMs);
  const kept: Record<"stdout" | "stderr", Buffer[]> = { stdout: [], stderr: [] };
  const sizes = { stdout: 0, stderr: 0 };
  let truncated = false;
  try {
    const response = await client.stream({
      method: "POST",
      path: `/exec/${encodeURIComponent(id)}/start`,
      body: { Detach: false, Tty: false },
      context,
      timeoutMs,
      signal: limit.signal,
    });
    for await (const frame of demultiplex(response, MAX_LINE_BYTES)) {
      if (frame.stream === "stdin") continue;
      const room = maxBytes - sizes[frame.stream];
      if (frame.data.length > room) truncated = true;
      if (room > 0) kept[frame.stream].push(frame.data.subarray(0, room));
      sizes[frame.stream] += Math.min(room, frame.data.length);
    }
  } catch (error) {
    throw streamError(error, context, limit);
  } finally {
    limit.clear();
  }
  return {
    stdout: Buffer.concat(kept.stdout).toString("utf8"),
    stderr: Buffer.concat(kept.stderr).toString("utf8"),
    truncated,
  };
}
