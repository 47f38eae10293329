/**
 * Prometheus' HTTP API as the daemon uses it: instant and range queries,
 * the scrape targets, readiness. Every call has a timeout and a bound on
 * the answer's size; queries are POSTed form-encoded (PromQL can be long).
 * Prometheus' own refusals (a query that does not parse or cannot run) come
 * back as invalid_argument with its message; a Prometheus that does not
 * answer is unavailable. Answers are checked before use and normalised into
 * the API's shapes.
 */
import type { MonitoringResult, MonitoringSeries, MonitoringTarget } from "@townos/api";
import { TownError } from "@townos/format";

export interface PrometheusClientOptions {
  /** Default 10 s. */
  timeoutMs?: number;
  /** The largest answer read; default 16 MiB. */
  maxBytes?: number;
}

type Json = unknown;

export class PrometheusClient {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;

  constructor(baseUrl: string, options: PrometheusClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
  }

  /** An instant query at `time` (seconds since the epoch; default now). */
  async query(expr: string, time?: number): Promise<MonitoringResult> {
    const form = new URLSearchParams({ query: expr });
    if (time !== undefined) form.set("time", String(time));
    return normaliseResult(await this.api("/api/v1/query", form));
  }

  /** A range query: `start` and `end` in seconds since the epoch, `step` in seconds. */
  async queryRange(
    expr: string,
    start: number,
    end: number,
    step: number,
  ): Promise<MonitoringResult> {
    const form = new URLSearchParams({
      query: expr,
      start: String(start),
      end: String(end),
      step: String(step),
    });
    return normaliseResult(await this.api("/api/v1/query_range", form));
  }

  /** The active scrape targets, sorted by job and instance. */
  async targets(): Promise<MonitoringTarget[]> {
    const data = await this.api("/api/v1/targets?state=active");
    const active = isObject(data) ? data["activeTargets"] : undefined;
    if (!Array.isArray(active)) throw unexpected("targets without activeTargets");
    return active
      .map(normaliseTarget)
      .sort((a, b) => a.job.localeCompare(b.job) || a.instance.localeCompare(b.instance));
  }

  /** Does Prometheus serve queries (`/-/ready`)? Never throws. */
  async ready(): Promise<boolean> {
    try {
      const { status } = await this.fetch("/-/ready");
      return status === 200;
    } catch {
      return false;
    }
  }

  /** A call of the JSON API: its `data`, or Prometheus' error as a TownError. */
  private async api(path: string, form?: URLSearchParams): Promise<Json> {
    const { status, body } = await this.fetch(path, form);
    let answer: Json;
    try {
      answer = JSON.parse(body);
    } catch {
      throw unexpected(`HTTP ${status} without JSON: ${body.slice(0, 200)}`);
    }
    if (!isObject(answer)) throw unexpected(`HTTP ${status} with JSON that is not an object`);
    if (answer["status"] === "success" && status === 200) return answer["data"];
    const errorType = typeof answer["errorType"] === "string" ? answer["errorType"] : "unknown";
    const message = typeof answer["error"] === "string" ? answer["error"] : `HTTP ${status}`;
    // bad_data: the query does not parse; execution: it cannot run (e.g. many-to-many matching).
    const code =
      errorType === "bad_data" || errorType === "execution" ? "invalid_argument" : "unavailable";
    throw new TownError(code, `prometheus: ${message}`);
  }

  /** GET, or POST `form`; the status and the whole body (bounded). */
  private async fetch(
    path: string,
    form?: URLSearchParams,
  ): Promise<{ status: number; body: string }> {
    const url = `${this.baseUrl}${path}`;
    const signal = AbortSignal.timeout(this.timeoutMs);
    let response: Response;
    try {
      response = await fetch(url, {
        method: form === undefined ? "GET" : "POST",
        ...(form === undefined ? {} : { body: form }),
        signal,
        redirect: "error",
      });
    } catch (error) {
      throw unreachable(url, error, signal, this.timeoutMs);
    }
    try {
      return { status: response.status, body: await this.readBounded(response) };
    } catch (error) {
      if (error instanceof TownError) throw error;
      throw unreachable(url, error, signal, this.timeoutMs);
    }
  }

