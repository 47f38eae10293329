import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { AccountSchema, type Account } from "@townos/api";
import { checkResponses } from "./response-check.js";

const account: Account = {
  username: "ada",
  email: null,
  role: "admin",
  disabled: false,
  createdAt: 1,
};

describe("checkResponses", () => {
  let app: FastifyInstance;

  before(async () => {
    app = Fastify();
    checkResponses(app);
    const schema = { response: { 200: AccountSchema } };
    app.get("/declared", { schema }, async () => account);
    // What Fastify's serializer would silently drop: the daemon's internal id.
    app.get("/undeclared", { schema }, async () => ({ ...account, id: 7 }));
    app.get("/unchecked", async () => ({ ...account, id: 7 }));
    await app.ready();
  });
  after(() => app.close());

  it("lets an answer through when its schema declares every field", async () => {
    const response = await app.inject({ method: "GET", url: "/declared" });
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.json(), account);
  });

  it("fails an answer with a field its schema lacks, naming the field", async () => {
    const response = await app.inject({ method: "GET", url: "/undeclared" });
    assert.equal(response.statusCode, 500);
    assert.match(
      response.body,
      /GET \/undeclared answered 200 with fields its response schema lacks: id/,
    );
  });

  it("leaves routes without a response schema alone", async () => {
    const response = await app.inject({ method: "GET", url: "/unchecked" });
    assert.equal(response.statusCode, 200);
    assert.equal(response.json<{ id: number }>().id, 7);
  });
});
