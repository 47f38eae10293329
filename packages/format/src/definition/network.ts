/** The `environment` and `network` sections (ports and domains). */

import { ENV_KEY, hasMarker, isDomainName, PORT_NAME } from "../rules.js";
import type { Field, FieldReader } from "./reader.js";
import type { PackageDefinition, PortEntry } from "./types.js";

export function readEnvironment(r: FieldReader, node: Field): Map<string, string> {
  const environment = r.stringMap(node, "environment");
  for (const key of environment.keys()) {
    if (!ENV_KEY.test(key)) {
      r.source.keyError(`environment.${key}`, `"${key}" is not a valid environment variable name`);
    }
  }
  return environment;
}

export function readNetwork(r: FieldReader, node: Field): PackageDefinition["network"] {
  const fields = r.fieldsOf(node, "network", ["external", "internal", "domains"]);
  const ports = (kind: "external" | "internal"): PortEntry[] =>
    [...r.stringMap(fields.get(kind), `network.${kind}`)].map(([key, value]) => {
      const field = `network.${kind}.${key}`;
      if (!hasMarker(key) && !/^[0-9]+$/.test(key) && !PORT_NAME.test(key)) {
        r.source.keyError(field, `"${key}" is neither a port number nor a port name`);
      }
      return { key, value };
    });
  const domains = r.source.strings(fields.get("domains"), "network.domains");
  domains.forEach((domain, index) => {
    if (!hasMarker(domain) && !isDomainName(domain)) {
      r.source.error(`network.domains.${index}`, null, `"${domain}" is not a domain name`);
    }
  });
  return { external: ports("external"), internal: ports("internal"), domains };
}
