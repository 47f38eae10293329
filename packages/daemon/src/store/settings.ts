import { parseByteSize, parseDuration, TownError } from "@townos/format";
import { localTldProblem } from "../dns/local-tld.js";
import { MAX_AUDIT_ROWS } from "./audit.js";
import { sql, type Db } from "./database.js";

type SettingType = "bytes" | "seconds" | "dns-label" | "boolean" | "host-list";

interface SettingDefinition {
  type: SettingType;
  default: number | string | boolean;
  description: string;
  min?: number;
}

/** Every setting there is, with its type and default. Unknown keys are refused. */
export const SETTINGS = {
  "storage.default_quota": {
    type: "bytes",
    default: 10 * 1024 ** 3,
    min: 1024 ** 2,
    description: "Quota of a new user volume",
  },
  "uploads.max_size": {
    type: "bytes",
    default: 10 * 1024 ** 3,
    min: 1024 ** 2,
    description: "Largest archive that may be uploaded",
  },
  "uploads.unpack_timeout": {
    type: "seconds",
    default: 1800,
    min: 10,
    description: "Longest an archive may take to unpack",
  },
  "dns.tld": {
    type: "dns-label",
    default: "home",
    description:
      "Top-level domain of the box's names (<app>.<repo>.<tld>): one that is never public (home, lan, internal, home.arpa…)",
  },
  "upnp.forward_https": {
    type: "boolean",
    default: false,
    description:
      "Forward the router's ports 443 and 80 to the box through UPnP, so that apps' public domains (network.domains) are reached from the internet (off: they answer on the home network only)",
  },
  "registries.insecure": {
    type: "host-list",
    default: "",
    description:
      "Container registries reached over plain HTTP, without TLS (HOST:PORT, comma-separated): a registry on the home network",
  },
  "apps.logs_for_users": {
    type: "boolean",
    default: false,
    description:
      "Whether every signed-in account may read apps' logs and health (off: administrators only, as both may show secrets)",
  },
  "audit.retention": {
    type: "seconds",
    default: 90 * 24 * 3600,
    min: 24 * 3600,
    description: `How long audit log entries are kept (also never more than the newest ${MAX_AUDIT_ROWS.toLocaleString("en")})`,
  },
  "repositories.refresh_interval": {
    type: "seconds",
    default: 3600,
    min: 0,
    description: "How often package repositories are refreshed (0: never on its own)",
  },
  "pages.refresh_interval": {
    type: "seconds",
    default: 300,
    min: 0,
    description:
      "How often git pages look for a new commit (0: only on their webhook or a rebuild)",
  },
  "monitoring.retention": {
    type: "seconds",
    default: 30 * 24 * 3600,
    min: 3600,
    description: "How long Prometheus keeps the box's and the apps' metrics",
  },
  "monitoring.scrape_interval": {
    type: "seconds",
    default: 15,
    min: 5,
    description: "How often Prometheus reads every metrics target",
  },
  "monitoring.grafana": {
    type: "boolean",
    default: false,
    description:
      "Run Grafana (a container) with the box's Prometheus as its data source and generated dashboards",
  },
} as const satisfies Record<string, SettingDefinition>;

export type SettingKey = keyof typeof SETTINGS;
/** The settings that are switches: what route access may depend on. */
export type BooleanSettingKey = {
  [K in SettingKey]: (typeof SETTINGS)[K]["type"] extends "boolean" ? K : never;
}[SettingKey];
export type SettingValue = number | string | boolean;

export interface SettingView {
  key: SettingKey;
  type: SettingType;
  value: SettingValue;
  default: SettingValue;
  description: string;
}

export function isSettingKey(key: string): key is SettingKey {
  return Object.hasOwn(SETTINGS, key);
}

/** Typed settings with defaults; a value is stored only once somebody sets it. */
export class Settings {
  private readonly listeners: ((key: SettingKey) => void)[] = [];

  constructor(private readonly db: Db) {}

