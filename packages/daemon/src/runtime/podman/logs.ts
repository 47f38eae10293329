/** A container's output: libpod's multiplexed frames read as lines. */
import type http from "node:http";
import { goTime } from "./decode.js";
import type { LibpodClient, LibpodRequest } from "./libpod-client.js";
import { inContext, MAX_LINE_BYTES, namePath, unixSeconds } from "./params.js";
import { demultiplex, type StreamName } from "./streams.js";
import type { LogLine, LogOptions } from "../workload.js";

/**
 * Opens a container's log stream. Resolves once libpod has answered (so a
 * missing container fails here), then yields lines as they come: all of
 * them and the end, or with `follow` until the container stops or
 * `options.signal` aborts, which ends the iteration quietly.
 */
export async function logs(
  client: LibpodClient,
  name: string,
  options: LogOptions = {},
): Promise<AsyncGenerator<LogLine>> {
  const context = `logs of container ${name}`;
  const request: LibpodRequest = {
    method: "GET",
    path: `/containers/${namePath(name, context)}/logs`,
    query: {
      follow: options.follow ?? false,
      stdout: options.stdout ?? true,
      stderr: options.stderr ?? true,
      timestamps: options.timestamps ?? false,
      since: unixSeconds(options.since),
      until: unixSeconds(options.until),
      tail: options.tail,
    },
    context,
  };
  if (options.signal) request.signal = options.signal;
  const response = await client.stream(request);
  return logLines(response, options, context);
}

async function* logLines(
  response: http.IncomingMessage,
  options: LogOptions,
  context: string,
): AsyncGenerator<LogLine> {
  try {
    for await (const frame of demultiplex(response, MAX_LINE_BYTES)) {
      if (frame.stream === "stdin") continue;
      const stream: Exclude<StreamName, "stdin"> = frame.stream;
      const text = frame.data.toString("utf8");
      for (const line of text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n")) {
        // Lines already read stay unreported once the caller has stopped.
        if (options.signal?.aborted) return;
        if (!options.timestamps) {
          yield { stream, time: null, text: line };
          continue;
        }
        const space = line.indexOf(" ");
        const time = space === -1 ? null : goTime(line.slice(0, space));
        yield { stream, time, text: time === null ? line : line.slice(space + 1) };
      }
    }
  } catch (error) {
    if (options.signal?.aborted) return;
    throw inContext(error, context);
  } finally {
    response.destroy();
  }
}
