/**
 * `volumes` and what fills them: `archives`, `git_sources` and `templates`,
 * and the check that each names a volume the package defines.
 */

import {
  absolutePathProblem,
  hasMarker,
  isGitUrl,
  MAX_TEMPLATE_CONTENT_LENGTH,
  parseId,
  relativePathProblem,
  TEMPLATE_NAME,
  VOLUME_NAME,
} from "../rules.js";
import { parseByteSize } from "../units.js";
import type { Field, FieldReader } from "./reader.js";
import { checkImage } from "./runtime.js";
import type {
  ArchiveDefinition,
  GitSourceDefinition,
  PackageDefinition,
  TemplateDefinition,
  VolumeDefinition,
} from "./types.js";

export function readVolumes(r: FieldReader, node: Field): Map<string, VolumeDefinition> {
  const volumes = new Map<string, VolumeDefinition>();
  for (const [name, value] of r.source.map(node, "volumes")) {
    const field = `volumes.${name}`;
    if (!VOLUME_NAME.test(name)) r.source.keyError(field, `"${name}" is not a valid volume name`);
    const fields = r.fieldsOf(value, field, [
      "mountpoint",
      "quota",
      "uid",
      "gid",
      "archive",
      "git",
    ]);
    const mountpoint = r.required(fields.get("mountpoint"), `${field}.mountpoint`);
    const problem =
      hasMarker(mountpoint) || mountpoint === "" ? undefined : absolutePathProblem(mountpoint);
    if (problem) r.source.error(`${field}.mountpoint`, fields.get("mountpoint"), problem);
    const volume: VolumeDefinition = { mountpoint };
    for (const key of ["quota", "uid", "gid", "archive", "git"] as const) {
      const text = r.text(fields.get(key), `${field}.${key}`);
      if (text !== undefined && text !== "") volume[key] = text;
    }
    if (
      volume.quota !== undefined &&
      !hasMarker(volume.quota) &&
      parseByteSize(volume.quota) === undefined
    ) {
      r.source.error(`${field}.quota`, fields.get("quota"), `"${volume.quota}" is not a byte size`);
    }
    for (const key of ["uid", "gid"] as const) {
      const id = volume[key];
      if (id !== undefined && !hasMarker(id) && parseId(id) === undefined) {
        r.source.error(
          `${field}.${key}`,
          fields.get(key),
          `"${id}" is not a ${key} (0-4294967294)`,
        );
      }
    }
    volumes.set(name, volume);
  }
  return volumes;
}

export function readArchives(r: FieldReader, node: Field): ArchiveDefinition[] {
  return r.source.list(node, "archives").map((item, index) => {
    const field = `archives.${index}`;
    const fields = r.fieldsOf(item, field, ["image", "directory", "volume"]);
    const archive = {
      image: r.required(fields.get("image"), `${field}.image`),
      directory: r.required(fields.get("directory"), `${field}.directory`),
      volume: r.required(fields.get("volume"), `${field}.volume`),
    };
    if (archive.image !== "") checkImage(r, archive.image, `${field}.image`, fields.get("image"));
    const problem =
      archive.directory === "" || hasMarker(archive.directory)
        ? undefined
        : absolutePathProblem(archive.directory);
    if (problem) r.source.error(`${field}.directory`, fields.get("directory"), problem);
    return archive;
  });
}

export function readGitSources(r: FieldReader, node: Field): GitSourceDefinition[] {
  return r.source.list(node, "git_sources").map((item, index) => {
    const field = `git_sources.${index}`;
    const fields = r.fieldsOf(item, field, ["url", "branch", "volume"]);
    const source: GitSourceDefinition = {
      url: r.required(fields.get("url"), `${field}.url`),
      volume: r.required(fields.get("volume"), `${field}.volume`),
    };
    const branch = r.text(fields.get("branch"), `${field}.branch`);
    if (branch) source.branch = branch;
    if (source.url !== "" && !hasMarker(source.url) && !isGitUrl(source.url)) {
      r.source.error(
        `${field}.url`,
        fields.get("url"),
        `"${source.url}" is not an http(s) git URL`,
      );
    }
    return source;
  });
}

export function readTemplates(r: FieldReader, node: Field): Map<string, TemplateDefinition> {
  const templates = new Map<string, TemplateDefinition>();
  for (const [name, value] of r.source.map(node, "templates")) {
    const field = `templates.${name}`;
    if (!TEMPLATE_NAME.test(name))
      r.source.keyError(field, `"${name}" is not a valid template name`);
    const fields = r.fieldsOf(value, field, ["volume", "path", "content"]);
    const template = {
      volume: r.required(fields.get("volume"), `${field}.volume`),
      path: r.required(fields.get("path"), `${field}.path`),
      content:
        r.text(fields.get("content"), `${field}.content`, {
          multiline: true,
          max: MAX_TEMPLATE_CONTENT_LENGTH,
        }) ?? "",
    };
    const problem =
      template.path === "" || hasMarker(template.path)
        ? undefined
        : relativePathProblem(template.path);
    if (problem) r.source.error(`${field}.path`, fields.get("path"), problem);
    templates.set(name, template);
  }
  return templates;
}

/** Archives, git sources and templates must name a volume of this package. */
export function checkVolumeReferences(r: FieldReader, definition: PackageDefinition): void {
  const check = (volume: string, field: string): void => {
    if (volume !== "" && !hasMarker(volume) && !definition.volumes.has(volume)) {
      r.source.error(field, null, `names volume "${volume}", which this package does not define`);
    }
  };
  definition.archives.forEach((archive, index) => {
    check(archive.volume, `archives.${index}.volume`);
  });
  definition.gitSources.forEach((source, index) => {
    check(source.volume, `git_sources.${index}.volume`);
  });
  for (const [name, template] of definition.templates)
    check(template.volume, `templates.${name}.volume`);
}
