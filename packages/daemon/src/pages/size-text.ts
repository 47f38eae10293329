import { formatByteSize } from "@townos/format";

/** A size in a deploy's log: bytes below 1 MiB, else as everywhere else. */
export function sizeText(bytes: number): string {
  return bytes < 2 ** 20 ? `${bytes} bytes` : formatByteSize(bytes);
}
