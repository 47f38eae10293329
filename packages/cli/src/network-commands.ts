import type { Command } from "commander";
import type { NetworkSettingsStatus } from "@townos/client";
import { collect } from "./answers.js";
import { clientKit, type JsonFlag } from "./client-kit.js";
import type { Io } from "./io.js";
import { table } from "./text.js";

interface StaticFlags extends JsonFlag {
  interface: string;
  address: string;
  gateway: string;
  dns: string[];
}

/** `town network …`: how the Town OS image gets its address (administrators). */
export function registerNetworkCommands(program: Command, io: Io): void {
  const { client, print, json } = clientKit(program, io);
  const show = (answer: NetworkSettingsStatus, flags: JsonFlag): void => {
    if (flags.json) {
      json(answer);
      return;
    }
    const { settings } = answer;
    if (settings.mode === "dhcp") print("Address: by DHCP (from the router)");
    else {
      const dns =
        settings.dns.length > 0 ? settings.dns.join(", ") : `${settings.gateway} (the gateway)`;
      print(
        `Address: ${settings.address} on ${settings.interface}, fixed\nGateway: ${settings.gateway}\nDNS:     ${dns}`,
      );
    }
    print(
      table(
        ["INTERFACE", "ADDRESSES NOW"],
        answer.interfaces.map((wired) => [wired.name, wired.addresses.join(", ") || "-"]),
      ),
    );
    if (!answer.served)
      print("(This box does not run the Town OS image: the settings are kept, unused.)");
    if (answer.overridden)
      print("(Started with town.network=dhcp: DHCP until the next boot, whatever is saved.)");
    if (answer.error !== null) print(`Applying them failed: ${answer.error}`);
  };

  const command = program
    .command("network")
    .description("how the Town OS image gets its address: DHCP or fixed (kept on the data pool)")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      show(await (await client()).networkSettings(), flags);
    });
  command
    .command("dhcp")
    .description("take the address the router gives (the default)")
    .option("--json")
    .action(async (flags: JsonFlag) => {
      show(await (await client()).setNetworkSettings({ mode: "dhcp" }), flags);
    });
  command
    .command("static")
    .description("a fixed IPv4 address on one wired interface")
    .requiredOption(
      "--interface <name>",
      "the wired interface, e.g. enp1s0 (`town network` lists them)",
    )
    .requiredOption(
      "--address <ip/prefix>",
      "the address with its prefix length, e.g. 192.168.1.50/24",
    )
    .requiredOption("--gateway <ip>", "the router, inside the address's network")
    .option("--dns <ip>", "a DNS server (repeatable, up to 3; default the gateway)", collect, [])
    .option("--json")
    .action(async (flags: StaticFlags) => {
      const { interface: name, address, gateway, dns } = flags;
      const answer = await (
        await client()
      ).setNetworkSettings({
        mode: "static",
        interface: name,
        address,
        gateway,
        dns,
      });
      show(answer, flags);
      const { settings } = answer;
      if (!flags.json && settings.mode === "static" && answer.served && !answer.overridden)
        print(`The box takes the address ${settings.address.split("/")[0]} now: reach it there.`);
    });
}
