/**
 * A client for a router's UPnP Internet Gateway Device: its description
 * (which service to talk to, and where), and the SOAP actions of the
 * WANIPConnection / WANPPPConnection service that read the external address
 * and add, read and delete port mappings.
 *
 * The router is on the LAN but not trusted: URLs must be plain HTTP on the
 * router's own host, responses are read up to a size limit within a time
 * limit, and every value sent is validated and XML-escaped.
 */
import { isIPv4 } from "node:net";
import { XMLParser } from "fast-xml-parser";
import { TownError, type ErrorCode } from "@townos/format";

export type Protocol = "TCP" | "UDP";

/** The router's connection service this client talks to. */
export interface GatewayService {
  descriptionUrl: string;
  controlUrl: string;
  serviceType: string;
}

export interface PortMappingRequest {
  externalPort: number;
  internalPort: number;
  protocol: Protocol;
  /** IPv4 address of the LAN host that receives the traffic (the box). */
  internalClient: string;
  description: string;
  /** Seconds; 0 asks for a mapping without expiry. */
  leaseSeconds: number;
}

/** A mapping as the router reports it. */
export interface PortMappingEntry {
  externalPort: number;
  internalPort: number;
  protocol: Protocol;
  internalClient: string;
  description: string;
  enabled: boolean;
  /** Seconds left (0: no expiry). */
  leaseSeconds: number;
  remoteHost: string;
}

/** What the mapping manager needs of a router: `IgdClient`, or a fake in tests. */
export interface Gateway {
  readonly service: GatewayService;
  getExternalIPAddress(): Promise<string>;
  addPortMapping(request: PortMappingRequest): Promise<void>;
  deletePortMapping(protocol: Protocol, externalPort: number): Promise<void>;
  getSpecificPortMappingEntry(
    protocol: Protocol,
    externalPort: number,
  ): Promise<PortMappingEntry | undefined>;
  listPortMappings(): Promise<PortMappingEntry[]>;
}

export interface IgdClientOptions {
  /** Per request; default 5 s. */
  timeoutMs?: number;
}

/** Connection services in order of preference. */
const SERVICE_TYPES = [
  "urn:schemas-upnp-org:service:WANIPConnection:2",
  "urn:schemas-upnp-org:service:WANIPConnection:1",
  "urn:schemas-upnp-org:service:WANPPPConnection:1",
];
const MAX_DESCRIPTION_BYTES = 256 * 1024;
const MAX_SOAP_RESPONSE_BYTES = 64 * 1024;
const MAX_TEXT_LENGTH = 256;
/** UPnP IGD v2 caps leases at a week. */
export const MAX_LEASE_SECONDS = 604_800;
export const MAX_DESCRIPTION_LENGTH = 64;
const DEFAULT_TIMEOUT_MS = 5_000;
/** GetGenericPortMappingEntry's index is walked until the router says "no more", or this. */
export const MAX_LISTED_MAPPINGS = 256;

/** UPnP error codes (IGD WANIPConnection) and what they mean to us. */
const UPNP_ERRORS: Record<number, { name: string; code: ErrorCode }> = {
  402: { name: "InvalidArgs", code: "invalid_argument" },
  501: { name: "ActionFailed", code: "unavailable" },
  606: { name: "ActionNotAuthorized", code: "forbidden" },
  713: { name: "SpecifiedArrayIndexInvalid", code: "not_found" },
  714: { name: "NoSuchEntryInArray", code: "not_found" },
  718: { name: "ConflictInMappingEntry", code: "conflict" },
  724: { name: "SamePortValuesRequired", code: "conflict" },
  725: { name: "OnlyPermanentLeasesSupported", code: "conflict" },
  728: { name: "NoPortMapsAvailable", code: "conflict" },
  729: { name: "ConflictWithOtherMechanisms", code: "conflict" },
};

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  ignoreDeclaration: true,
  maxNestedTags: 64,
});

/** The UPnP error code of a failed action (`718`, …), kept on the TownError's cause. */
export class UpnpFault {
  constructor(
    readonly errorCode: number,
    readonly description: string,
  ) {}
}

/** The UPnP error code behind a TownError from this client, if the router sent one. */
export function upnpErrorCode(error: unknown): number | undefined {
  return error instanceof TownError && error.cause instanceof UpnpFault
    ? error.cause.errorCode
    : undefined;
}

