/** Images in Podman's local storage: check, inspect, pull. */
import { TownError } from "@townos/format";
import { Decoder, goTime } from "./decode.js";
import type { LibpodClient } from "./libpod-client.js";
import { MAX_LINE_BYTES, parseJson } from "./params.js";
import { readLines } from "./streams.js";
import { streamError, TimeLimit } from "./time-limit.js";

export interface ImageInfo {
  id: string;
  digest: string;
  names: string[];
  created: Date | null;
  size: number;
  entrypoint: string[];
  command: string[];
  env: string[];
  labels: Record<string, string>;
}

export interface PullOptions {
  /** Called with each progress line (`Copying blob …`), in order. */
  onProgress?: (line: string) => void;
  /** False for a registry reached over plain HTTP (one on the home network). Default true. */
  tlsVerify?: boolean;
  /** Default 10 minutes. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface PullResult {
  id: string;
  images: string[];
}

const PULL_TIMEOUT_MS = 10 * 60_000;
const MAX_REFERENCE_LENGTH = 512;
const IMAGE_REFERENCE = /^[a-zA-Z0-9][a-zA-Z0-9._:/@-]*$/;

export async function imageExists(client: LibpodClient, reference: string): Promise<boolean> {
  const context = `check image ${reference}`;
  const { status } = await client.request({
    method: "GET",
    path: `/images/${imagePath(reference, context)}/exists`,
    context,
    accept: [404],
  });
  return status !== 404;
}

/** Undefined when the image is not in local storage. */
export async function inspectImage(
  client: LibpodClient,
  reference: string,
): Promise<ImageInfo | undefined> {
  const context = `inspect image ${reference}`;
  const { status, body } = await client.request({
    method: "GET",
    path: `/images/${imagePath(reference, context)}/json`,
    context,
    accept: [404],
  });
  if (status === 404) return undefined;
  const d = new Decoder(context);
  const root = d.object(body, "image");
  const config = d.optionalObject(root, "Config") ?? {};
  return {
    id: d.string(root, "Id"),
    digest: d.string(root, "Digest"),
    names: d.strings(root, "RepoTags"),
    created: goTime(d.string(root, "Created")),
    size: d.number(root, "Size"),
    entrypoint: d.strings(config, "Entrypoint"),
    command: d.strings(config, "Cmd"),
    env: d.strings(config, "Env"),
    labels: d.stringMap(config, "Labels"),
  };
}

/**
 * Pulls an image, reporting progress line by line. Libpod answers 200 at
 * once and reports a failure inside the stream; a registry out of reach
 * fails with `unavailable`, an unknown image with `not_found`.
 */
export async function pullImage(
  client: LibpodClient,
  reference: string,
  options: PullOptions = {},
): Promise<PullResult> {
  const context = `pull image ${reference}`;
  const limit = new TimeLimit(options.timeoutMs ?? PULL_TIMEOUT_MS, options.signal);
  const d = new Decoder(context);
  try {
    const response = await client.stream({
      method: "POST",
      path: "/images/pull",
      query: {
        reference: checkReference(reference, context),
        ...(options.tlsVerify === false ? { tlsVerify: false } : {}),
      },
      context,
      timeoutMs: limit.ms,
      signal: limit.signal,
    });
    for await (const line of readLines(response, MAX_LINE_BYTES)) {
      if (line.trim() === "") continue;
      const report = d.object(parseJson(line, d), "progress report");
      const error = d.string(report, "error");
      if (error !== "") throw pullError(context, error);
      const stream = d.string(report, "stream").trim();
      if (stream !== "") options.onProgress?.(stream);
      const id = d.string(report, "id");
      if (id !== "") return { id, images: d.strings(report, "images") };
    }
    throw new TownError("io", `podman: ${context}: the progress stream ended without a result`);
  } catch (error) {
    throw streamError(error, context, limit);
  } finally {
    limit.end();
  }
}

function checkReference(reference: string, context: string): string {
  if (reference.length > MAX_REFERENCE_LENGTH || !IMAGE_REFERENCE.test(reference)) {
    throw new TownError(
      "invalid_argument",
      `podman: ${context}: "${reference}" is not an image reference`,
    );
  }
  return reference;
}

function imagePath(reference: string, context: string): string {
  return encodeURIComponent(checkReference(reference, context));
}

/** Registry failures, told apart by libpod's message (the only place it says). */
function pullError(context: string, message: string): TownError {
  if (
    /no such host|connection refused|i\/o timeout|network is unreachable|TLS handshake|dial tcp/.test(
      message,
    )
  ) {
    return new TownError(
      "unavailable",
      `podman: ${context}: the registry cannot be reached: ${message}`,
    );
  }
  if (/manifest unknown|name unknown|not found|does not exist/i.test(message)) {
    return new TownError(
      "not_found",
      `podman: ${context}: the registry has no such image: ${message}`,
    );
  }
  if (/unauthorized|authentication required|denied/i.test(message)) {
    return new TownError(
      "forbidden",
      `podman: ${context}: the registry refused access: ${message}`,
    );
  }
  return new TownError("io", `podman: ${context}: ${message}`);
}
