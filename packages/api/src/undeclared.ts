/**
 * Fields of `value` that `schema` does not declare, as JSON paths
 * (`items.0.secret`). Fastify's serializer drops such fields without a word,
 * so a handler that returns one is out of step with the contract: the daemon
 * runs this on every response in its tests. An object schema with
 * `properties` declares just those (unless `additionalProperties` allows
 * more); a union accepts a value when one branch declares all its fields.
 * Undefined values are skipped: JSON leaves them out anyway.
 */
export function undeclaredFields(schema: unknown, value: unknown, path = ""): string[] {
  if (!isObject(schema) || value === undefined || value === null) return [];
  const branches = schema["anyOf"] ?? schema["oneOf"];
  if (Array.isArray(branches) && branches.length > 0) {
    const found = branches.map((branch) => undeclaredFields(branch, value, path));
    return found.find((fields) => fields.length === 0) ?? found[0] ?? [];
  }
  if (Array.isArray(value)) {
    return value.flatMap((item, index) =>
      undeclaredFields(schema["items"], item, join(path, String(index))),
    );
  }
  if (typeof value !== "object") return [];
  const properties = isObject(schema["properties"]) ? schema["properties"] : undefined;
  const additional = schema["additionalProperties"];
  const found: string[] = [];
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined) continue;
    const declared = properties && Object.hasOwn(properties, key) ? properties[key] : undefined;
    if (declared !== undefined) found.push(...undeclaredFields(declared, item, join(path, key)));
    else if (isObject(additional))
      found.push(...undeclaredFields(additional, item, join(path, key)));
    // No `properties`: a free-form object (`{ type: "object" }`), everything is declared.
    else if (properties !== undefined && additional !== true) found.push(join(path, key));
  }
  return found;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}
