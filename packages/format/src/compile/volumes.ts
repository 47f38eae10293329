/** Volumes and what fills them (archives, git sources), compiled. */

import type { PackageDefinition } from "../definition/types.js";
import { parseId } from "../rules.js";
import { parseByteSize } from "../units.js";
import type { FieldCompiler } from "./fields.js";
import { compareText } from "./plan.js";
import type { CompiledPackage, CompiledVolume } from "./types.js";

export function compileVolumes(
  field: FieldCompiler,
  definition: PackageDefinition,
): CompiledVolume[] {
  const volumes: CompiledVolume[] = [];
  const mountpoints = new Map<string, string>();
  for (const [name, volume] of definition.volumes) {
    const at = `volumes.${name}`;
    const mountpoint = field.path(`${at}.mountpoint`, volume.mountpoint, "absolute");
    const other = mountpoints.get(mountpoint);
    if (other !== undefined)
      field.report(`${at}.mountpoint`, `${mountpoint} is also the mountpoint of volume "${other}"`);
    mountpoints.set(mountpoint, name);
    volumes.push({
      name,
      mountpoint,
      quota: field.optional(`${at}.quota`, volume.quota, (text) => {
        const bytes = parseByteSize(text);
        return bytes === undefined || bytes === 0 ? `"${text}" is not a byte size` : bytes;
      }),
      uid: field.optional(
        `${at}.uid`,
        volume.uid,
        (text) => parseId(text) ?? `"${text}" is not a uid`,
      ),
      gid: field.optional(
        `${at}.gid`,
        volume.gid,
        (text) => parseId(text) ?? `"${text}" is not a gid`,
      ),
      archive:
        volume.archive === undefined
          ? null
          : field.text(`${at}.archive`, field.stage1(volume.archive)),
      git: volume.git === undefined ? null : field.text(`${at}.git`, field.stage1(volume.git)),
    });
  }
  return volumes.sort((a, b) => compareText(a.name, b.name));
}

export function compileArchives(
  field: FieldCompiler,
  definition: PackageDefinition,
  volumeNames: ReadonlySet<string>,
): CompiledPackage["archives"] {
  return definition.archives.map((archive, i) => ({
    image: field.image(`archives.${i}.image`, archive.image) ?? "",
    directory: field.path(`archives.${i}.directory`, archive.directory, "absolute"),
    volume: field.volumeRef(`archives.${i}.volume`, archive.volume, volumeNames),
  }));
}

export function compileGitSources(
  field: FieldCompiler,
  definition: PackageDefinition,
  volumeNames: ReadonlySet<string>,
): CompiledPackage["gitSources"] {
  return definition.gitSources.map((git, i) => ({
    url: field.gitUrl(`git_sources.${i}.url`, git.url),
    branch:
      git.branch === undefined
        ? null
        : field.text(`git_sources.${i}.branch`, field.stage1(git.branch)),
    volume: field.volumeRef(`git_sources.${i}.volume`, git.volume, volumeNames),
  }));
}
