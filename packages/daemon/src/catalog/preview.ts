import {
  compilePackage,
  cryptoRandom,
  isTownError,
  prefillAnswers,
  type CompiledPackage,
  type Issue,
  type PackageIndex,
  type PackageSource,
  type SystemInfo,
} from "@townos/format";

/**
 * What installing a package version would create, from its definition with
 * the form's starting answers. Nothing is changed. Where answers are still
 * needed, volumes and ports are shown as written in the package.
 */
export interface InstallPreview {
  runtime: "container" | "vm";
  image: string | null;
  volumes: { name: string; mountpoint: string; quota: number | null }[];
  ports: {
    name: string | null;
    host: number | string | null;
    container: number | string;
    exposure: string;
  }[];
  ingress: { host: string; port: number } | null;
  dependencies: { key: string; repo: string; name: string; version: string }[];
  /** Questions that need an answer before an install can go ahead. */
  questionsToAnswer: string[];
  /** Problems other than missing answers that would stop an install. */
  problems: Issue[];
}

export function previewInstall(
  source: PackageSource,
  index: PackageIndex,
  tld: string,
  system: SystemInfo,
): InstallPreview {
  const { definition } = source;
  const needed = [...definition.questions]
    .filter(
      ([, question]) =>
        !question.optional &&
        !question.showIf &&
        (question.default ?? "") === "" &&
        !generates(question.type),
    )
    .map(([name]) => name);
  try {
    const plan = compilePackage(source, prefillAnswers(definition.questions), {
      tld,
      system,
      random: cryptoRandom,
      resolveDependency: (request) => index.find(request),
    });
    return fromPlan(plan, needed);
  } catch (error) {
    if (!isTownError(error)) throw error;
    const answerProblems = error.issues.filter((issue) => issue.question !== undefined);
    return {
      runtime: definition.vm ? "vm" : "container",
      image: definition.image?.url ?? null,
      volumes: [...definition.volumes].map(([name, volume]) => ({
        name,
        mountpoint: volume.mountpoint,
        quota: null,
      })),
      ports: (["external", "internal"] as const).flatMap((exposure) =>
        definition.network[exposure].map((entry) => ({
          name: /^[0-9]+$/.test(entry.key) || entry.key.includes("@") ? null : entry.key,
          host: entry.key,
          container: entry.value,
          exposure,
        })),
      ),
      ingress: null,
      dependencies: [...definition.dependencies].map(([key, dependency]) => ({
        key,
        repo: dependency.repo ?? source.repo,
        name: dependency.package,
        version: dependency.version ?? "latest",
      })),
      questionsToAnswer: [
        ...new Set([...needed, ...answerProblems.map((issue) => issue.question ?? "")]),
      ],
      problems: error.issues.filter((issue) => issue.question === undefined),
    };
  }
}

function generates(type: string): boolean {
  return type === "port" || type === "hostname" || type === "secret";
}

function fromPlan(plan: CompiledPackage, needed: string[]): InstallPreview {
  return {
    runtime: plan.runtime,
    image: plan.image ?? plan.vm?.image ?? null,
    volumes: plan.volumes.map((volume) => ({
      name: volume.name,
      mountpoint: volume.mountpoint,
      quota: volume.quota,
    })),
    ports: plan.ports,
    ingress: plan.ingress,
    dependencies: plan.dependencies.map((dependency) => ({
      key: dependency.key,
      repo: dependency.repo,
      name: dependency.name,
      version: dependency.version,
    })),
    questionsToAnswer: needed,
    problems: [],
  };
}
