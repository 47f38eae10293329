import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { dependencyInstanceName, type CompiledPackage } from "@townos/format";
import {
  appNetworkName,
  legacyNetworkName,
  legacyVolumeName,
  nodeVolumeName,
  planNetworkName,
} from "./names.js";

const REPOS = ["a", "a-b", "b", "default"];
const NAMES = ["b", "b-c", "c", "app", "app-db", "db"];
const KEYS = ["db", "c", "db-x", "x"];

/** A plan node with just what names are made of. */
function node(repo: string, scope: string | undefined, instance: string): CompiledPackage {
  return { repo, instance, name: instance, ...(scope ? { scope } : {}) } as CompiledPackage;
}

describe("app object names", () => {
  it("networks are injective: a-b/c is not a/b-c", () => {
    const seen = new Map<string, string>();
    for (const repo of REPOS) {
      for (const name of NAMES) {
        const network = appNetworkName(repo, name);
        assert.equal(seen.get(network), undefined, `${repo}/${name} and ${seen.get(network)}`);
        seen.set(network, `${repo}/${name}`);
      }
    }
    assert.equal(legacyNetworkName("a-b", "c"), legacyNetworkName("a", "b-c"));
  });

  it("volumes are injective over apps, dependencies and the repository a dependency comes from", () => {
    const seen = new Map<string, string>();
    const add = (id: string, made: string): void => {
      assert.equal(seen.get(made), undefined, `${id} and ${seen.get(made) ?? ""} get ${made}`);
      seen.set(made, id);
    };
    for (const scope of REPOS) {
      for (const name of NAMES) {
        add(`${scope}/${name}`, nodeVolumeName(node(scope, scope, name), "data"));
        for (const key of KEYS) {
          // The dependency's package may come from any repository: its names stay in the app's.
          const instance = dependencyInstanceName(name, key);
          const made = REPOS.map((from) => nodeVolumeName(node(from, scope, instance), "data"));
          assert.equal(new Set(made).size, 1, made.join(", "));
          add(`${scope}/${name}/${key}`, made[0] ?? "");
        }
      }
    }
  });

  it("plans made before names were injective keep the names their objects have", () => {
    const old = node("lib", undefined, "app-db");
    assert.equal(nodeVolumeName(old, "data"), "pkg.lib.app-db.data");
    assert.equal(planNetworkName(node("default", undefined, "app")), "town-default-app");
    const current = node("lib", "default", "app--db");
    assert.equal(nodeVolumeName(current, "data"), "pkg.default.app--db.data");
    assert.equal(legacyVolumeName(current, "data"), "pkg.lib.app-db.data");
    assert.equal(planNetworkName(node("default", "default", "app")), "town-default--app");
  });
});
