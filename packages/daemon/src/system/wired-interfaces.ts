import { access, readdir } from "node:fs/promises";
import { networkInterfaces } from "node:os";
import { join } from "node:path";

export const SYS_CLASS_NET = "/sys/class/net";

export interface WiredInterface {
  name: string;
  /** Its IPv4 addresses now, as CIDR (`192.168.1.50/24`). */
  addresses: string[];
}

/**
 * The box's wired network cards, by name, with their IPv4 addresses. The
 * kernel links a real card to its `device`; loopback, bridges, veth pairs,
 * Podman's and VPN interfaces have none, and Wi-Fi cards have a `wireless`
 * or `phy80211` entry (a fixed address there would need the Wi-Fi setup too).
 */
export async function wiredInterfaces(
  sysClassNet = SYS_CLASS_NET,
  addresses: ReturnType<typeof networkInterfaces> = networkInterfaces(),
): Promise<WiredInterface[]> {
  let names: string[];
  try {
    names = await readdir(sysClassNet);
  } catch {
    return [];
  }
  const wired: WiredInterface[] = [];
  for (const name of names.sort()) {
    const dir = join(sysClassNet, name);
    if (!(await exists(join(dir, "device")))) continue;
    if ((await exists(join(dir, "wireless"))) || (await exists(join(dir, "phy80211")))) continue;
    wired.push({
      name,
      addresses: (addresses[name] ?? [])
        .filter((entry) => entry.family === "IPv4")
        .map((entry) => entry.cidr ?? entry.address),
    });
  }
  return wired;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
