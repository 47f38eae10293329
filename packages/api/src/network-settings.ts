import { Type, type Static } from "@sinclair/typebox";
import { Nullable, StringEnum } from "./schema.js";

/**
 * How the box gets its address on the LAN: DHCP (the default) or a fixed
 * IPv4 address on one wired interface, with its gateway and DNS servers
 * (none given: the gateway answers DNS). Kept on the data pool.
 */
export const NetworkSettingsSchema = Type.Union([
  Type.Object({ mode: Type.Literal("dhcp") }),
  Type.Object({
    mode: Type.Literal("static"),
    interface: Type.String(),
    /** IPv4 with its prefix length, e.g. `192.168.1.50/24`. */
    address: Type.String(),
    gateway: Type.String(),
    dns: Type.Array(Type.String()),
  }),
]);
export type NetworkSettings = Static<typeof NetworkSettingsSchema>;

export const NetworkSettingsStatusSchema = Type.Object({
  settings: NetworkSettingsSchema,
  /** Whether this box applies them (the Town OS image). */
  served: Type.Boolean(),
  /** The box was started with `town.network=dhcp`: DHCP until the next boot, whatever is saved. */
  overridden: Type.Boolean(),
  /** The box's wired interfaces and their IPv4 addresses now (CIDR). */
  interfaces: Type.Array(
    Type.Object({ name: Type.String(), addresses: Type.Array(Type.String()) }),
  ),
  /** Why applying them failed last; null when it worked or was not tried. */
  error: Nullable(Type.String()),
});
export type NetworkSettingsStatus = Static<typeof NetworkSettingsStatusSchema>;

/**
 * New settings. One flat object, checked field by field by the daemon (which
 * reports each problem at its field); the bounds only keep input small.
 */
export const SetNetworkSettingsBodySchema = Type.Object({
  mode: StringEnum(["dhcp", "static"]),
  interface: Type.Optional(Type.String({ maxLength: 64 })),
  address: Type.Optional(Type.String({ maxLength: 64 })),
  gateway: Type.Optional(Type.String({ maxLength: 64 })),
  dns: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 })),
});
export type SetNetworkSettingsBody = Static<typeof SetNetworkSettingsBodySchema>;
