import assert from "node:assert/strict";
import { test } from "node:test";
import { Type } from "@sinclair/typebox";
import { AccountSchema } from "./accounts.js";
import { NetworkStatusSchema } from "./net.js";
import { PageSchema } from "./paging.js";
import { Dictionary, Nullable } from "./schema.js";
import { undeclaredFields } from "./undeclared.js";

const account = {
  username: "ada",
  email: null,
  role: "admin",
  disabled: false,
  createdAt: 1,
};

test("a value with only declared fields has none undeclared", () => {
  assert.deepEqual(undeclaredFields(AccountSchema, account), []);
  assert.deepEqual(
    undeclaredFields(PageSchema(AccountSchema), {
      items: [account],
      total: 1,
      offset: 0,
      limit: 50,
    }),
    [],
  );
});

test("fields the schema lacks are named by their path, also in arrays and nested objects", () => {
  assert.deepEqual(undeclaredFields(AccountSchema, { ...account, passwordHash: "x" }), [
    "passwordHash",
  ]);
  const page = PageSchema(AccountSchema);
  assert.deepEqual(
    undeclaredFields(page, {
      items: [account, { ...account, id: 7 }],
      total: 2,
      offset: 0,
      limit: 50,
      cursor: "c",
    }),
    ["items.1.id", "cursor"],
  );
  const nested = Type.Object({ owner: Type.Object({ uid: Type.Integer() }) });
  assert.deepEqual(undeclaredFields(nested, { owner: { uid: 1, gid: 2 } }), ["owner.gid"]);
});

test("undefined values are not on the wire and not reported", () => {
  assert.deepEqual(undeclaredFields(AccountSchema, { ...account, token: undefined }), []);
});

test("nullable objects are checked when present", () => {
  const schema = Type.Object({ disk: Nullable(Type.Object({ freeBytes: Type.Integer() })) });
  assert.deepEqual(undeclaredFields(schema, { disk: null }), []);
  assert.deepEqual(undeclaredFields(schema, { disk: { freeBytes: 1, path: "/" } }), ["disk.path"]);
});

test("open objects and dictionaries declare any key, and dictionaries check their values", () => {
  assert.deepEqual(undeclaredFields(Dictionary(true), { anything: { at: 1 } }), []);
  const answers = Dictionary(Type.Object({ value: Type.String() }));
  assert.deepEqual(undeclaredFields(answers, { a: { value: "x" } }), []);
  assert.deepEqual(undeclaredFields(answers, { a: { value: "x", secret: true } }), ["a.secret"]);
  const status = {
    state: "off",
    ingress: { state: "running", addedLater: 1 },
    dns: null,
    mdns: null,
    upnp: null,
    dashboardUrl: null,
    forwardHttps: false,
    apps: [],
    problems: [],
    updatedAt: null,
  };
  assert.deepEqual(undeclaredFields(NetworkStatusSchema, status), []);
  assert.deepEqual(undeclaredFields(NetworkStatusSchema, { ...status, extra: 1 }), ["extra"]);
});

test("a union accepts a value one of its branches declares fully", () => {
  const schema = Type.Union([
    Type.Object({ kind: Type.Literal("a"), a: Type.String() }),
    Type.Object({ kind: Type.Literal("b"), b: Type.String() }),
  ]);
  assert.deepEqual(undeclaredFields(schema, { kind: "b", b: "x" }), []);
  assert.deepEqual(undeclaredFields(schema, { kind: "a", a: "x", c: 1 }), ["c"]);
});
