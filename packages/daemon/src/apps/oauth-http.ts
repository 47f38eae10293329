import { request as httpsRequest, type RequestOptions } from "node:https";
import { isIP } from "node:net";
import { rootCertificates } from "node:tls";
import { httpsUrlProblem, TownError } from "@townos/format";
import { isPrivateAddress, publicOnlyLookup } from "../net/public-address.js";

/** Answers of OAuth providers are small JSON objects. */
export const MAX_ANSWER_BYTES = 64 * 1024;
export const REQUEST_TIMEOUT_MS = 10_000;

export interface OutboundOptions {
  /** PEM certificates trusted besides the system's roots (a provider behind a private CA, tests). */
  extraCa?: string;
  /** Let requests reach loopback, link-local and private addresses: only for tests on one machine. */
  allowPrivateAddresses?: boolean;
  timeoutMs?: number;
  maxBytes?: number;
}

export interface OutboundRequest {
  method: "GET" | "POST";
  url: string;
  headers: ReadonlyMap<string, string>;
}

/**
 * Requests `request.url` over https and returns its JSON object answer.
 * Bounded in time and size; redirects are never followed (a provider's API
 * has no reason to send one, and following could lead anywhere); the
 * addresses a name resolves to are checked when connecting, so a name cannot
 * be rebound to the box's own networks.
 */
export async function requestJson(
  request: OutboundRequest,
  options: OutboundOptions,
  signal?: AbortSignal,
): Promise<Record<string, unknown>> {
  const problem = httpsUrlProblem(request.url);
  if (problem) throw new TownError("invalid_argument", `oauth: ${problem}`);
  const url = new URL(request.url);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (!options.allowPrivateAddresses && isIP(host) !== 0 && isPrivateAddress(host)) {
    throw new TownError(
      "forbidden",
      `oauth: ${host} is a local address, which flows may not reach`,
    );
  }
  const maxBytes = options.maxBytes ?? MAX_ANSWER_BYTES;
  const timeout = AbortSignal.timeout(options.timeoutMs ?? REQUEST_TIMEOUT_MS);
  const headers: Record<string, string> = { "user-agent": "Town OS" };
  for (const [name, value] of request.headers) headers[name.toLowerCase()] = value;
  if (request.method === "POST") headers["content-length"] = "0";
  const requestOptions: RequestOptions = {
    method: request.method,
    headers,
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    agent: false,
    ...(options.extraCa === undefined ? {} : { ca: [...rootCertificates, options.extraCa] }),
    ...(options.allowPrivateAddresses ? {} : { lookup: publicOnlyLookup }),
  };
  const body = await new Promise<Buffer>((resolve, reject) => {
    const fail = (message: string): void => {
      reject(new TownError("unavailable", `oauth: ${url.host}: ${message}`));
    };
    const outgoing = httpsRequest(url, requestOptions, (response) => {
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        response.destroy();
        const location = response.headers.location ?? "nowhere";
        fail(`answered with a redirect (to ${location.slice(0, 200)}), which is not followed`);
        return;
      }
      if (status < 200 || status >= 300) {
        response.destroy();
        fail(`answered ${status}`);
        return;
      }
      if (Number(response.headers["content-length"] ?? 0) > maxBytes) {
        response.destroy();
        fail(`the answer is larger than ${maxBytes} bytes`);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          response.destroy();
          fail(`the answer is larger than ${maxBytes} bytes`);
          return;
        }
        chunks.push(chunk);
      });
      response.on("end", () => {
        resolve(Buffer.concat(chunks));
      });
      response.on("error", (error) => {
        fail(error.message);
      });
    });
    outgoing.on("error", (error) => {
      fail(timeout.aborted ? "no answer in time" : error.message);
    });
    outgoing.end();
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    throw new TownError("unavailable", `oauth: ${url.host}: the answer is not JSON`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new TownError("unavailable", `oauth: ${url.host}: the answer is not a JSON object`);
  }
  return parsed as Record<string, unknown>;
}
