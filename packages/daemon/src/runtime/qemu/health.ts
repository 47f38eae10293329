/**
 * A VM's health: its QEMU runs, QMP says `running`, and its first forwarded
 * port answers in the guest. The last needs care: QEMU's user-mode network
 * accepts a connection on the host side before it even asks the guest, so a
 * connect alone proves nothing. While the probe's connection is open, QEMU's
 * own socket table (`info usernet`) shows whether the guest answered (the
 * connection to it left SYN_SENT) or refused (QEMU closes ours).
 */
import { connect } from "node:net";
import type { HealthcheckConfig, HealthState, PublishedPort } from "../workload.js";

/** What the health monitor schedules (apps/health.ts); the start period covers a slow boot. */
export const VM_HEALTHCHECK: Omit<HealthcheckConfig, "test"> = {
  intervalMs: 10_000,
  timeoutMs: 5_000,
  startPeriodMs: 5 * 60_000,
  retries: 3,
};
const MAX_LOG_ENTRIES = 5;
const USERNET_POLL_MS = 100;
/** The guest's address on QEMU's user-mode network (its first DHCP lease). */
const GUEST_ADDRESS = "10.0.2.15";

export function vmHealthcheck(ports: readonly PublishedPort[]): HealthcheckConfig {
  const first = ports[0];
  return {
    test: [
      "qemu running",
      "qmp status running",
      ...(first === undefined ? [] : [`guest port ${first.port} answers`]),
    ],
    ...VM_HEALTHCHECK,
  };
}

/** One probe's answer: passed, and what it found. */
export interface ProbeOutcome {
  ok: boolean;
  output: string;
}

/**
 * Whether the guest answered a connection to `port` (host side) in time.
 * `usernet` gives QEMU's `info usernet` table.
 */
export async function probeGuestPort(
  port: PublishedPort,
  usernet: () => Promise<string>,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const host = port.hostAddress === "0.0.0.0" ? "127.0.0.1" : port.hostAddress;
  const where = `guest port ${port.port} (host ${host}:${port.hostPort})`;
  const deadline = Date.now() + timeoutMs;
  const socket = connect({ host, port: port.hostPort });
  // The guest may send first (a banner): that is an answer too.
  const seen = { closed: false, answered: false };
  socket.on("close", () => {
    seen.closed = true;
  });
  socket.on("error", () => undefined);
  socket.on("data", () => {
    seen.answered = true;
  });
  try {
    const connected = await new Promise<boolean>((resolve) => {
      socket.once("connect", () => {
        resolve(true);
      });
      socket.once("close", () => {
        resolve(false);
      });
      setTimeout(() => {
        resolve(false);
      }, timeoutMs).unref();
    });
    if (!connected) return { ok: false, output: `${where}: QEMU does not forward it` };
    while (Date.now() < deadline) {
      if (seen.answered) return { ok: true, output: `${where} answers` };
      if (seen.closed) return { ok: false, output: `${where}: the guest refused the connection` };
      if (guestAnswered(await usernet().catch(() => ""), port.port))
        return { ok: true, output: `${where} answers` };
      await new Promise((resolve) => setTimeout(resolve, USERNET_POLL_MS));
    }
    return { ok: false, output: `${where}: no answer within ${timeoutMs} ms` };
  } finally {
    socket.destroy();
  }
}

/**
 * True when QEMU's socket table has a TCP connection to the guest's `port`
 * past SYN_SENT (the guest accepted it). Lines look like
 * `TCP[ESTABLISHED]  15  127.0.0.1 18080  10.0.2.15  80  0  0`; the guest's
 * own connections out have another destination.
 */
export function guestAnswered(usernet: string, port: number): boolean {
  return usernet.split("\n").some((line) => {
    const fields = line.trim().split(/\s+/);
    const state = /^TCP\[([A-Z_]+)\]$/.exec(fields[0] ?? "")?.[1];
    if (state === undefined || state === "SYN_SENT" || state === "HOST_FORWARD") return false;
    return fields[4] === GUEST_ADDRESS && fields[5] === String(port);
  });
}

/**
 * The health after a probe, as Podman keeps it: failures in the start
 * period do not count, `retries` failures in a row make it unhealthy, a
 * success makes it healthy.
 */
export function nextHealth(
  previous: HealthState | undefined,
  outcome: ProbeOutcome,
  times: { start: number; end: number; startedAt: number },
): HealthState {
  const entry = {
    start: new Date(times.start),
    end: new Date(times.end),
    exitCode: outcome.ok ? 0 : 1,
    output: outcome.output,
  };
  const log = [...(previous?.log ?? []), entry].slice(-MAX_LOG_ENTRIES);
  if (outcome.ok) return { status: "healthy", failingStreak: 0, log };
  const inStartPeriod = times.end - times.startedAt < VM_HEALTHCHECK.startPeriodMs;
  const failingStreak = inStartPeriod ? 0 : (previous?.failingStreak ?? 0) + 1;
  const status =
    failingStreak >= VM_HEALTHCHECK.retries ? "unhealthy" : (previous?.status ?? "starting");
  return { status, failingStreak, log };
}
