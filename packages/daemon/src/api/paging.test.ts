import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { pageOf } from "./paging.js";
import { hostOf } from "./server.js";

const items = [
  { name: "gitea", size: 3 },
  { name: "immich", size: 1 },
  { name: "redis", size: 2 },
];
const sortable = {
  defaultSort: "name",
  fields: {
    name: (i: (typeof items)[number]) => i.name,
    size: (i: (typeof items)[number]) => i.size,
  },
  text: (i: (typeof items)[number]) => i.name,
};

describe("pageOf", () => {
  it("searches, sorts both ways and pages", () => {
    assert.deepEqual(
      pageOf(items, {}, sortable).items.map((i) => i.name),
      ["gitea", "immich", "redis"],
    );
    assert.deepEqual(
      pageOf(items, { sort: "-size" }, sortable).items.map((i) => i.name),
      ["gitea", "redis", "immich"],
    );
    const page = pageOf(items, { offset: 1, limit: 1 }, sortable);
    assert.deepEqual(
      [page.items.map((i) => i.name), page.total, page.offset, page.limit],
      [["immich"], 3, 1, 1],
    );
    assert.equal(pageOf(items, { q: "IMM" }, sortable).total, 1);
  });
  it("refuses an unknown sort field, also one the prototype has", () => {
    for (const sort of ["colour", "valueOf", "-constructor", "toString", "hasOwnProperty"]) {
      assert.throws(
        () => pageOf(items, { sort }, sortable),
        (e) => e instanceof TownError && e.code === "invalid_argument",
        sort,
      );
    }
  });
});

describe("hostOf", () => {
  it("takes the host part of a Host header", () => {
    assert.equal(hostOf("Town.Home:5309"), "town.home");
    assert.equal(hostOf("[::1]:5309"), "[::1]");
    assert.equal(hostOf("localhost"), "localhost");
  });
});
