/**
 * Seeding of package volumes with the real programs: directories copied out
 * of container images (`archives`) and git clones (`git_sources`, a
 * volume's `git`), and the reconciler put together from the host runtime
 * and a storage driver.
 */
import type { Clock } from "../clock.js";
import { copyOutOfImage } from "../runtime/image-files.js";
import type { HostRuntime } from "../runtime/workload.js";
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
      // Labelled as the app's: a container left by a crash is removed by the app's next reconcile.
      const outcome = await copyOutOfImage(
        runtime,
        {
          image: source.image,
          directory: source.directory,
          labels,
          insecure: isInsecure(source.image, insecureRegistries()),
          namePrefix: "town-seed",
        },
        (tar) =>
          seedFromArchive(dir, tar, "tar", {
            stagingRoot,
            maxBytes: MAX_IMAGE_SEED_BYTES,
            ...(owner ? { owner } : {}),
          }),
      );
      return outcome.seeded;
    },
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
