/**
 * The box's network settings on the Town OS image: kept on the data pool
 * (`<dataDir>/os/network/settings.json`), so they survive the OS being reset
 * at boot, and applied as a systemd-networkd file in its runtime directory.
 * Off the image no directory is given and nothing is applied: a developer's
 * own network is never touched.
 */
import { lstat, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { TownError } from "@townos/format";
import { readSmallFile, writeFileAtomic } from "./small-files.js";
import { run } from "../storage/exec.js";
import { lstatOrUndefined } from "../storage/safe-fs.js";
import { Mutex } from "./mutex.js";
import {
  compileNetworkdFile,
  DHCP,
  dhcpForced,
  matchedInterface,
  parseNetworkSettings,
  type NetworkSettings,
} from "./network-settings.js";
import { SYS_CLASS_NET, wiredInterfaces, type WiredInterface } from "./wired-interfaces.js";

export const NETWORK_DIR = join("os", "network");
export const SETTINGS_FILE = "settings.json";
/** Sorts before the image's `80-town-os-dhcp.network`: networkd uses the first file that matches. */
export const NETWORKD_FILE = "10-town-os.network";
const MAX_SETTINGS_BYTES = 4096;
/** The kernel allows 2 KB on x86 (COMMAND_LINE_SIZE). */
const MAX_CMDLINE_BYTES = 4096;
const NETWORKCTL_TIMEOUT_MS = 30_000;

/** Where the OS's files and programs are; tests give their own. */
export interface OsNetworkHost {
  /** The kernel command line, for `town.network=dhcp`. */
  cmdlineFile: string;
  sysClassNet: string;
  /** Runs `networkctl ARGS`; @throws TownError `io` when it fails. */
  networkctl: (args: readonly string[]) => Promise<void>;
}

export const DEFAULT_OS_NETWORK_HOST: OsNetworkHost = {
  cmdlineFile: "/proc/cmdline",
  sysClassNet: SYS_CLASS_NET,
  networkctl: async (args) => {
    await run("networkctl", args, `networkctl ${args.join(" ")}`, {
      timeoutMs: NETWORKCTL_TIMEOUT_MS,
    });
  },
};

export interface OsNetworkStatus {
  settings: NetworkSettings;
  /** Whether this box applies them (the image gives networkd's directory). */
  served: boolean;
  /** Booted with `town.network=dhcp`: DHCP until the next boot, whatever is saved. */
  overridden: boolean;
  interfaces: WiredInterface[];
  /** Why the last attempt to apply them failed; null when it worked or none was made. */
  error: string | null;
}

export class OsNetwork {
  private readonly dir: string;
  private readonly host: OsNetworkHost;
  private readonly lock = new Mutex();
  private failure: string | null = null;

  /** @param networkdDir systemd-networkd's runtime directory (the image: /run/systemd/network); absent: never applied. */
  constructor(
    dataDir: string,
    private readonly networkdDir?: string,
    host: Partial<OsNetworkHost> = {},
  ) {
    this.dir = join(dataDir, NETWORK_DIR);
    this.host = { ...DEFAULT_OS_NETWORK_HOST, ...host };
  }

  get path(): string {
    return join(this.dir, SETTINGS_FILE);
  }

  /**
   * The saved settings, checked again (the file is on a disk anyone may have
   * written to); DHCP when none were saved.
   * @throws TownError `io` when the file is unusable
   */
  async read(): Promise<NetworkSettings> {
    if ((await lstatOrUndefined(this.path)) === undefined) return DHCP;
    const unusable = (why: string) =>
      new TownError("io", `the saved network settings (${this.path}) are unusable: ${why}`);
    const text = await readSmallFile(this.path, MAX_SETTINGS_BYTES);
    if (text === undefined)
      throw unusable(`not a regular file of at most ${MAX_SETTINGS_BYTES} bytes`);
    try {
      return parseNetworkSettings(JSON.parse(text));
    } catch (error) {
      throw unusable(error instanceof Error ? error.message : String(error));
    }
  }

  async status(): Promise<OsNetworkStatus> {
    const [settings, overridden, interfaces] = await Promise.all([
      this.read(),
      this.overridden(),
      wiredInterfaces(this.host.sysClassNet),
    ]);
    return {
      settings,
      served: this.networkdDir !== undefined,
      overridden,
      interfaces,
      error: this.failure,
    };
  }

  /**
   * Checks and saves new settings (not applying them: see `apply`). A fixed
   * address must be on one of the box's wired interfaces.
   * @throws TownError `invalid_argument` with `issues`
   */
  async replace(input: unknown): Promise<NetworkSettings> {
    const settings = parseNetworkSettings(input);
    if (settings.mode === "static") {
      const names = (await wiredInterfaces(this.host.sysClassNet)).map((wired) => wired.name);
      if (!names.includes(settings.interface)) {
        const message = `this box has no wired interface "${settings.interface}" (it has: ${names.join(", ") || "none"})`;
        throw new TownError("invalid_argument", `network settings: interface: ${message}`, {
          issues: [{ field: "interface", message }],
        });
      }
    }
    await this.lock.run(async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      if (!(await lstat(this.dir)).isDirectory())
        throw new TownError("io", `${this.dir} is not a directory: network settings are not saved`);
      await writeFileAtomic(this.path, `${JSON.stringify(settings, null, 2)}\n`);
    });
    return settings;
  }

  /**
   * Makes networkd follow the saved settings (DHCP when the boot said
   * `town.network=dhcp`): writes or removes its file, then has it reload and
   * reconfigure the interfaces concerned. Nothing when the file is already
   * right, so a daemon restart leaves the network alone; nothing off the image.
   */
  async apply(): Promise<void> {
    const networkdDir = this.networkdDir;
    if (networkdDir === undefined) return;
    await this.lock.run(async () => {
      try {
        const wanted = compileNetworkdFile((await this.overridden()) ? DHCP : await this.read());
        const path = join(networkdDir, NETWORKD_FILE);
        const current = await readFile(path, "utf8").catch(() => null);
        if (current !== wanted) {
          if (wanted === null) await rm(path, { force: true });
          else {
            await mkdir(networkdDir, { recursive: true, mode: 0o755 });
            // networkd reads its files as its own user.
            await writeFileAtomic(path, wanted, 0o644);
          }
          await this.host.networkctl(["reload"]);
          // The interface losing the file goes back to DHCP; the one gaining it takes the address.
          const names = new Set([current, wanted].map((text) => text && matchedInterface(text)));
          for (const name of names) if (name) await this.host.networkctl(["reconfigure", name]);
        }
        this.failure = null;
      } catch (error) {
        this.failure = error instanceof Error ? error.message : String(error);
        throw error;
      }
    });
  }

  /** Resolves once no change is being saved or applied. */
  idle(): Promise<void> {
    return this.lock.idle();
  }

  private async overridden(): Promise<boolean> {
    if (this.networkdDir === undefined) return false;
    return dhcpForced((await readSmallFile(this.host.cmdlineFile, MAX_CMDLINE_BYTES)) ?? "");
  }
}
