/** One-off resource samples of running containers. */
import { TownError } from "@townos/format";
import { Decoder } from "./decode.js";
import type { LibpodClient } from "./libpod-client.js";
import { checkName } from "./params.js";
import type { WorkloadStats } from "../workload.js";

/** A one-off resource sample of a running container. */
export async function stats(client: LibpodClient, name: string): Promise<WorkloadStats> {
  const context = `stats of container ${name}`;
  const { body } = await client.request({
    method: "GET",
    path: "/containers/stats",
    query: { containers: [checkName(name, context)], stream: false },
    context,
  });
  const d = new Decoder(context);
  const root = d.object(body, "stats");
  const error = root["Error"];
  if (error !== undefined && error !== null) {
    throw new TownError("io", `podman: ${context}: ${JSON.stringify(error)}`);
  }
  const sample = d.array(root["Stats"], "Stats")[0];
  if (sample === undefined) throw new TownError("not_found", `podman: ${context}: no sample`);
  const s = d.object(sample, "sample");
  return {
    cpuPercent: d.number(s, "CPU"),
    // The cgroup's cumulative CPU time, ns.
    cpuSeconds: d.number(s, "CPUNano") / 1e9,
    memoryBytes: d.number(s, "MemUsage"),
    memoryLimitBytes: d.number(s, "MemLimit"),
    netInputBytes: d.number(s, "NetInput"),
    netOutputBytes: d.number(s, "NetOutput"),
    blockInputBytes: d.number(s, "BlockInput"),
    blockOutputBytes: d.number(s, "BlockOutput"),
    pids: d.number(s, "PIDs"),
  };
}
