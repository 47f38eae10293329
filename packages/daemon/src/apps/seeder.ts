/**
 * Seeding of package volumes with the real programs: directories copied out
 * of container images (`archives`) and git clones (`git_sources`, a
 * volume's `git`), and the reconciler put together from the host runtime
 * and a storage driver.
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import type { Clock } from "../clock.js";
import type { HostRuntime, Workload } from "../runtime/workload.js";
import type { StorageDriver } from "../storage/driver.js";
import { seedFromArchive, seedFromGit, writeTemplates } from "../storage/seed.js";
import {
  AppReconciler,
  isInsecure,
  type AppDesiredState,
  type VmImageSource,
  type VolumeSeeder,
} from "./controller.js";

/** Most bytes a directory copied out of an image may hold. */
export const MAX_IMAGE_SEED_BYTES = 16 * 1024 ** 3;

/** Seeds from images through a stopped, short-lived container, and from git with isomorphic-git. */
export function imageSeeder(
  runtime: HostRuntime,
  stagingRoot: string,
  insecureRegistries: () => readonly string[] = () => [],
): VolumeSeeder {
  return {
    async fromGit(dir, source, owner) {
      const outcome = await seedFromGit(
        dir,
        { url: source.url, ...(source.branch === null ? {} : { branch: source.branch }) },
        { stagingRoot, ...(owner ? { owner } : {}) },
      );
      return outcome.seeded;
    },
    async fromImage(dir, source, owner, labels) {
      if (!(await runtime.imageExists(source.image))) {
        await runtime.pullImage(
          source.image,
          isInsecure(source.image, insecureRegistries()) ? { tlsVerify: false } : {},
        );
      }
      // Labelled as the app's: one left by a crash is removed by the app's next reconcile.
      const name = `town-seed-${randomBytes(6).toString("hex")}`;
      await runtime.ensure(seedWorkload(name, source.image, labels));
      try {
        const tar = await runtime.copyFrom(name, source.directory);
        const outcome = await seedFromArchive(dir, Readable.from(tar), "tar", {
          stagingRoot,
          maxBytes: MAX_IMAGE_SEED_BYTES,
          ...(owner ? { owner } : {}),
        });
        return outcome.seeded;
      } finally {
        await runtime.remove(name);
      }
    },
  };
}

/** A workload that is never started: only its file system is read. */
function seedWorkload(
  name: string,
  image: string,
  labels: Readonly<Record<string, string>>,
): Workload {
  return {
    kind: "container",
    name,
    hostname: name,
    image,
    command: ["true"],
    env: {},
    labels,
    mounts: [],
    ports: [],
    network: null,
    restart: "no",
  };
}

/**
 * The app reconciler over a host runtime (Podman, or Podman and QEMU behind
 * the router) and a storage driver, as the daemon runs it.
 */
export function appReconciler(options: {
  runtime: HostRuntime;
  storage: StorageDriver;
  desired: AppDesiredState;
  clock: Clock;
  box: string;
  vmImages?: VmImageSource;
  held?: (repo: string, name: string) => boolean;
  insecureRegistries?: () => readonly string[];
}): AppReconciler {
  const { runtime } = options;
  return new AppReconciler({
    runtime,
    storage: options.storage,
    writeTemplates,
    seeder: imageSeeder(runtime, options.storage.stagingRoot, options.insecureRegistries),
    desired: options.desired,
    clock: options.clock,
    box: options.box,
    ...(options.vmImages ? { vmImages: options.vmImages } : {}),
    ...(options.held ? { held: options.held } : {}),
    ...(options.insecureRegistries ? { insecureRegistries: options.insecureRegistries } : {}),
  });
}
