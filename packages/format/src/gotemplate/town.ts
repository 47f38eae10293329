/**
 * The data Town OS passes to package file templates, typed as the original Go
 * implementation declares it:
 *
 *   type Package struct{ Name, Version, Repo, Image, Description string }
 *   type System struct{ Hostname, ExternalIP, InternalIP string }
 *   type Dep struct{ Host string; Ports map[string]int; Volumes map[string]string }
 *   type Data struct {
 *     Responses map[string]string
 *     Package   Package
 *     System    System
 *     Dep       map[string]Dep
 *   }
 */

import { goTypes, mapOf, structType, typed, type Typed } from "./value.js";

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

export const townTypes = Object.freeze({
  Package: packageType,
  System: systemType,
  Dep: depType,
  Data: dataType,
});

export interface TownTemplateInput {
  /** Answers by question name. */
  responses: Readonly<Record<string, string>>;
  package: {
    name: string;
    version: string;
    repo: string;
    image: string;
    description: string;
  };
  system: { hostname: string; externalIP: string; internalIP: string };
  /** Dependencies by key. */
  dep: Readonly<
    Record<
      string,
      {
        host: string;
        ports: Readonly<Record<string, number>>;
        volumes: Readonly<Record<string, string>>;
      }
    >
  >;
}

/** Builds the town.Data value that executeTemplate expects. */
export function townTemplateData(input: TownTemplateInput): Typed {
  return typed(dataType, {
    Responses: input.responses,
    Package: {
      Name: input.package.name,
      Version: input.package.version,
      Repo: input.package.repo,
      Image: input.package.image,
      Description: input.package.description,
    },
    System: {
      Hostname: input.system.hostname,
      ExternalIP: input.system.externalIP,
      InternalIP: input.system.internalIP,
    },
    Dep: Object.fromEntries(
      Object.entries(input.dep).map(([key, d]) => [
        key,
        { Host: d.host, Ports: d.ports, Volumes: d.volumes },
      ]),
    ),
  });
}
