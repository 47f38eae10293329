/**
 * `metrics`, this project's extension: where a package's container serves
 * Prometheus metrics (`port`, and `path`, default `/metrics`). The box
 * scrapes it through the app's network.
 */

import { hasMarker, metricsPathProblem } from "../rules.js";
import type { Field, FieldReader } from "./reader.js";
import type { PackageDefinition } from "./types.js";

export const DEFAULT_METRICS_PATH = "/metrics";

export function readMetrics(r: FieldReader, node: Field): PackageDefinition["metrics"] {
  if (node == null) return undefined;
  const fields = r.fieldsOf(node, "metrics", ["port", "path"]);
  const port = r.required(fields.get("port"), "metrics.port");
  if (port !== "" && !hasMarker(port) && !isPortNumber(port)) {
    r.source.error("metrics.port", fields.get("port"), `"${port}" is not a port number (1-65535)`);
  }
  const path = r.text(fields.get("path"), "metrics.path") ?? DEFAULT_METRICS_PATH;
  const problem = hasMarker(path) ? undefined : metricsPathProblem(path);
  if (problem) r.source.error("metrics.path", fields.get("path"), `"${path}" ${problem}`);
  return { port, path };
}

function isPortNumber(text: string): boolean {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : 0;
  return port >= 1 && port <= 65535;
}
