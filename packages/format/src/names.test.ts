import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { containerName, dependencyInstanceName, nameScope, packageDnsName } from "./names.js";
import { DEPENDENCY_KEY, DNS_LABEL, PACKAGE_NAME } from "./rules.js";

/** Names whose parts, joined by one `-`, meet: the inputs that collided before. */
const REPOS = ["a", "a-b", "b", "default", "r".repeat(32)];
const PACKAGES = ["b", "b-c", "c", "app", "app-db", "app-db-x", "db", "x".repeat(63)];
const KEYS = ["db", "c", "db-x", "x", "b-c", "k".repeat(40)];

/** Every install node: (scope, top package, key path) up to two levels of dependencies. */
function nodes(): { scope: string; path: string[]; instance: string }[] {
  const out: { scope: string; path: string[]; instance: string }[] = [];
  for (const scope of REPOS) {
    for (const name of PACKAGES) {
      out.push({ scope, path: [name], instance: name });
      for (const key of KEYS) {
        const child = dependencyInstanceName(name, key);
        out.push({ scope, path: [name, key], instance: child });
        for (const grandKey of KEYS.slice(0, 3)) {
          out.push({
            scope,
            path: [name, key, grandKey],
            instance: dependencyInstanceName(child, grandKey),
          });
        }
      }
    }
  }
  return out;
}

function assertInjective(name: (node: { scope: string; instance: string }) => string): void {
  const seen = new Map<string, string>();
  for (const node of nodes()) {
    const id = `${node.scope}/${node.path.join("/")}`;
    const made = name(node);
    const before = seen.get(made);
    assert.ok(before === undefined, `${id} and ${before ?? ""} both get ${made}`);
    seen.set(made, id);
  }
}

describe("names", () => {
  it("the inputs are valid names, the ones that held -- or ended in - are not", () => {
    for (const repo of REPOS) assert.ok(PACKAGE_NAME.test(repo), repo);
    for (const name of PACKAGES) assert.ok(PACKAGE_NAME.test(name), name);
    for (const key of KEYS) assert.ok(DEPENDENCY_KEY.test(key), key);
    for (const bad of ["a--b", "-a", "a-", "A"]) assert.ok(!PACKAGE_NAME.test(bad), bad);
    for (const bad of ["db--x", "db-", "1db", "my_db"]) assert.ok(!DEPENDENCY_KEY.test(bad), bad);
  });

  it("dependency instances are the parent and key joined by --", () => {
    assert.equal(dependencyInstanceName("app", "db"), "app--db");
    assert.equal(dependencyInstanceName("app--db", "cache"), "app--db--cache");
  });

  it("instance names are injective within a scope: app-db is not app's db", () => {
    assertInjective((node) => `${node.scope} ${node.instance}`);
    assert.notEqual(dependencyInstanceName("app", "db"), "app-db");
    assert.notEqual(dependencyInstanceName("app", "db-x"), dependencyInstanceName("app-db", "x"));
  });

  it("container names are injective, one DNS label, and cut names never equal whole ones", () => {
    assertInjective((node) => containerName(node.scope, node.instance));
    // The collision of the old `town-<repo>-<instance>`: a-b/c and a/b-c.
    assert.notEqual(containerName("a-b", "c"), containerName("a", "b-c"));
    assert.equal(containerName("default", "app--db"), "town-default--app--db");
    for (const node of nodes()) {
      const name = containerName(node.scope, node.instance);
      assert.ok(DNS_LABEL.test(name), name);
      const whole = `town-${node.scope}--${node.instance}`;
      assert.equal(name === whole, !name.includes("---"), name);
    }
  });

  it("DNS names are injective", () => {
    assertInjective((node) => packageDnsName(node.instance, node.scope, "home"));
  });

  it("a node's scope is the installed app's repository; old plans used their own", () => {
    assert.equal(nameScope({ repo: "lib", scope: "default" }), "default");
    assert.equal(nameScope({ repo: "lib" }), "lib");
  });
});
