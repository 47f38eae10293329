/** Disk images a hostile package repository would publish, made with qemu-img for the store's tests. */
import { execFileSync } from "node:child_process";

/**
 * A 1 MiB qcow2 whose header names /etc/shadow as its backing file (made
 * without opening it: `-u`). Opened as it says, it would hand the guest the
 * host's password hashes.
 */
export function backedByShadow(path: string): void {
  execFileSync("qemu-img", [
    ...["create", "-q", "-f", "qcow2", "-u"],
    ...["-b", "/etc/shadow", "-F", "raw"],
    path,
    "1M",
  ]);
}
