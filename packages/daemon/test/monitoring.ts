/** Test helper: whether the real Prometheus and Node Exporter are here. */
import { execFileSync } from "node:child_process";

/** Why monitoring cannot run here, or false. */
export function prometheusMissing(): string | false {
  for (const program of ["prometheus", "prometheus-node-exporter"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" });
    } catch {
      return `${program} is not installed`;
    }
  }
  return false;
}
