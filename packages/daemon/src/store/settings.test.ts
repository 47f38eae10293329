import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { openDatabase, sql } from "./database.js";
import { Settings } from "./settings.js";

describe("settings stored under older rules", () => {
  it("falls back to the default for a value today's rules refuse, such as a public TLD", () => {
    const db = openDatabase(":memory:");
    const settings = new Settings(db);
    // What an earlier version let an administrator store.
    sql(db, "INSERT INTO settings (key, value) VALUES ('dns.tld', ?)").run(JSON.stringify("com"));
    assert.equal(settings.get("dns.tld"), "home");
    assert.equal(settings.view("dns.tld").value, "home");
    sql(db, "UPDATE settings SET value = ? WHERE key = 'dns.tld'").run(JSON.stringify("lan"));
    assert.equal(settings.get("dns.tld"), "lan");
    sql(db, "UPDATE settings SET value = 'not json' WHERE key = 'dns.tld'").run();
    assert.equal(settings.get("dns.tld"), "home");
  });

  it("refuses to store a public TLD, and takes the never-public ones", () => {
    const settings = new Settings(openDatabase(":memory:"));
    for (const tld of ["com", "org", "app", "box", "local", "localhost", "home.com", ""])
      assert.throws(() => settings.set("dns.tld", tld), /never a public top-level domain/, tld);
    for (const tld of ["home", "lan", "internal", "home.arpa", "corp", "private", "intranet"])
      assert.equal(settings.set("dns.tld", tld).value, tld);
    assert.equal(settings.get("upnp.forward_https"), false);
  });
});
