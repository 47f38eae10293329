import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import type { NetworkStatus } from "@townos/client";
import { clientKit } from "./client-kit.js";
import type { Io } from "./io.js";

/** `town net …`: the box's HTTPS ingress, names and router port mappings. */
export function registerNetCommands(program: Command, io: Io): void {
  const { client, print } = clientKit(program, io);
  const net = program.command("net").description("networking: HTTPS ingress, DNS, mDNS, UPnP");

  net
    .command("status")
    .description("state of the ingress, DNS, mDNS and the router's port mappings")
    .option("--json")
    .action(async (flags: { json?: boolean }) => {
      const status = await (await client()).netStatus();
      print(flags.json ? JSON.stringify(status, null, 2) : statusLines(status).join("\n"));
    });

  net
    .command("ca")
    .description("save the root certificate of the box's local CA, to install on devices")
    .argument("[file]", "where to save it ('-': print it)", "town-os-ca.crt")
    .action(async (file: string) => {
      const pem = await (await client()).caCertificate();
      if (file === "-") {
        print(pem);
        return;
      }
      const path = resolve(io.cwd, file);
      await writeFile(path, pem, { mode: 0o644 });
      print(`saved the root certificate to ${path}`);
    });
}

function statusLines(status: NetworkStatus): string[] {
  if (status.state === "off") return ["networking is turned off in this daemon"];
  const lines: string[] = [];
  const { ingress, dns, mdns, upnp } = status;
  if (ingress) {
    const ports = [
      ingress.httpsPort === null ? undefined : `https :${ingress.httpsPort}`,
      ingress.httpPort === null ? undefined : `http :${ingress.httpPort}`,
    ].filter((part) => part !== undefined);
    lines.push(
      `ingress: ${ingress.state}` +
        (ingress.pid === null
          ? ""
          : ` (pid ${ingress.pid}${ingress.user === null ? "" : `, user ${ingress.user}`})`) +
        (ports.length > 0 ? `, ${ports.join(", ")}` : "") +
        `, config ${ingress.configCurrent ? "current" : "not applied"}`,
    );
    const { certificates } = ingress;
    if (certificates)
      lines.push(
        `  certificates: ${certificates.state}` +
          (certificates.pid === null
            ? ""
            : ` (pid ${certificates.pid}${certificates.user === null ? "" : `, user ${certificates.user}`})`) +
          `, ${certificates.served} ${certificates.served === 1 ? "name" : "names"} served`,
      );
    if (ingress.lastError) lines.push(`  last error: ${ingress.lastError.message}`);
  }
  if (dns) {
    const listen = dns.listen
      ? ` on ${dns.listen.addresses.join(", ")} port ${dns.listen.port}`
      : "";
    lines.push(`dns: ${dns.state}${listen}, ${dns.records} records`);
    lines.push(`  upstreams: ${dns.upstreams.length > 0 ? dns.upstreams.join(", ") : "none"}`);
    if (dns.error !== undefined) lines.push(`  error: ${dns.error}`);
  }
  if (mdns) {
    lines.push(`mdns: ${mdns.name} ${mdns.state}`);
    if (mdns.error !== undefined) lines.push(`  error: ${mdns.error}`);
  }
  if (upnp) {
    const router = upnp.router;
    lines.push(
      `upnp: router ${router.state.replace("_", " ")}` +
        (router.externalAddress === undefined
          ? ""
          : `, external address ${router.externalAddress}`),
    );
    if (router.error !== undefined) lines.push(`  error: ${router.error}`);
    lines.push(
      status.forwardHttps
        ? "  443 and 80 forwarded to the ingress for public domains (upnp.forward_https on)"
        : "  443 and 80 not forwarded: public domains answer on the home network only (upnp.forward_https off)",
    );
    for (const m of upnp.mappings) {
      lines.push(
        `  ${m.protocol} ${m.externalPort} → ${m.internalClient}:${m.internalPort} ${m.state}` +
          (m.error === undefined ? "" : `: ${m.error}`),
      );
    }
  }
  if (status.dashboardUrl !== null) lines.push(`dashboard: ${status.dashboardUrl}`);
  for (const app of status.apps.filter((a) => a.urls.length > 0))
    lines.push(`${app.repo}/${app.name}: ${app.urls.join(" ")}`);
  for (const problem of status.problems) lines.push(`problem: ${problem}`);
  return lines;
}
