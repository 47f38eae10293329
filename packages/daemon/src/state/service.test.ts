/**
 * The state service over a real database and a fake box and git: a commit
 * applied is recorded once with its changes; a broken one is refused whole,
 * recorded once, and the box stays on the commit before; a failing step is
 * recorded with what was done before it and the next sync converges; the
 * webhook's token and the setting's rules.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import type { StateFile } from "@townos/api";
import { expectTownError } from "../../../format/test/support.js";
import { Manager } from "../reconcile/manager.js";
import { AuditLog } from "../store/audit.js";
import { openDatabase } from "../store/database.js";
import { Installs } from "../store/installs.js";
import { Repositories } from "../store/repositories.js";
import { Settings } from "../store/settings.js";
import { StateRecords } from "../store/state.js";
import type { BoxServices } from "./box.js";
import type { FetchedState } from "./fetch.js";
import { StateService } from "./service.js";

const URL_OF_STATE = "https://git.example/home/state.git";

describe("StateService", () => {
  let manager: Manager;
  let service: StateService;
  let commits: Map<string, StateFile[]>;
  let head: string;
  let volumes: { name: string; quota: number | null }[];
  let failCreate: string | undefined;
  let audit: AuditLog;

  beforeEach(() => {
    const db = openDatabase(":memory:");
    let now = Date.UTC(2026, 11, 4);
    const clock = () => (now += 1000);
    const records = new StateRecords(db, clock);
    manager = new Manager();
    commits = new Map();
    volumes = [];
    failCreate = undefined;
    audit = new AuditLog(db, clock);
    const box: BoxServices = {
      repositories: new Repositories(db, clock),
      catalog: {
        refresh: () => Promise.reject(new Error("not used")),
        forget: () => Promise.resolve(),
      },
      settings: new Settings(db),
      installs: new Installs(db, clock),
      apps: {
        list: () => Promise.resolve([]),
      } as unknown as BoxServices["apps"],
      volumes: {
        list: () =>
          Promise.resolve(
            volumes.map((volume) => ({ ...volume, name: `user.${volume.name}`, kind: "user" })),
          ),
        create: (name: string, quota?: number | string | null) => {
          if (name === failCreate) return Promise.reject(new Error(`disk full making ${name}`));
          volumes.push({ name, quota: typeof quota === "number" ? quota : null });
          return Promise.resolve();
        },
        setQuota: () => Promise.reject(new Error("not used")),
      } as unknown as BoxServices["volumes"],
      pages: { list: () => [] } as unknown as BoxServices["pages"],
      records,
    };
    service = new StateService({
      records,
      box,
      fetch: (): Promise<FetchedState> =>
        Promise.resolve({
          commit: head,
          author: "Ann <ann@example.org>",
          message: `commit ${head}`,
          files: commits.get(head) ?? [],
          problems: [],
        }),
      preview: () => Promise.reject(new Error("not used")),
      latest: () => undefined,
      secretQuestions: () => [],
      identity: () => Promise.reject(new Error("no answer here is encrypted")),
      manager,
      audit,
      clock,
      log: () => undefined,
    });
  });

  afterEach(async () => {
    await service.stop();
  });

  function commit(id: string, files: Record<string, string>): void {
    commits.set(
      id,
      Object.entries(files).map(([path, text]) => ({ path, text })),
    );
    head = id;
  }

  it("applies a commit, records it once with its changes, and is on it", async () => {
    commit("a1", { "volumes/photos.yaml": "quota: 2048\n" });
    const status = await service.set({ url: URL_OF_STATE, interval: "1h" });
    assert.equal(status.error, null);
    assert.equal(status.commit, "a1");
    assert.deepEqual(volumes, [{ name: "photos", quota: 2048 }]);
    assert.equal(status.history.length, 1);
    assert.equal(status.history[0]?.author, "Ann <ann@example.org>");
    assert.equal(status.history[0].changes.length, 1);
    assert.deepEqual(status.managed, [{ kind: "volume", name: "photos" }]);
    const again = await service.sync();
    assert.equal(again.history.length, 1, "the same commit again is not recorded again");
    const entries = audit.search({ offset: 0, limit: 10, action: "state.commit", order: "desc" });
    assert.equal(entries.total, 1);
    assert.equal(entries.items[0]?.target, "a1");
  });

  it("refuses a broken commit whole, once, and stays on the commit before", async () => {
    commit("a1", { "volumes/photos.yaml": "quota: 2048\n" });
    await service.set({ url: URL_OF_STATE, interval: "1h" });
    commit("b2", {
      "volumes/music.yaml": "quota: 4096\n",
      "volumes/films.yaml": "quota: [not, a, size]\n",
    });
    const status = await service.sync();
    assert.match(
      status.error ?? "",
      /commit b2 is refused, the box stays on a1: volumes\/films\.yaml/,
    );
    assert.equal(status.commit, "a1");
    assert.deepEqual(
      volumes.map((volume) => volume.name),
      ["photos"],
      "nothing of the broken commit was made",
    );
    await service.sync();
    const history = service.status().history;
    assert.deepEqual(
      history.map((entry) => [entry.commit, entry.result]),
      [
        ["b2", "refused"],
        ["a1", "applied"],
      ],
    );
  });

  it("records a failed step with what was done before it, and converges on the next sync", async () => {
    commit("c3", { "volumes/a.yaml": "quota: 1024\n", "volumes/b.yaml": "quota: 1024\n" });
    failCreate = "b";
    const failed = await service.set({ url: URL_OF_STATE, interval: "1h" });
    assert.match(failed.error ?? "", /disk full making b/);
    assert.equal(failed.history[0]?.result, "failed");
    assert.equal(failed.history[0].changes.length, 1);
    failCreate = undefined;
    const converged = await service.sync();
    assert.equal(converged.error, null);
    assert.deepEqual(
      volumes.map((volume) => volume.name),
      ["a", "b"],
    );
    assert.equal(converged.history[0]?.result, "applied");
    assert.equal(converged.commit, "c3");
  });

  it("syncs on the webhook's token only", async () => {
    commit("a1", {});
    await expectTownError(
      Promise.resolve().then(() => {
        service.hook("x");
      }),
      "not_found",
      /no such hook/,
    );
    await service.set({ url: URL_OF_STATE, interval: "1h" });
    const token = service.hookToken();
    assert.ok(token.length >= 32);
    await expectTownError(
      Promise.resolve().then(() => {
        service.hook(`${token}x`);
      }),
      "not_found",
      /no such hook/,
    );
    commit("d4", { "volumes/new.yaml": "{}\n" });
    service.hook(token);
    await manager.idle("state");
    assert.equal(service.status().commit, "d4");
  });

  it("refuses an interval out of range, a password without a username and a URL that is not http", async () => {
    await expectTownError(
      service.set({ url: URL_OF_STATE, interval: "5s" }),
      "invalid_argument",
      /interval/,
    );
    await expectTownError(
      service.set({ url: URL_OF_STATE, password: "secret" }),
      "invalid_argument",
      /needs a username/,
    );
    await expectTownError(service.set({ url: "file:///etc" }), "invalid_argument", /http/);
    assert.equal(service.status().configured, false);
  });
});
