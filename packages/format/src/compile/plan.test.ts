import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadRepository, PackageIndex } from "../repository.js";
import { seededRandom, testSystem } from "../../test/support.js";
import { compilePackage } from "./compile.js";

describe("plan hashes", () => {
  // Installed boxes store plan hashes and compare them with fresh compiles:
  // a changed hash for the same package and answers reinstalls every app.
  // These values were computed before compile.ts was split into compile/.
  const db = [
    "image: docker.io/library/postgres:16",
    "description: a database",
    "network:",
    "  internal:",
    "    sql: 5432",
    "volumes:",
    "  data: {mountpoint: /var/lib/postgresql/data, quota: 2gb, uid: '999'}",
    "questions:",
    "  password: {query: Password, type: secret}",
    "environment:",
    "  POSTGRES_PASSWORD: '@password@'",
  ].join("\n");
  const app = [
    "image: ghcr.io/example/app:1.2",
    "description: an app",
    "supplies: [web]",
    "command: [serve, --port, '8080']",
    "environment:",
    "  DATABASE: 'postgres://app:@dbpass@@@dep_db_host@:@dep_db_port_sql@/app'",
    "  SITE: 'https://@PACKAGE_DNS@'",
    "network:",
    "  external:",
    "    '@port@': 8081",
    "  internal:",
    "    http: 8080",
    "  domains: [example.org]",
    "volumes:",
    "  config: {mountpoint: /etc/app}",
    "git_sources:",
    "  - {url: 'https://example.org/site.git', branch: main, volume: config}",
    "templates:",
    "  settings:",
    "    volume: config",
    "    path: settings.ini",
    "    content: |",
    "      name = {{ .Package.Name }} {{ .Package.Version }}",
    '      db = {{ .Dep.db.Host }}:{{ index .Dep.db.Ports "sql" }}',
    '      ip = {{ .System.ExternalIP }} title = {{ printf "%-8s|%5.2f" .Responses.title 3.14159 }}',
    "questions:",
    "  title: {query: Title, default: My app}",
    "  port: {query: Port, type: port, default: '9000'}",
    "  dbpass: {query: Database password, type: secret}",
    "dependencies:",
    "  db:",
    "    package: db",
    "    responses: {password: '@dbpass@'}",
    "notes:",
    "  Admin: {value: 'https://@PACKAGE_DNS@/admin', type: url}",
    "post_update: [migrate]",
  ].join("\n");

  it("stay the same for the same package and answers", () => {
    const index = new PackageIndex([
      {
        name: "default",
        repository: loadRepository([
          { path: "packages/db/1.0.yaml", text: db },
          { path: "packages/app/1.0.yaml", text: app },
        ]),
      },
    ]);
    const pkg = index.find({ repo: "default", name: "app", version: "1.0" });
    assert.ok(pkg);
    const plan = compilePackage(
      pkg,
      { title: "Town", port: "9000", dbpass: "hunter2" },
      {
        tld: "home",
        system: testSystem,
        random: seededRandom(),
        resolveDependency: (request) => index.find(request),
      },
    );
    assert.equal(
      plan.files[0]?.content,
      "name = app 1.0\ndb = town-default--app--db:5432\nip = 198.51.100.7 title = Town    | 3.14\n",
    );
    assert.equal(plan.hash, "dd26d1552a409510ceb94927c2c15afb5e92988e5d354263affa26265677c516");
    assert.equal(
      plan.dependencies[0]?.hash,
      "a5ca58f043ab496068339a2272a111a9ae695ba43162647a55c6fb376770cf26",
    );
  });
});
