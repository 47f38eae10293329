import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CLIENT_ID_PLACEHOLDER,
  fillPlaceholders,
  findControlCharacter,
  httpsUrlProblem,
  TownError,
  type OAuthDefinition,
  type OAuthRequest,
  type PackageIndex,
} from "@townos/format";
import type { Clock } from "../clock.js";
import type { InstallRequest } from "./planner.js";
import { REQUEST_TIMEOUT_MS, requestJson, type OutboundOptions } from "./oauth-http.js";

/** How the daemon reaches OAuth providers. */
export interface OAuthConfig {
  /** A PEM file of CAs trusted besides the system's (env TOWN_EXTRA_CA_FILE). */
  trustedCaFile?: string;
  /** Let flows reach loopback, link-local and private addresses: tests on one machine only. */
  allowPrivateAddresses?: boolean;
}

export interface FlowTarget {
  repo: string;
  name: string;
  version: string;
  question: string;
}

export type FlowState = "pending" | "done" | "failed" | "expired";

export interface FlowView extends FlowTarget {
  id: string;
  state: FlowState;
  error: string | null;
  /** When polling gives up (ms since the epoch). */
  expiresAt: number;
}

interface Flow extends FlowView {
  owner: number;
  token: string | undefined;
  stop: AbortController;
}

/** Flows at once, pending or waiting for their install: each polls a provider. */
export const MAX_FLOWS = 16;
/** How long a finished flow's token waits for the install that uses it. */
export const KEEP_FINISHED_MS = 15 * 60_000;
/** Polls that fail in a row before the flow does (a provider's hiccup is forgiven). */
const MAX_POLL_FAILURES = 3;
const MAX_EXTRACTED_LENGTH = 1024;
/** The longest answer the install API accepts. */
const MAX_TOKEN_LENGTH = 4096;

/**
 * OAuth PIN/device flows for `oauth` questions: the box makes a client id,
 * sends the package's start request, shows the approve URL, and polls until
 * the token appears. The token never leaves the daemon: an install names the
 * flow and the token is put in as the question's answer there.
 */
export class OAuthFlows {
  private readonly flows = new Map<string, Flow>();
  private readonly outbound: OutboundOptions;

  constructor(
    private readonly options: {
      index: () => PackageIndex;
      clock: Clock;
      config: OAuthConfig;
      maxFlows?: number;
    },
  ) {
    const { trustedCaFile, allowPrivateAddresses } = options.config;
    this.outbound = {
      ...(trustedCaFile === undefined ? {} : { extraCa: readFileSync(trustedCaFile, "utf8") }),
      ...(allowPrivateAddresses === true ? { allowPrivateAddresses } : {}),
    };
  }

  /** Starts a flow; answers once the start request did, with the URL to open. */
  async start(
    request: Omit<FlowTarget, "version"> & { version?: string },
    owner: number,
  ): Promise<FlowView & { approveUrl: string }> {
    if (this.flows.size >= (this.options.maxFlows ?? MAX_FLOWS)) {
      throw new TownError("rate_limited", "too many account links are under way; try again later", {
        retryAfter: 60,
      });
    }
    const { version, definition } = this.questionOf(request);
    const id = randomUUID();
    const flow: Flow = {
      id,
      repo: request.repo,
      name: request.name,
      version,
      question: request.question,
      state: "pending",
      error: null,
      expiresAt: this.options.clock() + definition.timeoutSeconds * 1000,
      owner,
      token: undefined,
      stop: new AbortController(),
    };
    // Counted from here, so that starts under way respect the limit too.
    this.flows.set(id, flow);
    const values = new Map<string, string>([[CLIENT_ID_PLACEHOLDER, randomUUID()]]);
    let approveUrl: string;
    try {
      const answer = await this.send(definition.start, values, flow);
      for (const [field, key] of definition.extract) values.set(field, extracted(answer, key));
      approveUrl = fillPlaceholders(
        definition.approve,
        (n) => values.get(n) ?? "",
        encodeURIComponent,
      );
      const problem = httpsUrlProblem(approveUrl);
      if (problem) throw new TownError("unavailable", `oauth: the approve URL: ${problem}`);
    } catch (error) {
      this.flows.delete(id);
      flow.stop.abort();
      throw error;
    }
    void this.poll(flow, definition, values);
    return { ...view(flow), approveUrl };
  }

  /** A flow of `owner`'s: its state, never its token. */
  view(id: string, owner: number): FlowView {
    return view(this.own(id, owner));
  }

  /**
   * The install with each named flow's token as its question's answer, and
   * the version the flows were started for. Every flow must be done and
   * started by `owner` for this package.
   */
  connect(
    install: InstallRequest,
    flowIds: Readonly<Record<string, string>>,
    owner: number,
  ): InstallRequest {
    let version = install.version;
    const answers = { ...install.answers };
    for (const [question, id] of Object.entries(flowIds)) {
      const flow = this.own(id, owner);
      if (flow.repo !== install.repo || flow.name !== install.name || flow.question !== question) {
        throw new TownError(
          "invalid_argument",
          `the account link ${id} was made for ${flow.repo}/${flow.name} question "${flow.question}"`,
        );
      }
      if (version !== undefined && version !== flow.version) {
        throw new TownError(
          "invalid_argument",
          `the account link ${id} was made for version ${flow.version}, not ${version}`,
        );
      }
      version = flow.version;
      if (flow.state !== "done" || flow.token === undefined) {
        throw new TownError(
          "conflict",
          `the account link for "${question}" is ${flow.state}${flow.error ? `: ${flow.error}` : ""}`,
        );
      }
      answers[question] = flow.token;
    }
    return { ...install, ...(version === undefined ? {} : { version }), answers };
  }

