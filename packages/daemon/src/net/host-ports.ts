/**
 * Ports something on this host already listens on, read from the kernel's
 * socket tables: an install must not publish on them, and an auto port must
 * not land on them.
 */
import { readFile } from "node:fs/promises";

const TABLES = ["tcp", "tcp6", "udp", "udp6"] as const;
/** /proc/net/tcp's state column for a listening socket. */
const TCP_LISTEN = "0A";

/**
 * Parses one /proc/net/{tcp,udp}[6] table: the local ports of listening TCP
 * sockets, or of every bound UDP socket.
 */
export function parseSocketTable(text: string, protocol: "tcp" | "udp"): number[] {
  const ports: number[] = [];
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    const local = fields[1];
    const state = fields[3];
    if (local === undefined || state === undefined) continue;
    if (protocol === "tcp" && state !== TCP_LISTEN) continue;
    const port = Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16);
    if (Number.isInteger(port) && port > 0) ports.push(port);
  }
  return ports;
}

/** Every port a socket on this host listens on (TCP) or is bound to (UDP); empty where /proc cannot be read. */
export async function listeningPorts(): Promise<Set<number>> {
  const ports = new Set<number>();
  for (const table of TABLES) {
    const text = await readFile(`/proc/net/${table}`, "utf8").catch(() => "");
    for (const port of parseSocketTable(text, table.startsWith("tcp") ? "tcp" : "udp")) {
      ports.add(port);
    }
  }
  return ports;
}
