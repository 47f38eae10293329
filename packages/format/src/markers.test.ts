import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  finishMarkers,
  markerNames,
  markText,
  renderMarkers,
  substituteMarkers,
} from "./markers.js";

const values = (entries: Record<string, string>) => new Map(Object.entries(entries));

/** Built-ins, then answers, then dependency values, then `@@` → `@`. */
function pipeline(
  text: string,
  builtins: Record<string, string>,
  answers: Record<string, string>,
  deps: Record<string, string> = {},
): string {
  let marked = markText(text);
  marked = substituteMarkers(marked, values(builtins));
  marked = substituteMarkers(marked, values(answers));
  marked = substituteMarkers(marked, values(deps));
  return finishMarkers(marked);
}

describe("markers", () => {
  it("gitea's SSH note", () => {
    assert.equal(
      pipeline(
        "ssh://git@@@PACKAGE_DNS@:@sshport@",
        { PACKAGE_DNS: "gitea.default.home" },
        { sshport: "2222" },
      ),
      "ssh://git@gitea.default.home:2222",
    );
  });

  it("the spec's two-stage database URL", () => {
    assert.equal(
      pipeline(
        "postgres://u:@dbpass@@@@dep_db_host@:@dep_db_port_sql@/db",
        {},
        { dbpass: "pw" },
        { dep_db_host: "town-default-app-db", dep_db_port_sql: "5432" },
      ),
      "postgres://u:pw@town-default-app-db:5432/db",
    );
  });

  it("postgres' connection note: built-ins come before answers", () => {
    assert.equal(
      pipeline(
        "postgresql://@user@:@password@@@PACKAGE_DNS@:@port@/@database@",
        { PACKAGE_DNS: "postgres.default.home" },
        { user: "u", password: "pw", port: "5432", database: "db" },
      ),
      "postgresql://u:pw@postgres.default.home:5432/db",
    );
  });

  it("leaves unknown markers and lone @ as written", () => {
    assert.equal(renderMarkers("@nope@ a@b.c @", values({})), "@nope@ a@b.c @");
    assert.equal(renderMarkers("mail me@home", values({ home: "x" })), "mail me@home");
  });

  it("never lets an inserted value be read by a later pass or unescaped", () => {
    assert.equal(
      pipeline("@pw@ @dep_x_host@", {}, { pw: "a@@b@dep_x_host@" }, { dep_x_host: "h" }),
      "a@@b@dep_x_host@ h",
    );
  });

  it("lets a closing @ open the next marker", () => {
    assert.equal(renderMarkers("@a@@b@", values({ a: "1", b: "2" })), "12");
    assert.equal(renderMarkers("@x@@b@", values({ b: "2" })), "@x@2");
    assert.equal(renderMarkers("@a@-@b@", values({ a: "1", b: "2" })), "1-2");
  });

  it("lists marker names in order", () => {
    assert.deepEqual(markerNames("x@ @a@ @@ @dep_db_port_sql@"), ["a", "dep_db_port_sql"]);
  });
});