export class IgdClient implements Gateway {
  private readonly timeoutMs: number;

  constructor(
    readonly service: GatewayService,
    options: IgdClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /**
   * Reads a gateway's description and picks its connection service.
   * @throws TownError `unavailable` (unreachable, unusable) or `invalid_argument` (bad URL).
   */
  static async fromDescriptionUrl(url: string, options: IgdClientOptions = {}): Promise<IgdClient> {
    const descriptionUrl = checkHttpUrl(url, "gateway description URL");
    const xml = await httpText(
      descriptionUrl,
      { method: "GET" },
      MAX_DESCRIPTION_BYTES,
      options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    );
    return new IgdClient(parseDeviceDescription(xml, descriptionUrl), options);
  }

  async getExternalIPAddress(): Promise<string> {
    const result = await this.call("GetExternalIPAddress", []);
    const address = result["NewExternalIPAddress"] ?? "";
    // Routers answer "" or 0.0.0.0 while they have no WAN address.
    if (!isIPv4(address) || address === "0.0.0.0")
      throw new TownError("unavailable", "upnp: the router has no external IPv4 address");
    return address;
  }

  /** Adds the mapping, or renews it (same mapping, new lease). */
  async addPortMapping(request: PortMappingRequest): Promise<void> {
    checkPort(request.externalPort, "external port");
    checkPort(request.internalPort, "internal port");
    checkProtocol(request.protocol);
    if (!isIPv4(request.internalClient))
      throw new TownError("invalid_argument", "upnp: the internal client must be an IPv4 address");
    checkText(request.description, "description", MAX_DESCRIPTION_LENGTH);
    if (
      !Number.isInteger(request.leaseSeconds) ||
      request.leaseSeconds < 0 ||
      request.leaseSeconds > MAX_LEASE_SECONDS
    )
      throw new TownError("invalid_argument", `upnp: lease must be 0–${MAX_LEASE_SECONDS} s`);
    await this.call("AddPortMapping", [
      ["NewRemoteHost", ""],
      ["NewExternalPort", String(request.externalPort)],
      ["NewProtocol", request.protocol],
      ["NewInternalPort", String(request.internalPort)],
      ["NewInternalClient", request.internalClient],
      ["NewEnabled", "1"],
      ["NewPortMappingDescription", request.description],
      ["NewLeaseDuration", String(request.leaseSeconds)],
    ]);
  }

  /** Idempotent: a mapping that is not there is already deleted. */
  async deletePortMapping(protocol: Protocol, externalPort: number): Promise<void> {
    checkProtocol(protocol);
    checkPort(externalPort, "external port");
    try {
      await this.call("DeletePortMapping", [
        ["NewRemoteHost", ""],
        ["NewExternalPort", String(externalPort)],
        ["NewProtocol", protocol],
      ]);
    } catch (error) {
      if (upnpErrorCode(error) !== 714) throw error;
    }
  }

  /** The mapping of this external port, or undefined when there is none. */
  async getSpecificPortMappingEntry(
    protocol: Protocol,
    externalPort: number,
  ): Promise<PortMappingEntry | undefined> {
    checkProtocol(protocol);
    checkPort(externalPort, "external port");
    try {
      const result = await this.call("GetSpecificPortMappingEntry", [
        ["NewRemoteHost", ""],
        ["NewExternalPort", String(externalPort)],
        ["NewProtocol", protocol],
      ]);
      return toEntry({
        ...result,
        NewExternalPort: String(externalPort),
        NewProtocol: protocol,
      });
    } catch (error) {
      if (upnpErrorCode(error) === 714) return undefined;
      throw error;
    }
  }

  /** The router's mapping number `index`, or undefined past the end. */
  async getGenericPortMappingEntry(index: number): Promise<PortMappingEntry | undefined> {
    if (!Number.isInteger(index) || index < 0 || index > 65535)
      throw new TownError("invalid_argument", "upnp: bad mapping index");
    try {
      return toEntry(
        await this.call("GetGenericPortMappingEntry", [["NewPortMappingIndex", String(index)]]),
      );
    } catch (error) {
      // 713 is the standard end of the list; some routers say 714 or 402.
      const code = upnpErrorCode(error);
      if (code === 713 || code === 714 || code === 402) return undefined;
      throw error;
    }
  }

  /** Every mapping on the router (up to MAX_LISTED_MAPPINGS). */
  async listPortMappings(): Promise<PortMappingEntry[]> {
    const entries: PortMappingEntry[] = [];
    for (let index = 0; index < MAX_LISTED_MAPPINGS; index++) {
      const entry = await this.getGenericPortMappingEntry(index);
      if (entry === undefined) break;
      entries.push(entry);
    }
    return entries;
  }

  /** One SOAP action; the response's values by element name. */
  private async call(
    action: string,
    args: readonly (readonly [string, string])[],
  ): Promise<Record<string, string>> {
    const { serviceType, controlUrl } = this.service;
    const body =
      '<?xml version="1.0"?>\r\n' +
      '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
      's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>' +
      `<u:${action} xmlns:u="${escapeXml(serviceType)}">` +
      args.map(([name, value]) => `<${name}>${escapeXml(value)}</${name}>`).join("") +
      `</u:${action}></s:Body></s:Envelope>\r\n`;
    const text = await httpText(
      new URL(controlUrl),
      {
        method: "POST",
        headers: {
          "Content-Type": 'text/xml; charset="utf-8"',
          SOAPAction: `"${serviceType}#${action}"`,
        },
        body,
      },
      MAX_SOAP_RESPONSE_BYTES,
      this.timeoutMs,
      // Faults come with status 500: read them like any answer.
      true,
    );
    return parseSoapResponse(text, action);
  }
}

/**
 * The preferred connection service in a device description.
 * @throws TownError `unavailable` when there is none.
 */
export function parseDeviceDescription(xml: string, descriptionUrl: URL): GatewayService {
  const root = child(parse(xml, "device description"), "root");
  const base = text(root, "URLBase");
  const found = new Map<string, string>();
  const visit = (device: unknown, depth: number): void => {
    if (depth > 8) return;
    for (const service of children(child(device, "serviceList"), "service")) {
      const type = text(service, "serviceType");
      const control = text(service, "controlURL");
      if (type !== undefined && control !== undefined && !found.has(type)) found.set(type, control);
    }
    for (const inner of children(child(device, "deviceList"), "device")) visit(inner, depth + 1);
  };
  for (const device of children(root, "device")) visit(device, 0);
  for (const serviceType of SERVICE_TYPES) {
    const control = found.get(serviceType);
    if (control === undefined) continue;
    const controlUrl = new URL(control, base ?? descriptionUrl);
    // Only the router that described itself: a description cannot send us elsewhere.
    if (controlUrl.protocol !== "http:" || controlUrl.hostname !== descriptionUrl.hostname)
      throw new TownError("unavailable", "upnp: the router's control URL points to another host");
    return { descriptionUrl: descriptionUrl.href, controlUrl: controlUrl.href, serviceType };
  }
  throw new TownError(
    "unavailable",
    "upnp: the device has no WANIPConnection or WANPPPConnection service",
  );
}

/** The values of `<action>Response`, or the router's fault as a TownError. */
export function parseSoapResponse(xml: string, action: string): Record<string, string> {
  const body = child(child(parse(xml, `${action} response`), "Envelope"), "Body");
  const fault = child(body, "Fault");
  if (fault !== undefined) {
    const error = child(child(fault, "detail"), "UPnPError");
    const errorCode = Number(text(error, "errorCode"));
    const known = UPNP_ERRORS[errorCode];
    const description = text(error, "errorDescription") ?? known?.name ?? "error";
    throw new TownError(
      known?.code ?? "unavailable",
      `upnp: ${action}: the router refused: ${Number.isInteger(errorCode) ? errorCode : "?"} ${clip(description)}`,
      { cause: new UpnpFault(Number.isInteger(errorCode) ? errorCode : 0, clip(description)) },
    );
  }
  const response = child(body, `${action}Response`);
  if (response === undefined)
    throw new TownError("unavailable", `upnp: ${action}: the router's answer has no response`);
  const values: Record<string, string> = {};
  if (typeof response === "object" && response !== null) {
    for (const [name, value] of Object.entries(response)) {
      if (typeof value === "string") values[name] = clip(value);
    }
  }
  return values;
}

export function escapeXml(value: string): string {
  return value
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}

/** A plain-HTTP URL without credentials (UPnP control is unencrypted HTTP on the LAN). */
export function checkHttpUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TownError("invalid_argument", `upnp: the ${what} is not a URL`);
  }
  if (url.protocol !== "http:" || url.username !== "" || url.password !== "" || value.length > 512)
    throw new TownError("invalid_argument", `upnp: the ${what} must be a plain http:// URL`);
  return url;
}

