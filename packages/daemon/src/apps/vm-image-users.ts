import type { InstallRecord } from "../store/installs.js";
import { vmImageName } from "../runtime/qemu/image-name.js";
import { flattenPlan } from "./names.js";

/**
 * Which installed apps (`repo/name`) run a VM on each image of the store,
 * by image name: an app counts when it or one of its dependencies has a VM
 * whose `vm.image` is that name or a URL the store names so. Pure.
 */
export function vmImageUsers(installs: readonly InstallRecord[]): Map<string, string[]> {
  const users = new Map<string, string[]>();
  for (const install of installs) {
    if (!install.plan) continue;
    const app = `${install.repo}/${install.name}`;
    for (const { plan } of flattenPlan(install.plan)) {
      if (plan.runtime !== "vm" || plan.vm === null) continue;
      const name = vmImageName(plan.vm.image);
      const apps = users.get(name) ?? [];
      if (!apps.includes(app)) apps.push(app);
      users.set(name, apps);
    }
  }
  return users;
}
