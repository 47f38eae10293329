/**
 * Finding the router: SSDP M-SEARCH (multicast to 239.255.255.250:1900) for
 * Internet Gateway Devices and their connection services, or a gateway
 * description URL that the person configured when multicast does not reach.
 */
import dgram from "node:dgram";
import { isIPv4 } from "node:net";
import { TownError } from "@townos/format";
import { checkHttpUrl, IgdClient, type IgdClientOptions } from "./igd.js";

export const SSDP_GROUP = "239.255.255.250";
export const SSDP_PORT = 1900;

const SEARCH_TARGETS = [
  "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
  "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
  "urn:schemas-upnp-org:service:WANIPConnection:1",
  "urn:schemas-upnp-org:service:WANIPConnection:2",
  "urn:schemas-upnp-org:service:WANPPPConnection:1",
];
const MAX_LOCATIONS = 16;
const MAX_RESPONSE_BYTES = 4096;

export interface DiscoverOptions extends IgdClientOptions {
  /** Skip SSDP: read this description (e.g. `http://192.168.1.1:5000/rootDesc.xml`). */
  descriptionUrl?: string;
  /** IPv4 address of the LAN interface to search on; the system's default when absent. */
  interfaceAddress?: string;
  /** How long to wait for answers; default 3 s. */
  searchMs?: number;
}

/**
 * The router's IGD client: from the configured URL, else the first device
 * that answers SSDP with a usable description.
 * @throws TownError `not_found` when no router answers in time; `unavailable`
 * or `invalid_argument` for a configured URL that does not work.
 */
export async function discoverGateway(options: DiscoverOptions = {}): Promise<IgdClient> {
  const clientOptions: IgdClientOptions =
    options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
  if (options.descriptionUrl !== undefined)
    return IgdClient.fromDescriptionUrl(options.descriptionUrl, clientOptions);
  if (options.interfaceAddress !== undefined && !isIPv4(options.interfaceAddress))
    throw new TownError("invalid_argument", "upnp: the interface address must be IPv4");
  const searchMs = options.searchMs ?? 3_000;

  const socket = dgram.createSocket("udp4");
  const tried = new Set<string>();
  const failures: string[] = [];
  try {
    return await new Promise<IgdClient>((resolve, reject) => {
      let pending = 0;
      let searching = true;
      const giveUp = (): void => {
        if (pending > 0) return;
        const why = failures.length > 0 ? `: ${failures.join("; ")}` : "";
        reject(new TownError("not_found", `upnp: no router answered within ${searchMs} ms${why}`));
      };
      const timer = setTimeout(() => {
        searching = false;
        giveUp();
      }, searchMs);
      socket.on("error", (error) => {
        clearTimeout(timer);
        reject(new TownError("unavailable", `upnp: SSDP search: ${error.message}`));
      });
      socket.on("message", (message, from) => {
        const location = locationOf(message, from.address);
        if (location === undefined || tried.has(location) || tried.size >= MAX_LOCATIONS) return;
        tried.add(location);
        pending++;
        IgdClient.fromDescriptionUrl(location, clientOptions).then(
          (client) => {
            clearTimeout(timer);
            resolve(client);
          },
          (error: unknown) => {
            pending--;
            failures.push(error instanceof Error ? error.message : String(error));
            if (!searching) giveUp();
          },
        );
      });
      socket.bind(0, options.interfaceAddress, () => {
        if (options.interfaceAddress !== undefined)
          socket.setMulticastInterface(options.interfaceAddress);
        const mx = Math.max(1, Math.min(5, Math.floor(searchMs / 1000) - 1));
        for (const target of SEARCH_TARGETS) {
          const search =
            "M-SEARCH * HTTP/1.1\r\n" +
            `HOST: ${SSDP_GROUP}:${SSDP_PORT}\r\n` +
            'MAN: "ssdp:discover"\r\n' +
            `MX: ${mx}\r\n` +
            `ST: ${target}\r\n\r\n`;
          socket.send(search, SSDP_PORT, SSDP_GROUP);
        }
      });
    });
  } finally {
    socket.close();
  }
}

/** The LOCATION of an SSDP answer, when it is an http URL on the answering host itself. */
export function locationOf(message: Buffer, from: string): string | undefined {
  if (message.length > MAX_RESPONSE_BYTES) return undefined;
  const lines = message.toString("latin1").split("\r\n");
  if (!/^HTTP\/1\.[01] 200\b/.test(lines[0] ?? "")) return undefined;
  const header = lines.find((line) => /^location:/i.test(line));
  if (header === undefined) return undefined;
  try {
    const url = checkHttpUrl(header.slice("location:".length).trim(), "SSDP location");
    // A LAN host may only point at itself, not make us fetch from elsewhere.
    return url.hostname === from ? url.href : undefined;
  } catch {
    return undefined;
  }
}