function toEntry(values: Record<string, string>): PortMappingEntry {
  const protocol = values["NewProtocol"]?.toUpperCase();
  const entry = {
    externalPort: Number(values["NewExternalPort"]),
    internalPort: Number(values["NewInternalPort"]),
    protocol: protocol === "UDP" ? "UDP" : "TCP",
    internalClient: values["NewInternalClient"] ?? "",
    description: values["NewPortMappingDescription"] ?? "",
    enabled: values["NewEnabled"] === "1" || values["NewEnabled"]?.toLowerCase() === "true",
    leaseSeconds: Number(values["NewLeaseDuration"] ?? 0),
    remoteHost: values["NewRemoteHost"] ?? "",
  } satisfies PortMappingEntry;
  if (
    (protocol !== "TCP" && protocol !== "UDP") ||
    !isPort(entry.externalPort) ||
    !isPort(entry.internalPort) ||
    !Number.isInteger(entry.leaseSeconds)
  )
    throw new TownError("unavailable", "upnp: the router described a mapping we cannot read");
  return entry;
}

async function httpText(
  url: URL,
  init: RequestInit,
  maxBytes: number,
  timeoutMs: number,
  acceptServerError = false,
): Promise<string> {
  let response: Response;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    response = await fetch(url, { ...init, redirect: "error", signal });
  } catch (error) {
    throw new TownError("unavailable", `upnp: ${url.host}: ${describe(error)}`, { cause: error });
  }
  if (!response.ok && !(acceptServerError && response.status === 500)) {
    await response.body?.cancel();
    throw new TownError("unavailable", `upnp: ${url.host}: HTTP ${response.status}`);
  }
  const declared = Number(response.headers.get("content-length") ?? 0);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new TownError(
      "unavailable",
      `upnp: ${url.host}: the answer is larger than ${maxBytes} bytes`,
    );
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body?.getReader();
  try {
    for (;;) {
      if (reader === undefined) break;
      const { done, value } = (await reader.read()) as { done: boolean; value?: Uint8Array };
      if (done || value === undefined) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        throw new TownError(
          "unavailable",
          `upnp: ${url.host}: the answer is larger than ${maxBytes} bytes`,
        );
      }
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof TownError) throw error;
    throw new TownError("unavailable", `upnp: ${url.host}: ${describe(error)}`, { cause: error });
  }
  return Buffer.concat(chunks).toString("utf8");
}

