/** The `dependencies` section: other packages installed along with this one. */

import { DEPENDENCY_KEY, DNS_LABEL, PACKAGE_NAME } from "../rules.js";
import type { Field, FieldReader } from "./reader.js";
import type { DependencyDefinition } from "./types.js";

export function readDependencies(r: FieldReader, node: Field): Map<string, DependencyDefinition> {
  const dependencies = new Map<string, DependencyDefinition>();
  for (const [key, value] of r.source.map(node, "dependencies")) {
    const field = `dependencies.${key}`;
    if (!DEPENDENCY_KEY.test(key)) {
      r.source.keyError(
        field,
        `"${key}" is not a valid dependency key (lower-case letters, digits, -); no "--", no - at the end`,
      );
    }
    const fields = r.fieldsOf(value, field, ["package", "repo", "version", "responses"]);
    const dependency: DependencyDefinition = {
      package: r.required(fields.get("package"), `${field}.package`),
      responses: r.stringMap(fields.get("responses"), `${field}.responses`),
    };
    if (dependency.package !== "" && !PACKAGE_NAME.test(dependency.package)) {
      r.source.error(
        `${field}.package`,
        fields.get("package"),
        `"${dependency.package}" is not a package name`,
      );
    }
    const repo = r.text(fields.get("repo"), `${field}.repo`);
    if (repo && !DNS_LABEL.test(repo)) {
      r.source.error(`${field}.repo`, fields.get("repo"), `"${repo}" is not a repository name`);
    }
    if (repo) dependency.repo = repo;
    const version = r.text(fields.get("version"), `${field}.version`);
    if (version) dependency.version = version;
    dependencies.set(key, dependency);
  }
  return dependencies;
}
