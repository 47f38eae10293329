import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { TownError, type CompiledPackage } from "@townos/format";
import { compileExample } from "../../../test/runtime/examples.js";
import { packageWorkload, type PackageWorkloadInput } from "../package-workload.js";
import { LABEL_SPEC_HASH } from "../workload.js";
import { containerSpec as podmanSpec, specHash, type SpecGenerator } from "./container-spec.js";

type ContainerSpecInput = PackageWorkloadInput;

/** The whole compile: a plan's container as a workload, the workload as Podman's spec. */
function containerSpec(input: ContainerSpecInput): SpecGenerator {
  return podmanSpec(packageWorkload(input));
}

const testdata = join(import.meta.dirname, "testdata");
/** `TOWN_UPDATE_GOLDENS=1` rewrites the golden files instead of comparing with them. */
const updateGoldens = process.env["TOWN_UPDATE_GOLDENS"] === "1";

/** What the installer would pass: one network per app, volumes below /var/lib/town. */
function inputFor(app: CompiledPackage, plan: CompiledPackage, alias?: string): ContainerSpecInput {
  return {
    plan,
    network: app.hostname,
    ...(alias === undefined ? {} : { alias }),
    volumePaths: Object.fromEntries(
      plan.volumes.map((v) => [
        v.name,
        `/var/lib/town/volumes/${plan.repo}/${plan.instance}/${v.name}`,
      ]),
    ),
    hostAddress: { external: "0.0.0.0", internal: "127.0.0.1" },
  };
}

/** The app's spec and one per dependency (with the dependency key as alias). */
function specsOf(app: CompiledPackage): SpecGenerator[] {
  return [
    containerSpec(inputFor(app, app)),
    ...app.dependencies.map((dep) => containerSpec(inputFor(app, dep, dep.key))),
  ];
}

function specError(input: ContainerSpecInput): TownError {
  try {
    containerSpec(input);
  } catch (error) {
    assert.ok(error instanceof TownError, String(error));
    return error;
  }
  assert.fail("expected containerSpec to fail");
}

describe("containerSpec: goldens of the example packages", () => {
  const examples: [string, string, Record<string, string>][] = [
    ["hello", "1.0", {}],
    ["hello", "1.1", { show_contact: "true", contact: "family@example.org" }],
    ["keyvalue", "1.0", {}],
    // feedport has no default: a person types it in.
    ["guestbook", "1.0", { feedport: "9091" }],
  ];
  for (const [name, version, answers] of examples) {
    it(`${name}@${version}`, async () => {
      const specs = specsOf(compileExample(name, version, answers));
      const file = join(testdata, `${name}-${version}.json`);
      if (updateGoldens) await writeFile(file, `${JSON.stringify(specs, null, 2)}\n`);
      const golden: unknown = JSON.parse(await readFile(file, "utf8"));
      assert.deepEqual(specs, golden, `${file} differs (TOWN_UPDATE_GOLDENS=1 rewrites it)`);
      for (const spec of specs) assert.equal(spec.labels[LABEL_SPEC_HASH], specHash(spec));
    });
  }
});