function parse(xml: string, what: string): unknown {
  try {
    return parser.parse(xml) as unknown;
  } catch (error) {
    throw new TownError("unavailable", `upnp: the router's ${what} is not XML`, { cause: error });
  }
}

function child(node: unknown, name: string): unknown {
  if (typeof node !== "object" || node === null || Array.isArray(node)) return undefined;
  const value = (node as Record<string, unknown>)[name];
  return Array.isArray(value) ? (value[0] as unknown) : value;
}

function children(node: unknown, name: string): unknown[] {
  if (typeof node !== "object" || node === null) return [];
  const value = (node as Record<string, unknown>)[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? (value as unknown[]).slice(0, 64) : [value];
}

function text(node: unknown, name: string): string | undefined {
  const value = child(node, name);
  return typeof value === "string" ? value.trim() : undefined;
}

function checkPort(port: number, what: string): void {
  if (!isPort(port)) throw new TownError("invalid_argument", `upnp: bad ${what}: ${port}`);
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

function checkProtocol(protocol: string): void {
  if (protocol !== "TCP" && protocol !== "UDP")
    throw new TownError("invalid_argument", "upnp: protocol must be TCP or UDP");
}

function checkText(value: string, what: string, max: number): void {
  if (value.length > max || /\p{Cc}/u.test(value))
    throw new TownError(
      "invalid_argument",
      `upnp: the ${what} must be at most ${max} characters without control characters`,
    );
}

function clip(value: string): string {
  return value.replace(/\p{Cc}/gu, " ").slice(0, MAX_TEXT_LENGTH);
}

function describe(error: unknown): string {
  if (error instanceof Error && error.name === "TimeoutError") return "no answer in time";
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause instanceof Error) return cause.message;
  return error instanceof Error ? error.message : String(error);
}
