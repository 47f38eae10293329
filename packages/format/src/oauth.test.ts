import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseDefinition } from "./definition/parse.js";
import { fillPlaceholders, httpsUrlProblem, placeholderProblem } from "./oauth.js";
import { repoRoot } from "../test/support.js";

const plexFile = join(repoRoot, "packages/format/test/fixtures/oauth/packages/plex/3.0.yaml");

/** A package with one oauth question whose map is `oauth` (YAML, indented under it). */
function withOAuth(oauth: string): string {
  const indented = oauth
    .trim()
    .split("\n")
    .map((line) => `      ${line}`)
    .join("\n");
  return `image: busybox\nquestions:\n  token:\n    type: oauth\n    oauth:\n${indented}\n`;
}

const MINIMAL = `start: {url: "https://id.example.org/pins"}
approve: "https://id.example.org/approve"
poll: {url: "https://id.example.org/pins/1"}
token: token`;

function errorsOf(text: string): string[] {
  return parseDefinition(text).errors.map(
    (e) => `${e.location?.line ?? 0}:${e.location?.col ?? 0} ${e.field ?? ""}: ${e.message}`,
  );
}

describe("oauth questions", () => {
  it("reads the plex-shaped object form as the public repository writes it", async () => {
    const result = parseDefinition(await readFile(plexFile, "utf8"));
    assert.deepEqual(result.errors, []);
    const oauth = result.definition?.questions.get("claim_token")?.oauth;
    assert.ok(oauth);
    assert.equal(oauth.start.method, "POST");
    assert.equal(oauth.start.url, "https://plex.tv/api/v2/pins?strong=true");
    assert.deepEqual(
      [...oauth.start.headers],
      [
        ["X-Plex-Product", "Town OS"],
        ["X-Plex-Client-Identifier", "{{client_id}}"],
        ["Accept", "application/json"],
      ],
    );
    assert.deepEqual(
      [...oauth.extract],
      [
        ["id", "id"],
        ["code", "code"],
      ],
    );
    assert.match(oauth.approve, /^https:\/\/app\.plex\.tv\/auth#\?clientID=\{\{client_id\}\}/);
    assert.equal(oauth.poll.method, "GET");
    assert.equal(oauth.poll.url, "https://plex.tv/api/v2/pins/{{id}}");
    assert.equal(oauth.token, "authToken");
    assert.equal(oauth.intervalSeconds, 2);
    assert.equal(oauth.timeoutSeconds, 600);
  });

  it("defaults: start is a POST, interval 5s, timeout 10m", () => {
    const oauth = parseDefinition(withOAuth(MINIMAL)).definition?.questions.get("token")?.oauth;
    assert.equal(oauth?.start.method, "POST");
    assert.equal(oauth.intervalSeconds, 5);
    assert.equal(oauth.timeoutSeconds, 600);
  });

  it("refuses the old map of strings, naming what is missing", () => {
    const errors = errorsOf(
      withOAuth("provider: example\ndevice_authorization_url: https://x.example/d"),
    );
    assert.deepEqual(
      errors.map((e) => e.replace(/^\S+ /, "")),
      [
        "questions.token.oauth: start is required",
        "questions.token.oauth: approve is required",
        "questions.token.oauth: poll is required",
        "questions.token.oauth: token is required",
      ],
    );
  });

  it("places an unknown placeholder at its own line and column", () => {
    const errors = errorsOf(
      withOAuth(
        MINIMAL.replace("pins/1", "pins/{{id}}").replace('approve"', 'approve?c={{code}}"'),
      ),
    );
    assert.deepEqual(errors, [
      '7:50 questions.token.oauth.approve: unknown placeholder "{{code}}" (known here: {{client_id}})',
      '8:48 questions.token.oauth.poll.url: unknown placeholder "{{id}}" (known here: {{client_id}})',
    ]);
  });

  it("allows extracted fields after the start request only", () => {
    const text = withOAuth(
      `start: {url: "https://id.example.org/pins?id={{id}}"}\nextract: {id: id}\n${MINIMAL.split("\n").slice(1).join("\n")}`,
    );
    assert.match(errorsOf(text).join("\n"), /start\.url: unknown placeholder "\{\{id\}\}"/);
  });

  it("checks methods, sizes, durations and field names strictly", () => {
    const cases: [string, RegExp][] = [
      [MINIMAL.replace("start: {", "start: {method: DELETE, "), /"DELETE" is not GET or POST/],
      [`${MINIMAL}\ninterval: 0s`, /interval: must be between 1s and 60s/],
      [`${MINIMAL}\ninterval: 2s\ntimeout: 1s`, /timeout: must be between 2s and 1800s/],
      [`${MINIMAL}\ntimeout: 1h`, /timeout: must be between 5s and 1800s/],
      [`${MINIMAL}\ntimeout: soon`, /"soon" is not a duration/],
      [`${MINIMAL}\nextract: {client_id: id}`, /"client_id" is not a field name/],
      [`${MINIMAL}\nextract: {Id: id}`, /"Id" is not a field name/],
      [MINIMAL.replace("token: token", `token: ${"k".repeat(65)}`), /longer than 64/],
      [
        MINIMAL.replace("pins/1", `pins/${"a".repeat(2048)}`),
        /poll\.url: is longer than 2048 characters/,
      ],
      [
        MINIMAL.replace(
          'start: {url: "https://id.example.org/pins"}',
          `start: {url: "https://id.example.org/pins", headers: {${Array.from({ length: 17 }, (_, i) => `H${i}: v`).join(", ")}}}`,
        ),
        /more than 16 headers/,
      ],
      [
        MINIMAL.replace("https://id.example.org/approve", "javascript:alert(1)"),
        /not an https URL/,
      ],
      [MINIMAL.replace("pins/1", "pins/{{client_id}"), /unclosed \{\{ or a stray \}\}/],
      [
        MINIMAL.replace(
          'start: {url: "https://id.example.org/pins"}',
          'start: {url: "https://id.example.org/pins", headers: {X-A: "a\\u0000b"}}',
        ),
        /headers\.X-A: contains a control character \(U\+0000\)/,
      ],
      ["start: oops\napprove: x\npoll: {}\ntoken: t", /start: must be a mapping/],
    ];
    for (const [oauth, expected] of cases) {
      assert.match(errorsOf(withOAuth(oauth)).join("\n"), expected, oauth.slice(0, 120));
    }
  });
});

describe("placeholders", () => {
  it("fills each placeholder with its encoded value", () => {
    const values: Record<string, string> = { client_id: "c 1", code: "A&B" };
    assert.equal(
      fillPlaceholders(
        "https://x.example/a?c={{client_id}}&d={{ code }}",
        (name) => values[name] ?? "",
        encodeURIComponent,
      ),
      "https://x.example/a?c=c%201&d=A%26B",
    );
  });

  it("names the first unknown one and where it is", () => {
    assert.deepEqual(placeholderProblem("a{{client_id}}b{{zz}}", new Set(["client_id"])), {
      message: 'unknown placeholder "{{zz}}" (known here: {{client_id}})',
      at: "{{zz}}",
    });
    assert.equal(placeholderProblem("plain {{client_id}}", new Set(["client_id"])), undefined);
  });

  it("accepts only https URLs without credentials", () => {
    assert.equal(httpsUrlProblem("https://plex.tv/api"), undefined);
    assert.match(httpsUrlProblem("http://plex.tv/api") ?? "", /not an https URL/);
    assert.match(httpsUrlProblem("https://u:p@plex.tv/") ?? "", /user name or password/);
    assert.match(httpsUrlProblem("not a url") ?? "", /not a URL/);
  });
});
