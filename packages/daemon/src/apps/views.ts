/**
 * What the API shows of installed apps: each install with the live state of
 * its containers, its ports, names and volumes, and for a VM what its
 * runtime says of it.
 */
import type { VmFacts } from "@townos/api";
import type { InstallRecord, Installs } from "../store/installs.js";
import type { MachineInfo, WorkloadRuntime } from "../runtime/workload.js";
import { HOST_ADDRESS } from "./host-address.js";
import { appLabels, LABEL_APP, LABEL_BOX } from "./labels.js";
import { flattenPlan } from "./names.js";
import { appNotes, type AppNote } from "./notes.js";
import {
  appUrls,
  portExposure,
  publishedPlan,
  publishedPorts,
  type PublishedPort,
} from "./planner.js";

export interface AppView {
  repo: string;
  name: string;
  version: string;
  enabled: boolean;
  /** Should run now (false once stopped); `held` while an upload into its volume goes on. */
  running: boolean;
  held: boolean;
  /** An upgrade's post_update commands have not run yet. */
  postUpdatePending: boolean;
  installedAt: number;
  /** Published host ports, with who can reach them (the ingress's loopback ports left out). */
  ports: PublishedPort[];
  /** Where people open the app: its HTTPS name (and public domains) through the ingress. */
  urls: string[];
  /** The app's names are in the box's DNS. */
  dnsPublished: boolean;
  volumes: { instance: string; name: string; mountpoint: string; quota: number | null }[];
  notes: AppNote[];
  /** One per container of the app (dependencies first); `missing` when it does not exist. */
  containers: { name: string; state: string }[];
  lastError: string | null;
  /** The app's own VM; null for a container app. */
  vm: VmFacts | null;
}

type ContainerLister = Pick<WorkloadRuntime, "list">;

export interface ViewOptions {
  installs: Installs;
  tld: () => string;
  /** This install's id (`LABEL_BOX`). */
  box: string;
  /** True while a hold keeps the app stopped. */
  held: (repo: string, name: string) => boolean;
}

export class AppViews {
  constructor(private readonly options: ViewOptions) {}

  /** Every app with the live state of its containers (one runtime call). */
  async list(runtime: ContainerLister): Promise<AppView[]> {
    const states = new Map<string, Map<string, string>>();
    for (const container of await runtime.list({ [LABEL_BOX]: this.options.box })) {
      const app = container.labels[LABEL_APP];
      if (app === undefined) continue;
      const byName = states.get(app) ?? new Map<string, string>();
      byName.set(container.name, container.state);
      states.set(app, byName);
    }
    return this.options.installs
      .list()
      .map((install) =>
        this.viewOf(install, states.get(`${install.repo}/${install.name}`) ?? new Map()),
      );
  }

  /** The installed app with the live state of its containers, and of its VM as the runtime inspects it. */
  async view(
    runtime: Pick<WorkloadRuntime, "list" | "inspect">,
    install: InstallRecord,
  ): Promise<AppView> {
    const existing = await runtime.list(appLabels(this.options.box, install.repo, install.name));
    const vm =
      install.plan?.runtime === "vm" ? await runtime.inspect(install.plan.hostname) : undefined;
    return this.viewOf(
      install,
      new Map(existing.map((c) => [c.name, c.state])),
      vm?.machine ?? null,
    );
  }

  private viewOf(
    install: InstallRecord,
    states: ReadonlyMap<string, string>,
    machine: MachineInfo | null = null,
  ): AppView {
    const nodes = install.plan ? flattenPlan(install.plan) : [];
    return {
      repo: install.repo,
      name: install.name,
      version: install.version,
      enabled: install.enabled,
      running: install.running,
      held: this.options.held(install.repo, install.name),
      postUpdatePending: install.postUpdateFor !== null,
      installedAt: install.installedAt,
      ports: publishedPorts(install),
      urls: appUrls(install, this.options.tld()),
      dnsPublished: install.dnsPublished,
      volumes: nodes.flatMap(({ plan }) =>
        plan.volumes.map((volume) => ({
          instance: plan.instance,
          name: volume.name,
          mountpoint: volume.mountpoint,
          quota: volume.quota,
        })),
      ),
      notes: appNotes(install.plan),
      containers: nodes.map(({ plan }) => ({
        name: plan.hostname,
        state: states.get(plan.hostname) ?? "missing",
      })),
      lastError: this.options.installs.lastError(install.repo, install.name),
      vm: vmFacts(install, machine),
    };
  }
}

/**
 * The VM facts of an install whose own package is a VM: what the plan sets
 * (image, forwarded ports; memory and CPUs until QEMU says) and what the
 * running machine tells, null where it is not known.
 */
export function vmFacts(install: InstallRecord, machine: MachineInfo | null): VmFacts | null {
  const plan = install.plan;
  if (plan?.runtime !== "vm" || plan.vm === null) return null;
  const node = publishedPlan(install, plan);
  return {
    instance: plan.instance,
    image: plan.vm.image,
    accelerator: machine?.accelerator ?? null,
    memoryBytes: machine?.memoryBytes ?? plan.vm.memory,
    cpus: machine?.cpus ?? plan.vm.cpus,
    diskVirtualBytes: machine?.diskVirtualBytes ?? null,
    diskAllocatedBytes: machine?.diskAllocatedBytes ?? null,
    qmpStatus: machine?.qmpStatus ?? null,
    ports: node.ports.flatMap((port) =>
      port.host === null
        ? []
        : [
            {
              hostAddress: HOST_ADDRESS[portExposure(install, plan, port)],
              hostPort: port.host,
              guestPort: port.container,
            },
          ],
    ),
  };
}