  private async readBounded(response: Response): Promise<string> {
    const tooLarge = (): TownError =>
      new TownError(
        "payload_too_large",
        `prometheus: the answer is larger than ${this.maxBytes} bytes; narrow the query`,
      );
    const length = Number(response.headers.get("content-length") ?? "0");
    if (length > this.maxBytes) {
      await response.body?.cancel();
      throw tooLarge();
    }
    if (response.body === null) return "";
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > this.maxBytes) {
        await reader.cancel();
        throw tooLarge();
      }
      chunks.push(value);
    }
    return Buffer.concat(chunks).toString("utf8");
  }
}

function unreachable(url: string, error: unknown, signal: AbortSignal, ms: number): TownError {
  const why = signal.aborted
    ? `no answer within ${ms} ms`
    : String((error as { cause?: unknown }).cause ?? error);
  return new TownError("unavailable", `prometheus: ${url}: ${why}`, { cause: error });
}

function unexpected(what: string): TownError {
  return new TownError("unavailable", `prometheus: unexpected answer: ${what}`);
}

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const RESULT_TYPES = ["vector", "matrix", "scalar", "string"] as const;

/** Prometheus' `data` of a query as the API's result: every kind a list of series. */
export function normaliseResult(data: Json): MonitoringResult {
  if (!isObject(data)) throw unexpected("a query result that is not an object");
  const resultType = RESULT_TYPES.find((type) => type === data["resultType"]);
  const result = data["result"];
  switch (resultType) {
    case "vector":
      return {
        resultType,
        series: list(result).map((item) => ({
          metric: labelsOf(isObject(item) ? item["metric"] : undefined),
          values: [point(isObject(item) ? item["value"] : undefined)],
        })),
      };
    case "matrix":
      return {
        resultType,
        series: list(result).map((item): MonitoringSeries => ({
          metric: labelsOf(isObject(item) ? item["metric"] : undefined),
          values: list(isObject(item) ? item["values"] : undefined).map(point),
        })),
      };
    case "scalar":
    case "string":
      return { resultType, series: [{ metric: {}, values: [point(result)] }] };
    default:
      throw unexpected(`result type ${JSON.stringify(data["resultType"])}`);
  }
}

function list(value: Json): Json[] {
  if (!Array.isArray(value)) throw unexpected("a list that is not one");
  return value;
}

/** `[seconds, "value"]`. */
function point(value: Json): [number, string] {
  if (
    !Array.isArray(value) ||
    value.length !== 2 ||
    typeof value[0] !== "number" ||
    typeof value[1] !== "string"
  )
    throw unexpected("a sample that is not [time, value]");
  return [value[0], value[1]];
}

function labelsOf(value: Json): Record<string, string> {
  if (!isObject(value)) throw unexpected("labels that are not an object");
  const labels: Record<string, string> = {};
  for (const [name, text] of Object.entries(value))
    if (typeof text === "string") labels[name] = text;
  return labels;
}

function normaliseTarget(item: Json): MonitoringTarget {
  if (!isObject(item)) throw unexpected("a target that is not an object");
  const all = labelsOf(item["labels"]);
  const labels: Record<string, string> = {};
  for (const [name, value] of Object.entries(all))
    if (name !== "job" && name !== "instance" && !name.startsWith("__")) labels[name] = value;
  const health = item["health"];
  const lastError = typeof item["lastError"] === "string" ? item["lastError"] : "";
  // Before the first scrape Prometheus says year 1.
  const at = typeof item["lastScrape"] === "string" ? Date.parse(item["lastScrape"]) : NaN;
  const lastScrape = Number.isFinite(at) && at > 0 ? at : null;
  const duration = item["lastScrapeDuration"];
  return {
    job: all["job"] ?? (typeof item["scrapePool"] === "string" ? item["scrapePool"] : ""),
    instance: all["instance"] ?? "",
    labels,
    health: health === "up" || health === "down" ? health : "unknown",
    lastError: lastError === "" ? null : lastError,
    lastScrape,
    lastScrapeDurationMs:
      lastScrape !== null && typeof duration === "number" ? duration * 1000 : null,
  };
}
