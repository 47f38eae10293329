/** Libpod's event stream (containers started, died, removed…), filtered by labels. */
import type http from "node:http";
import { Decoder } from "./decode.js";
import type { LibpodClient, LibpodRequest } from "./libpod-client.js";
import { hasLabels, inContext, MAX_LINE_BYTES, parseJson, unixSeconds } from "./params.js";
import { readLines } from "./streams.js";
import type { EventOptions as WorkloadEventOptions, WorkloadEvent } from "../workload.js";

/** The neutral event filter, plus libpod's object types. */
export interface EventOptions extends WorkloadEventOptions {
  /** `container`, `image`, `network`, …; default all. */
  types?: readonly string[];
}

/** A neutral event, plus the kind of object it is about (libpod reports images and networks too). */
export interface PodmanEvent extends WorkloadEvent {
  type: string;
}

/**
 * Opens libpod's event stream (resolving once it is connected, so nothing
 * that happens afterwards is missed) and yields events until `until`
 * passes or `signal` aborts, which ends the iteration quietly.
 */
export async function events(
  client: LibpodClient,
  options: EventOptions = {},
): Promise<AsyncGenerator<PodmanEvent>> {
  const context = "events";
  const filters: Record<string, string[]> = {};
  const labels = Object.entries(options.labels ?? {}).map(([k, v]) => `${k}=${v}`);
  if (labels.length > 0) filters["label"] = labels;
  if (options.types?.length) filters["type"] = [...options.types];
  if (options.actions?.length) filters["event"] = [...options.actions];
  const request: LibpodRequest = {
    method: "GET",
    path: "/events",
    query: {
      stream: true,
      filters: JSON.stringify(filters),
      since: unixSeconds(options.since),
      until: unixSeconds(options.until),
    },
    context,
  };
  if (options.signal) request.signal = options.signal;
  const response = await client.stream(request);
  return eventStream(response, options.labels ?? {}, options.signal, context);
}

async function* eventStream(
  response: http.IncomingMessage,
  labels: Readonly<Record<string, string>>,
  signal: AbortSignal | undefined,
  context: string,
): AsyncGenerator<PodmanEvent> {
  const d = new Decoder(context);
  try {
    for await (const line of readLines(response, MAX_LINE_BYTES)) {
      if (signal?.aborted) return;
      if (line.trim() === "") continue;
      const event = d.object(parseJson(line, d), "event");
      const actor = d.optionalObject(event, "Actor") ?? {};
      const attributes = d.stringMap(actor, "Attributes");
      if (!hasLabels(attributes, labels)) continue;
      const action = d.string(event, "Action") || d.string(event, "status");
      const exitCode = attributes["containerExitCode"];
      const nanos = d.number(event, "timeNano");
      yield {
        type: d.string(event, "Type"),
        action,
        id: d.string(actor, "ID") || d.string(event, "id"),
        name: attributes["name"] ?? null,
        // timeNano exceeds 2^53: fine to the microsecond, which is enough here.
        time: new Date(nanos > 0 ? nanos / 1e6 : d.number(event, "time") * 1000),
        attributes,
        exitCode: action.endsWith("died") && exitCode !== undefined ? Number(exitCode) : null,
      };
    }
  } catch (error) {
    if (signal?.aborted) return;
    throw inContext(error, context);
  } finally {
    response.destroy();
  }
}
