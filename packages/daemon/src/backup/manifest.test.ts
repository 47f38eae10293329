import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isTownError } from "@townos/format";
import type { RestorePointRecord } from "../store/restore-points.js";
import { buildManifest, withoutCredentials } from "./manifest.js";

const point: RestorePointRecord = {
  id: "20261203T101500Z-schedule",
  subject: "main/wiki",
  app: {
    repo: "main",
    name: "wiki",
    version: "1.2",
    definitionHash: "abc",
    answers: { title: "Our wiki" },
    plan: null,
  },
  reason: "schedule",
  quiesce: "none",
  volumes: ["pkg.main.wiki.data"],
  createdAt: 1_764_756_900_000,
};

describe("backup manifests", () => {
  it("say what the app was, where its repository is (without credentials) and each volume's quota and owner", async () => {
    const manifest = await buildManifest(point, {
      box: "0a1b2c",
      storage: {
        attributes: (name) =>
          Promise.resolve(
            name === "pkg.main.wiki.data"
              ? { quota: 8 * 1024 * 1024, owner: { uid: 1000, gid: 1000 } }
              : undefined,
          ),
      },
      repositoryUrl: (repo) =>
        repo === "main" ? "https://ann:hunter22@git.example/pkgs.git?token=t#x" : undefined,
    });
    assert.deepEqual(manifest, {
      format: 1,
      id: point.id,
      box: "0a1b2c",
      subject: "main/wiki",
      app: { ...point.app, repoUrl: "https://git.example/pkgs.git" },
      volumes: [
        { name: "pkg.main.wiki.data", quota: 8 * 1024 * 1024, owner: { uid: 1000, gid: 1000 } },
      ],
      createdAt: point.createdAt,
    });
  });

  it("carry a whole box's desired state, its repositories without credentials", async () => {
    const app = point.app;
    assert.ok(app);
    const box: RestorePointRecord = {
      ...point,
      subject: "box",
      app: null,
      volumes: [],
      box: {
        apps: [{ ...app, running: true, exposures: {} }],
        repositories: [
          { name: "main", url: "https://ann:hunter22@git.example/pkgs.git", credentials: true },
        ],
        settings: { "dns.tld": "lan" },
      },
    };
    const manifest = await buildManifest(box, {
      box: "0a1b2c",
      storage: { attributes: () => Promise.resolve(undefined) },
      repositoryUrl: () => undefined,
    });
    assert.deepEqual(manifest.desired, {
      apps: box.box?.apps,
      repositories: [{ name: "main", url: "https://git.example/pkgs.git", credentials: true }],
      settings: { "dns.tld": "lan" },
    });
    assert.equal(manifest.app, null);
    assert.doesNotMatch(JSON.stringify(manifest), /hunter22/);
  });

  it("refuses a restore point whose volume is gone", async () => {
    await assert.rejects(
      buildManifest(point, {
        box: "0a1b2c",
        storage: { attributes: () => Promise.resolve(undefined) },
        repositoryUrl: () => undefined,
      }),
      (error) => isTownError(error) && error.code === "not_found",
    );
  });

  it("leaves credentials out of repository locations that are not URLs", () => {
    assert.equal(withoutCredentials("git@example.org:pkgs.git"), "example.org:pkgs.git");
    assert.equal(withoutCredentials("/srv/git/pkgs.git"), "/srv/git/pkgs.git");
  });
});
