/** Podman networks: bridges with DNS that an app's containers share. */
import { TownError } from "@townos/format";
import { Decoder } from "./decode.js";
import type { LibpodClient } from "./libpod-client.js";
import { checkName, hasLabels, labelFilters, namePath } from "./params.js";

export interface NetworkSpec {
  name: string;
  labels?: Readonly<Record<string, string>>;
  /** Internal networks have no route out; default false. */
  internal?: boolean;
  /** Containers resolve each other's names and aliases; default true. */
  dnsEnabled?: boolean;
}

export interface NetworkInfo {
  id: string;
  name: string;
  driver: string;
  internal: boolean;
  dnsEnabled: boolean;
  labels: Record<string, string>;
  subnets: { subnet: string; gateway: string }[];
}

/**
 * Creates a bridge network with DNS (unless disabled). Idempotent: when a
 * network of that name exists, it is returned as it is, even if its
 * settings differ (compare them to decide whether to recreate it).
 */
export async function createNetwork(client: LibpodClient, spec: NetworkSpec): Promise<NetworkInfo> {
  const context = `create network ${spec.name}`;
  checkName(spec.name, context);
  const existing = await inspectNetwork(client, spec.name);
  if (existing) return existing;
  try {
    const { body } = await client.request({
      method: "POST",
      path: "/networks/create",
      body: {
        name: spec.name,
        driver: "bridge",
        labels: { ...spec.labels },
        internal: spec.internal ?? false,
        dns_enabled: spec.dnsEnabled ?? true,
      },
      context,
    });
    return networkInfo(body, new Decoder(context));
  } catch (error) {
    // Lost a race with another creator: theirs is as good as ours.
    const raced = error instanceof TownError && error.code === "conflict";
    const network = raced ? await inspectNetwork(client, spec.name) : undefined;
    if (network) return network;
    throw error;
  }
}

export async function inspectNetwork(
  client: LibpodClient,
  name: string,
): Promise<NetworkInfo | undefined> {
  const context = `inspect network ${name}`;
  const { status, body } = await client.request({
    method: "GET",
    path: `/networks/${namePath(name, context)}/json`,
    context,
    accept: [404],
  });
  return status === 404 ? undefined : networkInfo(body, new Decoder(context));
}

/** Networks carrying all the given labels. */
export async function listNetworks(
  client: LibpodClient,
  labels: Readonly<Record<string, string>> = {},
): Promise<NetworkInfo[]> {
  const context = "list networks";
  const { body } = await client.request({
    method: "GET",
    path: "/networks/json",
    query: { filters: labelFilters(labels) },
    context,
  });
  const d = new Decoder(context);
  return d
    .array(body, "networks")
    .map((item) => networkInfo(item, d))
    .filter((network) => hasLabels(network.labels, labels));
}

/** True when it removed the network, false when there was none. Fails while containers use it. */
export async function removeNetwork(client: LibpodClient, name: string): Promise<boolean> {
  const context = `remove network ${name}`;
  const { status } = await client.request({
    method: "DELETE",
    path: `/networks/${namePath(name, context)}`,
    context,
    accept: [404],
  });
  return status !== 404;
}

function networkInfo(value: unknown, d: Decoder): NetworkInfo {
  const n = d.object(value, "network");
  return {
    id: d.string(n, "id"),
    name: d.string(n, "name"),
    driver: d.string(n, "driver"),
    internal: d.boolean(n, "internal"),
    dnsEnabled: d.boolean(n, "dns_enabled"),
    labels: d.stringMap(n, "labels"),
    subnets: d.array(n["subnets"], "subnets").map((item) => {
      const subnet = d.object(item, "subnet");
      return { subnet: d.string(subnet, "subnet"), gateway: d.string(subnet, "gateway") };
    }),
  };
}
