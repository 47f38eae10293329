/**
 * Objects the state repository declares cannot be changed by hand: every
 * route that changes one answers 409 before doing anything, over real HTTP
 * with the typed client; the same routes on undeclared objects go through.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ApiError, TownClient } from "@townos/client";
import type { FastifyInstance } from "fastify";
import type { Services } from "../services.js";
import { openDatabase } from "../store/database.js";
import { Settings } from "../store/settings.js";
import { StateRecords } from "../store/state.js";
import type { BootState } from "./context.js";
import { ADMIN_TOKEN, listenApi, testSessions } from "../../test/api-harness.js";
import { rejection } from "../../test/async.js";

describe("objects managed from git", () => {
  const db = openDatabase(":memory:");
  const settings = new Settings(db);
  const records = new StateRecords(db, () => Date.now());
  const boot: BootState = { state: "ready", step: "ready", error: null, services: undefined };
  /** What the services were asked to do: nothing, for a refused request. */
  const done: string[] = [];
  const audited: { action: string; target: string; outcome: string }[] = [];
  let app: FastifyInstance;
  let client: TownClient;

  before(async () => {
    records.setManaged(
      [
        { kind: "app", name: "default/hello" },
        { kind: "repository", name: "extra" },
        { kind: "volume", name: "photos" },
        { kind: "page", name: "blog" },
        { kind: "setting", name: "dns.tld" },
      ],
      new Set(),
    );
    // Only what these routes use, each change recorded; the state records are the daemon's own kind.
    boot.services = {
      state: records,
      settings,
      sessions: testSessions,
      audit: { record: (entry: (typeof audited)[number]) => audited.push(entry) },
      apps: {
        uninstall: (repo: string, name: string) => {
          done.push(`uninstall ${repo}/${name}`);
          return Promise.resolve(true);
        },
      },
      repositories: { remove: (name: string) => done.push(`remove repository ${name}`) },
      catalog: { forget: () => Promise.resolve() },
      volumes: {
        remove: (name: string) => {
          done.push(`remove volume ${name}`);
          return Promise.resolve();
        },
      },
      pages: {
        remove: (name: string) => {
          done.push(`remove page ${name}`);
          return Promise.resolve();
        },
      },
    } as unknown as Services;
    let baseUrl: string;
    ({ app, baseUrl } = await listenApi(boot));
    client = new TownClient({ baseUrl, token: ADMIN_TOKEN });
  });

  after(async () => {
    await app.close();
    db.close();
  });

  const refusals: [string, () => Promise<unknown>][] = [
    [
      "app default/hello",
      () => client.changeApp({ action: "upgrade", repo: "default", name: "hello" }, () => {}),
    ],
    [
      "app default/hello",
      () =>
        client.changeApp(
          { action: "expose", repo: "default", name: "hello", port: 8080, exposure: "lan" },
          () => {},
        ),
    ],
    ["app default/hello", () => client.uninstallApp("default", "hello")],
    ["repository extra", () => client.removeRepository("extra")],
    ["repository extra", () => client.moveRepository("extra", 0)],
    ["volume photos", () => client.removeVolume("user.photos")],
    ["volume photos", () => client.setVolumeQuota("user.photos", "1gb")],
    ["page blog", () => client.deletePage("blog")],
    ["page blog", () => client.addPageDomain("blog", "blog.example.com")],
    ["page blog", () => client.removePageDomain("blog", "blog.example.com")],
    ["setting dns.tld", () => client.setSetting("dns.tld", "lan")],
  ];

  it("refuses every change to a declared object with 409, naming it, before doing anything", async () => {
    for (const [object, change] of refusals) {
      const error = await rejection(change(), ApiError);
      assert.equal(error.problem.status, 409, object);
      assert.equal(error.problem.code, "conflict", object);
      assert.match(error.problem.detail, /declared in the state repository/);
      assert.ok(error.problem.detail.startsWith(`${object} `), error.problem.detail);
    }
    assert.deepEqual(done, []);
    assert.equal(settings.string("dns.tld"), "home");
    // Refusals are audited as such.
    assert.equal(audited.length, refusals.length);
    assert.ok(audited.every((entry) => entry.outcome === "conflict"));
  });

  it("lets undeclared objects of the same kinds be changed", async () => {
    await client.uninstallApp("default", "other");
    await client.removeRepository("another");
    await client.removeVolume("user.music");
    // A package volume's name is whole: never one of a person's declared names.
    await client.removeVolume("pkg.default.hello.photos");
    await client.deletePage("notes");
    assert.equal((await client.setSetting("apps.logs_for_users", true)).value, true);
    assert.deepEqual(done, [
      "uninstall default/other",
      "remove repository another",
      "remove volume user.music",
      "remove volume pkg.default.hello.photos",
      "remove page notes",
    ]);
  });
});