  /** Forgets flows whose token was used: it lives on only in the install's answers. */
  release(flowIds: Readonly<Record<string, string>>): void {
    for (const id of Object.values(flowIds)) this.forget(id);
  }

  /** Stops every flow (the daemon stops). */
  close(): void {
    for (const id of [...this.flows.keys()]) this.forget(id);
  }

  private own(id: string, owner: number): Flow {
    const flow = this.flows.get(id);
    // Another account's flow is as absent as one that never was.
    if (!flow || flow.owner !== owner)
      throw new TownError("not_found", `there is no account link ${id}`);
    return flow;
  }

  private forget(id: string): void {
    const flow = this.flows.get(id);
    if (!flow) return;
    flow.stop.abort();
    flow.token = undefined;
    this.flows.delete(id);
  }

  private questionOf(request: Omit<FlowTarget, "version"> & { version?: string }): {
    version: string;
    definition: OAuthDefinition;
  } {
    const { repo, name, version, question } = request;
    const source = this.options
      .index()
      .find({ repo, name, ...(version === undefined ? {} : { version }) });
    if (!source) {
      throw new TownError(
        "not_found",
        `there is no valid ${repo}/${name}${version === undefined ? "" : `@${version}`}`,
      );
    }
    const definition = source.definition.questions.get(question);
    if (definition?.type !== "oauth" || definition.oauth === undefined) {
      throw new TownError(
        "invalid_argument",
        `${repo}/${name}@${source.version} has no oauth question "${question}" with a flow`,
      );
    }
    return { version: source.version, definition: definition.oauth };
  }

  private send(
    request: OAuthRequest,
    values: ReadonlyMap<string, string>,
    flow: Flow,
  ): Promise<Record<string, unknown>> {
    const value = (name: string): string => values.get(name) ?? "";
    const headers = new Map(
      [...request.headers].map(([name, text]) => [name, fillPlaceholders(text, value, (v) => v)]),
    );
    const remaining = flow.expiresAt - this.options.clock();
    return requestJson(
      {
        method: request.method,
        url: fillPlaceholders(request.url, value, encodeURIComponent),
        headers,
      },
      { ...this.outbound, timeoutMs: Math.max(1, Math.min(REQUEST_TIMEOUT_MS, remaining)) },
      flow.stop.signal,
    );
  }

  /** Polls until the token comes, the flow expires or fails, or it is forgotten. */
  private async poll(
    flow: Flow,
    definition: OAuthDefinition,
    values: ReadonlyMap<string, string>,
  ): Promise<void> {
    let failures = 0;
    const signal = flow.stop.signal;
    // A function: the flow may be forgotten while a request is under way.
    const stopped = (): boolean => signal.aborted;
    while (!stopped()) {
      try {
        await sleep(definition.intervalSeconds * 1000, undefined, { signal, ref: false });
      } catch {
        return;
      }
      if (this.options.clock() >= flow.expiresAt) {
        this.finish(flow, "expired", "nobody approved in time");
        return;
      }
      try {
        const token = ownValue(await this.send(definition.poll, values, flow), definition.token);
        failures = 0;
        if (token === undefined || token === null || token === "") continue;
        if (
          typeof token !== "string" ||
          token.length > MAX_TOKEN_LENGTH ||
          findControlCharacter(token)
        ) {
          this.finish(flow, "failed", `the provider's "${definition.token}" is not a usable token`);
          return;
        }
        flow.token = token;
        this.finish(flow, "done", null);
        return;
      } catch (error) {
        if (stopped()) return;
        failures += 1;
        if (failures >= MAX_POLL_FAILURES) {
          this.finish(flow, "failed", error instanceof Error ? error.message : String(error));
          return;
        }
      }
    }
  }

  private finish(flow: Flow, state: Exclude<FlowState, "pending">, error: string | null): void {
    flow.state = state;
    flow.error = error;
    // The result waits a while for its install, then goes, token and all.
    setTimeout(() => {
      this.forget(flow.id);
    }, KEEP_FINISHED_MS).unref();
  }
}

function view(flow: Flow): FlowView {
  const { id, repo, name, version, question, state, error, expiresAt } = flow;
  return { id, repo, name, version, question, state, error, expiresAt };
}

/** A value of the start answer, as it may go into URLs and headers. */
function extracted(answer: Record<string, unknown>, key: string): string {
  const value = ownValue(answer, key);
  const text =
    typeof value === "string"
      ? value
      : typeof value === "number" && Number.isFinite(value)
        ? String(value)
        : undefined;
  if (text === undefined || text === "") {
    throw new TownError("unavailable", `oauth: the start answer has no "${key}"`);
  }
  if (text.length > MAX_EXTRACTED_LENGTH || findControlCharacter(text) || text.includes("\t")) {
    throw new TownError("unavailable", `oauth: the start answer's "${key}" is not usable`);
  }
  return text;
}

/** A key of a provider's answer; what its prototype holds (`__proto__`, `constructor`) is not. */
function ownValue(answer: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(answer, key) ? answer[key] : undefined;
}
