import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BYTE_FACTORS,
  BYTE_UNITS,
  DURATION_FACTORS,
  DURATION_UNITS,
  splitUnit,
  validate,
} from "../src/answers.js";
import { formatBytes, t } from "../src/messages.js";
import { matchPath, queryParam } from "../src/router.js";

const question = (
  name: string,
  type: string,
  extra: { default?: string; optional?: boolean } = {},
) => ({
  name,
  query: name,
  type,
  default: extra.default ?? null,
  optional: extra.optional ?? false,
  showIf: null,
});

describe("install form answers", () => {
  it("splits sizes and durations into a number and a unit, bare numbers into the largest exact unit", () => {
    assert.deepEqual(splitUnit("10gb", BYTE_UNITS, BYTE_FACTORS), ["10", "gb"]);
    assert.deepEqual(splitUnit("67108864", BYTE_UNITS, BYTE_FACTORS), ["64", "mb"]);
    assert.deepEqual(splitUnit("1800", DURATION_UNITS, DURATION_FACTORS), ["30", "m"]);
    assert.deepEqual(splitUnit("90", DURATION_UNITS, DURATION_FACTORS), ["90", "s"]);
    assert.deepEqual(splitUnit("", BYTE_UNITS, BYTE_FACTORS), ["", "gb"]);
  });

  it("marks every bad answer at once; blanks the daemon fills in are fine", () => {
    const questions = [
      question("port", "port"),
      question("name", ""),
      question("secret", "secret"),
      question("note", "", { optional: true }),
      question("size", "bytes"),
      question("fallback", "", { default: "x" }),
    ];
    assert.deepEqual(validate(questions, { port: "99999", name: "", size: "ten" }), {
      port: t("install.notPort"),
      name: t("install.required"),
      size: t("install.notNumber"),
    });
    assert.deepEqual(validate(questions, { port: "8080", name: "n", size: "10gb" }), {});
    assert.deepEqual(validate(questions, { port: "auto", name: "n", size: "1gb" }), {});
  });
});

describe("router and messages", () => {
  it("matches paths with decoded parameters, and nothing else", () => {
    assert.deepEqual(matchPath("/apps/:repo/:name", "/apps/default/my%20app?tab=logs"), {
      repo: "default",
      name: "my app",
    });
    assert.equal(matchPath("/apps/:repo/:name", "/apps/default"), null);
    assert.equal(matchPath("/apps/:repo/:name", "/apps//x"), null);
    assert.equal(matchPath("/apps/:repo/:name", "/apps/%E0%A4%A/x"), null);
    assert.equal(queryParam("/store?q=web", "q"), "web");
    assert.equal(queryParam("/store", "q"), null);
  });

  it("fills placeholders and formats sizes", () => {
    assert.equal(t("app.version", { version: "1.2" }), "Version 1.2");
    assert.equal(t("app.version"), "Version {version}");
    assert.equal(formatBytes(512), "512 B");
    assert.equal(formatBytes(1536), "1.5 KB");
    assert.equal(formatBytes(10 * 1024 ** 3), "10 GB");
  });
});
