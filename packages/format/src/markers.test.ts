import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { markerNames, substituteMarkers, unescapeMarkers } from "./markers.js";

const values = (entries: Record<string, string>) => new Map(Object.entries(entries));

describe("markers", () => {
  it("keeps @@ through a stage and unescapes at the end (gitea SSH note)", () => {
    const stage1 = substituteMarkers(
      "ssh://git@@@PACKAGE_DNS@:@sshport@",
      values({ PACKAGE_DNS: "gitea.default.home", sshport: "2222" }),
    );
    assert.equal(stage1, "ssh://git@@gitea.default.home:2222");
    assert.equal(unescapeMarkers(stage1), "ssh://git@gitea.default.home:2222");
  });

  it("runs the two-stage pipeline of the spec's database URL", () => {
    const written = "postgres://u:@dbpass@@@@dep_db_host@:@dep_db_port_sql@/db";
    const stage1 = substituteMarkers(written, values({ dbpass: "pw" }));
    assert.equal(stage1, "postgres://u:pw@@@dep_db_host@:@dep_db_port_sql@/db");
    const stage2 = substituteMarkers(stage1, values({ dep_db_host: "town-default-app-db", dep_db_port_sql: "5432" }));
    assert.equal(unescapeMarkers(stage2), "postgres://u:pw@town-default-app-db:5432/db");
  });

  it("leaves unknown markers and lone @ as written", () => {
    assert.equal(substituteMarkers("@nope@ a@b.c @", values({})), "@nope@ a@b.c @");
    assert.equal(substituteMarkers("mail me@home", values({ home: "x" })), "mail me@home");
  });

  it("never lets an inserted value be read as markup by a later stage", () => {
    const stage1 = substituteMarkers("@pw@", values({ pw: "a@@b@dep_x_host@" }));
    const stage2 = substituteMarkers(stage1, values({ dep_x_host: "SHOULD-NOT-APPEAR" }));
    assert.equal(unescapeMarkers(stage2), "a@@b@dep_x_host@");
  });

  it("substitutes adjacent markers", () => {
    assert.equal(substituteMarkers("@a@@b@", values({ a: "1", b: "2" })), "12");
    assert.equal(substituteMarkers("@a@-@b@", values({ a: "1", b: "2" })), "1-2");
  });

  it("lists marker names, skipping escapes", () => {
    assert.deepEqual(markerNames("@@x@ @a@ @@ @dep_db_port_sql@"), ["a", "dep_db_port_sql"]);
  });
});
