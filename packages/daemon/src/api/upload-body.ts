/**
 * Archive uploads: the request body goes to the unpacker as it arrives
 * (Fastify neither buffers it nor applies its bodyLimit), and a request the
 * unpacker stopped reading early is still answered.
 */
import type { IncomingMessage } from "node:http";
import { PassThrough, type Readable } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { TownError } from "@townos/format";

/** Content types an archive upload may be sent as; the archive's own bytes say which format it is. */
export const ARCHIVE_CONTENT_TYPES = [
  "application/octet-stream",
  "application/gzip",
  "application/x-gzip",
  "application/x-xz",
  "application/x-bzip2",
  "application/x-tar",
  "application/zip",
];

/** Lets the routes registered on `api` take archive bodies as raw streams. */
export function acceptArchiveBodies(api: FastifyInstance): void {
  api.addContentTypeParser(ARCHIVE_CONTENT_TYPES, (_request, payload, done) => {
    done(null, payload);
  });
}

/**
 * Hands the body to `consume` as a stream with its declared length. A body
 * cut off fails the stream with `io`; what `consume` left unread closes the
 * connection, which cannot carry another request.
 */
export async function consumeUpload<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  consume: (input: Readable, declaredBytes: number | undefined) => Promise<T>,
): Promise<T> {
  const raw = request.body as IncomingMessage;
  // The unpacker destroys what it reads when it stops early; the request must live on to be answered.
  const input = new PassThrough();
  raw.pipe(input);
  raw.once("close", () => {
    if (!raw.complete) input.destroy(new TownError("io", "the upload was cut off"));
  });
  const length = request.headers["content-length"];
  try {
    return await consume(input, length === undefined ? undefined : Number(length));
  } finally {
    if (!raw.readableEnded) {
      raw.unpipe(input);
      void reply.header("connection", "close");
    }
  }
}
