import { Type, type Static, type TProperties } from "@sinclair/typebox";
import { Nullable, StringEnum } from "./schema.js";

// Each part's status is its component's own object, passed through whole:
// the fields below are the ones callers may rely on, others may come along.
const open = <T extends TProperties>(properties: T) =>
  Type.Object(properties, { additionalProperties: true });
const part = <T extends TProperties>(properties: T) => Nullable(open(properties));

const ProcessStateSchema = StringEnum([
  "starting",
  "running",
  "adopted",
  "restarting",
  "failed",
  "stopped",
]);

// The ingress: HAProxy serves (state, pid, user: its data plane), Caddy keeps the certificates.
const IngressStatusSchema = part({
  /** The worse of HAProxy's and Caddy's states. */
  state: ProcessStateSchema,
  /** HAProxy's master process. */
  pid: Nullable(Type.Integer()),
  /** The user HAProxy's workers run as. */
  user: Nullable(Type.String()),
  adminAddress: Type.String(),
  httpsPort: Nullable(Type.Integer()),
  httpPort: Nullable(Type.Integer()),
  /** HAProxy and Caddy run the desired config (false while none is set). */
  configCurrent: Type.Boolean(),
  desiredHash: Nullable(Type.String()),
  appliedHash: Nullable(Type.String()),
  /** Restarts after a crash since the daemon started. */
  restarts: Type.Integer(),
  lastError: Nullable(open({ code: Type.String(), message: Type.String(), at: Type.Integer() })),
  /** Caddy: the local CA, ACME, the static sites. */
  certificates: Type.Optional(
    open({
      state: ProcessStateSchema,
      pid: Nullable(Type.Integer()),
      user: Nullable(Type.String()),
      /** Names HAProxy has a certificate for. */
      served: Type.Integer(),
    }),
  ),
});

const ListenSchema = open({ addresses: Type.Array(Type.String()), port: Type.Integer() });
type Listen = Static<typeof ListenSchema>;

const DnsStatusSchema = part({
  state: StringEnum(["stopped", "starting", "running", "failed"]),
  /** Why dnsmasq is not running (its own last words when it said any). */
  error: Type.Optional(Type.String()),
  pid: Type.Optional(Type.Integer()),
  /** Distinct (name, address) pairs served. */
  records: Type.Integer(),
  /** `address#port`, sorted. */
  upstreams: Type.Array(Type.String()),
  /** Absent while dnsmasq does not listen. */
  listen: Type.Optional(Type.Unsafe<Listen | undefined>(ListenSchema)),
  /** Hash of the applied configuration. */
  hash: Type.Optional(Type.String()),
  /** Times dnsmasq was started again after dying. */
  restarts: Type.Integer(),
});

const MdnsStatusSchema = part({
  state: StringEnum(["stopped", "running", "failed"]),
  name: Type.String(),
  error: Type.Optional(Type.String()),
  /** Questions for the box's name answered since start. */
  answered: Type.Integer(),
});

const UpnpStatusSchema = part({
  router: open({
    state: StringEnum(["unknown", "not_found", "unreachable", "refused", "ok"]),
    externalAddress: Type.Optional(Type.String()),
    /** The connection service in use. */
    controlUrl: Type.Optional(Type.String()),
    error: Type.Optional(Type.String()),
    /** Epoch ms of the last pass that reached the router. */
    checkedAt: Type.Optional(Type.Integer()),
  }),
  mappings: Type.Array(
    open({
      externalPort: Type.Integer(),
      internalPort: Type.Integer(),
      protocol: StringEnum(["TCP", "UDP"]),
      /** The box's LAN IPv4 address. */
      internalClient: Type.String(),
      description: Type.String(),
      state: StringEnum(["pending", "active", "failed"]),
      error: Type.Optional(Type.String()),
      /** Epoch ms when the lease ends; absent for leases without expiry. */
      expiresAt: Type.Optional(Type.Integer()),
    }),
  ),
});

/** State of the HTTPS ingress, DNS, mDNS and UPnP, with every app's URLs. */
export const NetworkStatusSchema = Type.Object({
  /** `off` when this daemon runs without networking; the parts are null then. */
  state: StringEnum(["on", "off"]),
  ingress: IngressStatusSchema,
  dns: DnsStatusSchema,
  mdns: MdnsStatusSchema,
  upnp: UpnpStatusSchema,
  /** Where the dashboard is served through the ingress; null before the first update. */
  dashboardUrl: Nullable(Type.String()),
  /** The router forwards 443 and 80 to the ingress for public domains. */
  forwardHttps: Type.Boolean(),
  apps: Type.Array(
    Type.Object({ repo: Type.String(), name: Type.String(), urls: Type.Array(Type.String()) }),
  ),
  /** Each page's URLs; none before its first version. */
  pages: Type.Array(Type.Object({ name: Type.String(), urls: Type.Array(Type.String()) })),
  /** What the last update left out or could not apply, and why. */
  problems: Type.Array(Type.String()),
  /** Epoch ms of the last update. */
  updatedAt: Nullable(Type.Integer()),
});
export type NetworkStatus = Static<typeof NetworkStatusSchema>;