  /** Calls `listener` after every change made through `set` (the TLD re-registers names). */
  onChange(listener: (key: SettingKey) => void): void {
    this.listeners.push(listener);
  }

  get(key: SettingKey): SettingValue {
    const row = sql(this.db, "SELECT value FROM settings WHERE key = ?").get(key) as
      { value: string } | undefined;
    if (!row) return SETTINGS[key].default;
    // A value stored under older rules that today's refuse (a public TLD, say) is not used.
    try {
      return parseSetting(SETTINGS[key], JSON.parse(row.value), key);
    } catch {
      return SETTINGS[key].default;
    }
  }

  number(key: SettingKey): number {
    const value = this.get(key);
    return typeof value === "number" ? value : Number(value);
  }

  string(key: SettingKey): string {
    return String(this.get(key));
  }

  flag(key: BooleanSettingKey): boolean {
    return this.get(key) === true;
  }

  list(): SettingView[] {
    return (Object.keys(SETTINGS) as SettingKey[]).map((key) => this.view(key));
  }

  view(key: SettingKey): SettingView {
    const definition: SettingDefinition = SETTINGS[key];
    return {
      key,
      type: definition.type,
      value: this.get(key),
      default: definition.default,
      description: definition.description,
    };
  }

  /** Validates and stores; sizes and durations may be given with units ("2gb", "1h"). */
  set(key: string, input: unknown): SettingView {
    if (!isSettingKey(key)) throw new TownError("not_found", `there is no setting "${key}"`);
    const value = parseSetting(SETTINGS[key], input, key);
    sql(
      this.db,
      "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ).run(key, JSON.stringify(value));
    for (const listener of this.listeners) listener(key);
    return this.view(key);
  }
}

function parseSetting(definition: SettingDefinition, input: unknown, key: string): SettingValue {
  const bad = (expected: string): never => {
    throw new TownError("invalid_argument", `${key} must be ${expected}`, {
      issues: [{ field: key, message: `must be ${expected}` }],
    });
  };
  switch (definition.type) {
    case "bytes":
    case "seconds": {
      let value: number | undefined;
      if (typeof input === "number") value = Number.isSafeInteger(input) ? input : undefined;
      else if (typeof input === "string") {
        value =
          definition.type === "bytes"
            ? parseByteSize(input)
            : (parseDuration(input) ?? parseWhole(input));
      }
      const unit = definition.type === "bytes" ? "a size such as 10gb" : "a duration such as 30m";
      if (value === undefined || value < (definition.min ?? 0))
        return bad(unit + minimum(definition));
      return value;
    }
    case "dns-label": {
      if (typeof input !== "string") return bad("a top-level domain such as home");
      // Only names that no public registry hands out (see local-tld.ts).
      const problem = localTldProblem(input);
      if (problem !== undefined) return bad(problem);
      return input;
    }
    case "boolean":
      if (typeof input !== "boolean") return bad("true or false");
      return input;
    case "host-list": {
      if (typeof input !== "string") return bad("HOST[:PORT] names, comma-separated");
      const hosts = input
        .split(/[\s,]+/)
        .filter((host) => host !== "")
        .map((host) => host.toLowerCase());
      if (hosts.length > 32 || hosts.some((host) => !HOST_PORT.test(host))) {
        return bad("HOST[:PORT] names, comma-separated");
      }
      return [...new Set(hosts)].join(",");
    }
  }
}

/** A registry's address as image references write it: a host name or IPv4 address, and a port. */
const HOST_PORT = /^[a-z0-9]([a-z0-9.-]{0,252}[a-z0-9])?(:[0-9]{1,5})?$/;

/** The entries of a `host-list` setting's value. */
export function hostList(value: string): string[] {
  return value === "" ? [] : value.split(",");
}

function parseWhole(text: string): number | undefined {
  return /^[0-9]{1,12}$/.test(text.trim()) ? Number(text) : undefined;
}

function minimum(definition: SettingDefinition): string {
  return definition.min ? ` (at least ${definition.min})` : "";
}
