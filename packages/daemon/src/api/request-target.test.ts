import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalTarget } from "./request-target.js";

describe("canonicalTarget", () => {
  it("keeps ordinary targets as they are", () => {
    for (const target of [
      "/",
      "/api/v1/accounts",
      "/api/v1/apps/default/hello?q=a%20b&sort=-name",
      "/api/v1/volumes/pkg.default.hello.data",
      "/apps/",
      "/api/v1/catalog/x%C3%A9",
    ]) {
      assert.deepEqual(canonicalTarget(target), { ok: true, url: target });
    }
  });

  it("decodes percent-encoded unreserved characters, so the router and every check read one path", () => {
    assert.deepEqual(canonicalTarget("/%61pi/v1/%41ccounts"), {
      ok: true,
      url: "/api/v1/Accounts",
    });
    assert.deepEqual(canonicalTarget("/a%7e%2D%5F"), { ok: true, url: "/a~-_" });
    assert.deepEqual(canonicalTarget("/a%c3%a9?x=%61"), { ok: true, url: "/a%C3%A9?x=%61" });
  });

  it("refuses targets that parsers could read differently", () => {
    for (const target of [
      "http://x/api/v1/accounts",
      "HTTP://x/api/v1/accounts",
      "*",
      "api/v1/accounts",
      "//api/v1/accounts",
      "/api//v1/accounts",
      "/api/v1/../v1/accounts",
      "/api/./v1/accounts",
      "/x/..",
      "/api/v1/%2e%2e/v1/accounts",
      "/api/v1/%2E/accounts",
      "/api/v1/.%2e/accounts",
      "/api%2fv1/accounts",
      "/api%2Fv1/accounts",
      "/api%5cv1/accounts",
      "/api\\v1/accounts",
      "/api/v1/accounts%00",
      "/api/v1/accounts%0a",
      "/api/v1/accounts\u0001",
      "/api/v1/accounts%7f",
      "/api/v1/accounts%zz",
      "/api/v1/accounts%4",
      "/api/v1/accounts#x",
    ]) {
      const verdict = canonicalTarget(target);
      assert.equal(verdict.ok, false, target);
    }
  });
});