describe("containerSpec", () => {
  const guestbook = compileExample("guestbook", "1.0", { feedport: "9091" });
  const hello = compileExample("hello", "1.0");

  it("names, labels and the network come from the plan and the caller", () => {
    const store = guestbook.dependencies[0];
    assert.ok(store);
    const spec = containerSpec({ ...inputFor(guestbook, store, "store"), labels: { "x.y": "z" } });
    assert.equal(spec.name, "town-default--guestbook--store");
    assert.equal(spec.hostname, spec.name);
    assert.deepEqual(spec.networks, { "town-default--guestbook": { aliases: ["store"] } });
    assert.deepEqual(spec.netns, { nsmode: "bridge" });
    assert.equal(spec.restart_policy, "unless-stopped");
    assert.equal(spec.privileged, false);
    assert.deepEqual(Object.keys(spec.labels).sort(), [
      "town.instance",
      "town.name",
      "town.repo",
      "town.spec-hash",
      "x.y",
    ]);
    assert.equal(spec.labels["town.instance"], "guestbook--store");
    assert.equal(spec.labels["town.name"], "keyvalue");
  });

  it("mounts parents before the volumes nested in them, whatever the names", () => {
    const plan: CompiledPackage = {
      ...guestbook,
      volumes: [
        { ...volume("a-inner"), mountpoint: "/srv/www/uploads" },
        { ...volume("b-sibling"), mountpoint: "/srv/www-old" },
        { ...volume("c-outer"), mountpoint: "/srv/www" },
        { ...volume("d-deep"), mountpoint: "/srv/www/uploads/big" },
      ],
    };
    const spec = containerSpec(inputFor(guestbook, plan));
    assert.deepEqual(
      spec.mounts.map((m) => m.destination),
      ["/srv/www", "/srv/www/uploads", "/srv/www/uploads/big", "/srv/www-old"],
    );
    assert.deepEqual(spec.mounts[0], {
      destination: "/srv/www",
      source: "/var/lib/town/volumes/default/guestbook/c-outer",
      type: "bind",
      options: ["rbind"],
    });
  });

  it("publishes host ports on the address the caller picks, never the ingress port", () => {
    const plan: CompiledPackage = {
      ...hello,
      ports: [
        { name: "http", host: null, container: 8080, exposure: "internal" },
        { name: null, host: 2222, container: 22, exposure: "internal" },
        { name: null, host: 443, container: 8443, exposure: "external" },
      ],
    };
    const byMap = containerSpec({
      ...inputFor(hello, plan),
      hostAddress: { external: "0.0.0.0", internal: "127.0.0.1" },
    });
    // Every address is "" to libpod (see portMappings).
    assert.deepEqual(byMap.portmappings, [
      { host_ip: "", host_port: 443, container_port: 8443, protocol: "tcp" },
      { host_ip: "127.0.0.1", host_port: 2222, container_port: 22, protocol: "tcp" },
    ]);
    const byFunction = containerSpec({
      ...inputFor(hello, plan),
      hostAddress: (port) => (port.host === 2222 ? "192.0.2.10" : "::1"),
    });
    assert.deepEqual(
      byFunction.portmappings.map((p) => p.host_ip),
      ["::1", "192.0.2.10"],
    );
  });

  it("keeps the image's entrypoint and command when the plan has none", () => {
    const spec = containerSpec(inputFor(hello, { ...hello, entrypoint: null, command: null }));
    assert.equal("entrypoint" in spec, false);
    assert.equal("command" in spec, false);
    const withCommand = containerSpec(inputFor(hello, hello));
    assert.deepEqual(withCommand.entrypoint, ["/bin/busybox"]);
    assert.deepEqual(withCommand.command, ["httpd", "-f", "-p", "8080", "-h", "/www"]);
  });

  it("sets the working directory only when given, and then it counts in the hash", () => {
    const workload = packageWorkload(inputFor(hello, hello));
    const plain = podmanSpec(workload);
    assert.equal("work_dir" in plain, false);
    const inSite = podmanSpec({ ...workload, workingDir: "/site" });
    assert.equal(inSite.work_dir, "/site");
    assert.notEqual(inSite.labels[LABEL_SPEC_HASH], plain.labels[LABEL_SPEC_HASH]);
  });

  it("sets ulimits only when given, sorted, by libpod's short names", () => {
    assert.equal("r_limits" in containerSpec(inputFor(hello, hello)), false);
    const spec = containerSpec({
      ...inputFor(hello, hello),
      ulimits: [
        { name: "nproc", soft: 4096, hard: 4096 },
        { name: "nofile", soft: 1024, hard: 2048 },
      ],
    });
    assert.deepEqual(spec.r_limits, [
      { type: "nofile", soft: 1024, hard: 2048 },
      { type: "nproc", soft: 4096, hard: 4096 },
    ]);
  });

  it("the spec hash is stable, ignores key order and follows every change", () => {
    const spec = containerSpec(inputFor(hello, hello));
    const hash = spec.labels[LABEL_SPEC_HASH];
    assert.match(hash ?? "", /^[0-9a-f]{64}$/);
    assert.equal(containerSpec(inputFor(hello, hello)).labels[LABEL_SPEC_HASH], hash);
    const reordered = reverseKeys(spec) as SpecGenerator;
    assert.notEqual(JSON.stringify(reordered), JSON.stringify(spec));
    assert.equal(specHash(reordered), hash);
    const changedEnv = containerSpec(
      inputFor(hello, { ...hello, environment: { ...hello.environment, EXTRA: "1" } }),
    );
    assert.notEqual(changedEnv.labels[LABEL_SPEC_HASH], hash);
    const changedPath = containerSpec({
      ...inputFor(hello, hello),
      volumePaths: { www: "/elsewhere/www" },
    });
    assert.notEqual(changedPath.labels[LABEL_SPEC_HASH], hash);
  });

  it("rejects what the caller should have checked", () => {
    const cases: [Partial<ContainerSpecInput>, RegExp][] = [
      [{ plan: { ...hello, runtime: "vm", image: null } }, /the plan has no image/],
      [{ volumePaths: {} }, /volume www has no host path/],
      [{ volumePaths: { www: "relative/www" } }, /not a normalized absolute path/],
      [{ volumePaths: { www: "/a/../etc" } }, /not a normalized absolute path/],
      [{ hostAddress: { external: "0.0.0.0", internal: "localhost" } }, /not an IP address/],
      [{ alias: "Not_A_Label" }, /not a DNS label/],
      [{ network: "../x" }, /not a network name/],
      [{ labels: { "town.repo": "other" } }, /set by Town OS/],
      [{ labels: { "x.y": "bad\nvalue" } }, /bad name or value/],
      [{ ulimits: [{ name: "RLIMIT_NOFILE", soft: 1, hard: 1 }] }, /not an rlimit name/],
      [{ ulimits: [{ name: "nofile", soft: 2, hard: 1 }] }, /soft ≤ hard/],
    ];
    const planWithPort: CompiledPackage = {
      ...hello,
      ports: [{ name: null, host: 8080, container: 8080, exposure: "internal" }],
    };
    for (const [change, pattern] of cases) {
      const error = specError({ ...inputFor(hello, planWithPort), ...change });
      assert.equal(error.code, "invalid_argument");
      assert.match(error.message, pattern);
      assert.match(error.message, /^container spec for town-default--hello: /);
    }
  });
});

/** The same value with the keys of every object in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([key, member]) => [key, reverseKeys(member)]),
  );
}

function volume(name: string): CompiledPackage["volumes"][number] {
  return { name, mountpoint: "/", quota: null, uid: null, gid: null, archive: null, git: null };
}
