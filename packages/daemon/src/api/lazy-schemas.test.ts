import assert from "node:assert/strict";
import { describe, it } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { lazySchemaCompilers } from "./lazy-schemas.js";

/** A Fastify app with the daemon's Ajv options and the deferred compilers. */
function appWith(): { app: FastifyInstance; compileAll: () => void } {
  const schemas = lazySchemaCompilers();
  const app = Fastify({
    schemaController: {
      compilersFactory: {
        buildValidator: schemas.buildValidator,
        buildSerializer: schemas.buildSerializer,
      },
    },
    ajv: { customOptions: { coerceTypes: "array", allErrors: true } },
  });
  return { app, compileAll: schemas.compileAll };
}

describe("lazySchemaCompilers", () => {
  it("validates bodies and query strings as Fastify's own compilers do", async () => {
    const { app } = appWith();
    app.post(
      "/things",
      {
        schema: {
          body: {
            type: "object",
            required: ["name"],
            properties: { name: { type: "string", maxLength: 3 } },
          },
          querystring: {
            type: "object",
            properties: { tags: { type: "array", items: { type: "string" } } },
          },
        },
      },
      async (request) => ({ body: request.body, query: request.query }),
    );
    await app.ready();
    const good = await app.inject({
      method: "POST",
      url: "/things?tags=a",
      payload: { name: "abc" },
    });
    assert.equal(good.statusCode, 200);
    // coerceTypes "array": one value becomes a list of one.
    assert.deepEqual(good.json(), { body: { name: "abc" }, query: { tags: ["a"] } });
    const bad = await app.inject({ method: "POST", url: "/things", payload: { name: "abcd" } });
    assert.equal(bad.statusCode, 400);
    // The errors of the failed call, read from the compiled validator.
    assert.match(bad.json<{ message: string }>().message, /body\/name must NOT have more than 3/);
    const again = await app.inject({ method: "POST", url: "/things", payload: {} });
    assert.match(again.json<{ message: string }>().message, /must have required property 'name'/);
    await app.close();
  });

  it("coerces a root value in place (Ajv needs the compiled function's schemaEnv)", async () => {
    const { app } = appWith();
    app.post(
      "/list",
      { schema: { body: { type: "array", items: { type: "string" } } } },
      async (request) => request.body,
    );
    await app.ready();
    const response = await app.inject({
      method: "POST",
      url: "/list",
      payload: '"one"',
      headers: { "content-type": "application/json" },
    });
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.json(), ["one"]);
    await app.close();
  });

  it("serializes answers through the route's response schema", async () => {
    const { app } = appWith();
    app.get(
      "/thing",
      {
        schema: { response: { 200: { type: "object", properties: { id: { type: "integer" } } } } },
      },
      async () => ({ id: 7, secret: "dropped by the compiled serializer" }),
    );
    await app.ready();
    const response = await app.inject({ method: "GET", url: "/thing" });
    assert.equal(response.body, '{"id":7}');
    await app.close();
  });

  it("compiles nothing until asked: a broken schema fails at compileAll, not at start", async () => {
    const { app, compileAll } = appWith();
    app.post(
      "/broken",
      {
        schema: { body: { type: "object", properties: { a: { $ref: "#/definitions/missing" } } } },
      },
      async () => "",
    );
    await app.ready();
    assert.throws(compileAll, /can't resolve reference #\/definitions\/missing/);
    await app.close();
  });
});
