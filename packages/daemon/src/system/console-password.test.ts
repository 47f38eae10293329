import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { checkConsolePassword, checkPasswordHash } from "./console-password.js";

const HASH = "$y$j9T$wZncyidsJgFpHvnK.R7GB/$EiYILX1hLasxQtqocw9R99OM0yMrtoaTG/2m6ArZzs2";

const refused = (password: string, message: RegExp) => {
  assert.throws(
    () => {
      checkConsolePassword(password);
    },
    (error) =>
      error instanceof TownError &&
      error.code === "invalid_argument" &&
      error.issues[0]?.field === "password" &&
      message.test(error.message) &&
      // The message says what is wrong, never what was typed.
      (password === "" || !error.message.includes(password)),
  );
};

describe("console passwords", () => {
  it("takes 8 to 256 characters, spaces, colons and letters of any script", () => {
    for (const password of ["12345678", "a:b:c d e", " héllo wörld ", "ü".repeat(256)]) {
      checkConsolePassword(password);
    }
  });

  it("refuses what is too short or too long", () => {
    refused("1234567", /at least 8 characters/);
    refused("", /at least 8 characters/);
    refused("x".repeat(257), /at most 256 characters/);
  });

  it("refuses control characters: a newline would be a second chpasswd line", () => {
    refused("password\nroot2:x", /control character \(U\+000A\)/);
    refused("password\r", /control character \(U\+000D\)/);
    refused("pass\tword", /control character \(U\+0009\)/);
    refused("pass\0word", /control character \(U\+0000\)/);
    refused("pass\x1b[2Jword", /control character \(U\+001B\)/);
    refused("pass\u0085word", /control character \(U\+0085\)/);
  });
});

describe("console password hashes", () => {
  it("takes a yescrypt hash as chpasswd writes it", () => {
    assert.equal(checkPasswordHash(HASH, "test"), HASH);
  });

  it("refuses anything else, which would end up in /etc/shadow", () => {
    for (const hash of [
      "",
      "*",
      "!",
      `${HASH}:0:0`,
      `${HASH}\nbob::0:0:99999:7:::`,
      `${HASH} `,
      HASH.replace("$y$", "$6$"),
      `${HASH}x`,
      HASH.slice(0, -1),
      `$y$j9T$${"a".repeat(200)}$${"b".repeat(43)}`,
    ]) {
      assert.throws(
        () => checkPasswordHash(hash, "the stored file"),
        (error) =>
          error instanceof TownError &&
          error.code === "io" &&
          /the stored file is not a yescrypt hash/.test(error.message),
        JSON.stringify(hash),
      );
    }
  });
});
