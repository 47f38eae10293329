import { executeTemplate, parseTemplate } from "./gotemplate/index.js";
import { goTypes, mapOf, structType, typed } from "./gotemplate/value.js";

/**
 * The data file templates see, typed as the original Go implementation
 * declares it, so that `{{ .Responses.missing }}` prints `<no value>`,
 * `{{ index .Responses "missing" }}` prints nothing and `{{ .Package.Nope }}`
 * is an error — exactly as in Go.
 */
const packageType = structType("town.Package", {
  Name: goTypes.string,
  Version: goTypes.string,
  Repo: goTypes.string,
  Image: goTypes.string,
  Description: goTypes.string,
});
const systemType = structType("town.System", {
  Hostname: goTypes.string,
  ExternalIP: goTypes.string,
  InternalIP: goTypes.string,
});
const depType = structType("town.Dep", {
  Host: goTypes.string,
  Ports: mapOf(goTypes.int),
  Volumes: mapOf(goTypes.string),
});
const dataType = structType("town.Data", {
  Responses: mapOf(goTypes.string),
  Package: packageType,
  System: systemType,
  Dep: mapOf(depType),
});

export interface TemplateContext {
  /** Final answers, by question name. */
  responses: Readonly<Record<string, string>>;
  package: { name: string; version: string; repo: string; image: string; description: string };
  system: { hostname: string; externalIP: string; internalIP: string };
  /** Dependency key → host name, ports (by number and role, container side) and volume mountpoints. */
  dependencies: Readonly<
    Record<string, { host: string; ports: Readonly<Record<string, number>>; volumes: Readonly<Record<string, string>> }>
  >;
}

/** Renders one file template; throws TownError `template_syntax` or `template_exec`. */
export function renderFileTemplate(name: string, source: string, context: TemplateContext): string {
  const data = typed(dataType, {
    Responses: context.responses,
    Package: {
      Name: context.package.name,
      Version: context.package.version,
      Repo: context.package.repo,
      Image: context.package.image,
      Description: context.package.description,
    },
    System: {
      Hostname: context.system.hostname,
      ExternalIP: context.system.externalIP,
      InternalIP: context.system.internalIP,
    },
    Dep: Object.fromEntries(
      Object.entries(context.dependencies).map(([key, dep]) => [
        key,
        { Host: dep.host, Ports: dep.ports, Volumes: dep.volumes },
      ]),
    ),
  });
  return executeTemplate(parseTemplate(name, source), data);
}
