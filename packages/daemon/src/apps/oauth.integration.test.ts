/**
 * OAuth questions end to end: a real daemon over HTTP runs the plex-shaped
 * flow against a local https provider whose CA it trusts through its
 * configuration. Success, expiry, redirects, oversized answers, http://,
 * and that the token stays inside the box.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ApiError, TownClient } from "@townos/client";
import { runTownCaptured } from "../../../cli/test/run-town.js";
import { createRepo, startGitServer, type GitServer } from "../../test/git-server.js";
import {
  logInto,
  setupAdmin,
  signedInAccount,
  testDaemonConfig,
  until,
} from "../../test/daemon.js";
import {
  approvingNextStart,
  makeCertificates,
  plexFixtureAt,
  PROVIDER_TOKEN,
  startMockProvider,
  type Certificates,
  type MockProvider,
} from "../../test/oauth-provider.js";
import { startDaemon, type RunningDaemon } from "../daemon.js";
import { requestJson } from "./oauth-http.js";

const repo = "links";

/** The plex fixture with its provider moved to `provider`; `change` edits it further. */
async function plexAt(
  provider: string,
  change: (text: string) => string = (t) => t,
): Promise<string> {
  return change(await plexFixtureAt(provider));
}

function rejectsWith(code: string, detail: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof ApiError, String(error));
    assert.equal(error.problem.code, code, error.problem.detail);
    assert.match(error.problem.detail, detail);
    return true;
  };
}

describe("oauth flows", () => {
  let scratch: string;
  let certificates: Certificates;
  let provider: MockProvider;
  let server: GitServer;
  let daemon: RunningDaemon;
  let admin: TownClient;
  const logLines: string[] = [];

  /** A new account, signed in. */
  async function newAccount(username: string, role: "admin" | "user"): Promise<TownClient> {
    return signedInAccount(daemon, admin, username, `${username}-password-8e1f`, role);
  }

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "town-oauth-"));
    certificates = await makeCertificates(scratch);
    provider = await startMockProvider(certificates);
    const url = provider.url;
    await createRepo(join(scratch, "git"), "links.git", {
      "packages/plex/3.0.yaml": await plexAt(url),
      // Never approved: expires after its 2 s.
      "packages/slow/1.0.yaml": await plexAt(url, (t) =>
        t.replace("interval: 2s", "interval: 1s").replace("timeout: 10m", "timeout: 2s"),
      ),
      "packages/redirect/1.0.yaml": await plexAt(url, (t) =>
        t.replace(`${url}/api/v2/pins?strong=true`, `${url}/redirect`),
      ),
      "packages/big/1.0.yaml": await plexAt(url, (t) =>
        t.replace(`${url}/api/v2/pins?strong=true`, `${url}/big`),
      ),
      "packages/plain/1.0.yaml": await plexAt(url, (t) =>
        t.replace(`${url}/api/v2/pins?strong=true`, `${url.replace("https:", "http:")}/plain`),
      ),
    });
    server = await startGitServer({ root: join(scratch, "git") });
    daemon = await startDaemon(
      testDaemonConfig(scratch, {
        apps: false,
        // Every line, headers included: the token must be in none of them.
        logLevel: "debug",
        logStream: logInto((text) => logLines.push(text)),
        oauth: { trustedCaFile: certificates.caFile, allowPrivateAddresses: true },
      }),
    );
    await daemon.booted;
    admin = await setupAdmin(daemon, "admin-password-5d2a");
    await admin.addRepository({ name: repo, url: server.url("links.git") });
  });

  after(async () => {
    await daemon.stop();
    await server.close();
    await provider.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it("links an account: start, approve URL, polling until the token, kept in the box", async () => {
    const flow = await admin.startOAuthFlow({ repo, name: "plex", question: "claim_token" });
    assert.equal(flow.state, "pending");
    assert.equal(flow.version, "3.0");
    const approve = new URL(flow.approveUrl);
    assert.equal(approve.origin, provider.url);
    const params = new URLSearchParams(approve.hash.slice(2));
    const clientId = params.get("clientID") ?? "";
    assert.match(clientId, /^[0-9a-f-]{36}$/);
    assert.equal(params.get("code"), "CODE1000");
    assert.equal(params.get("context[device][product]"), "Town OS");

    const start = provider.requests.find((r) => r.method === "POST");
    assert.equal(start?.path, "/api/v2/pins?strong=true");
    assert.equal(start.headers["x-plex-client-identifier"], clientId);
    assert.equal(start.headers["x-plex-product"], "Town OS");

    // Polls come at the interval, with the flow's client id, and find nothing yet.
    await until(
      "a poll",
      10_000,
      () => Promise.resolve(provider.requests.filter((r) => r.path === "/api/v2/pins/1000")),
      (polls) => polls.length > 0,
    );
    assert.equal((await admin.oauthFlow(flow.id)).state, "pending");
    provider.approve(1000, PROVIDER_TOKEN);
    const done = await until(
      "the flow to finish",
      10_000,
      () => admin.oauthFlow(flow.id),
      (view) => view.state !== "pending",
    );
    assert.equal(done.state, "done", done.error ?? "");
    assert.equal(done.error, null);
    for (const poll of provider.requests.filter((r) => r.method === "GET")) {
      assert.equal(poll.headers["x-plex-client-identifier"], clientId);
    }
    // Each flow has its own client id.
    const second = await admin.startOAuthFlow({ repo, name: "plex", question: "claim_token" });
    assert.notEqual(
      new URLSearchParams(new URL(second.approveUrl).hash.slice(2)).get("clientID"),
      clientId,
    );

    // An install names the flow; a wrong pairing or an unfinished flow is refused.
    await assert.rejects(
      () =>
        admin.installApp({ repo, name: "slow", answers: {}, oauthFlows: { claim_token: flow.id } }),
      rejectsWith("invalid_argument", /was made for links\/plex question "claim_token"/),
    );
    await assert.rejects(
      () =>
        admin.installApp({
          repo,
          name: "plex",
          answers: {},
          oauthFlows: { claim_token: second.id },
        }),
      rejectsWith("conflict", /the account link for "claim_token" is pending/),
    );
    await assert.rejects(
      () =>
        admin.installApp({
          repo,
          name: "plex",
          version: "2.0",
          answers: {},
          oauthFlows: { claim_token: flow.id },
        }),
      rejectsWith("invalid_argument", /made for version 3\.0, not 2\.0/),
    );
    // The pairing holds: only the missing container runtime stops this install (apps run in the Podman test).
    await assert.rejects(
      () =>
        admin.installApp({ repo, name: "plex", answers: {}, oauthFlows: { claim_token: flow.id } }),
      rejectsWith("unavailable", /running apps is turned off/),
    );

    // Another administrator cannot see or use this one's flow.
    const bob = await newAccount("bob", "admin");
    await assert.rejects(() => bob.oauthFlow(flow.id), rejectsWith("not_found", /no account link/));

    // The token went nowhere but the box's memory: not in answers, the audit log or any log line.
    const audit = JSON.stringify((await admin.audit({})).items);
    assert.match(audit, /oauth\.start/);
    assert.ok(!audit.includes(PROVIDER_TOKEN), "the audit log holds the token");
    assert.ok(!JSON.stringify(done).includes(PROVIDER_TOKEN));
    assert.ok(logLines.length > 0);
    assert.ok(!logLines.join("").includes(PROVIDER_TOKEN), "a log line holds the token");
  });

  it("town app install --connect prints the page, waits for the approval, then installs naming the link", async () => {
    const result = await approvingNextStart(provider, PROVIDER_TOKEN, () =>
      runTownCaptured(["app", "install", `${repo}/plex`, "--connect", "claim_token"], {
        cwd: scratch,
        env: { TOWN_SERVER: daemon.url, TOWN_TOKEN: admin.token },
      }),
    );
    assert.match(
      result.stdout,
      /^Open this page to link the account for "claim_token":\n {2}https:\/\/127\.0\.0\.1:[0-9]+\/app\/auth#\?clientID=[0-9a-f-]{36}&code=CODE[0-9]+&/,
    );
    assert.match(
      result.stderr,
      /waiting for the approval \(until [^)]+\) \.*\nlinked the account for "claim_token"\n/,
    );
    // The install named the finished link: only the missing container runtime stopped it.
    assert.match(result.stderr, /running apps is turned off/);
    assert.equal(result.code, 1);
    assert.ok(!result.stdout.includes(PROVIDER_TOKEN) && !result.stderr.includes(PROVIDER_TOKEN));
  });

  it("is for administrators only", async () => {
    const carol = await newAccount("carol", "user");
    await assert.rejects(
      () => carol.startOAuthFlow({ repo, name: "plex", question: "claim_token" }),
      rejectsWith("forbidden", /only administrators/),
    );
  });

  it("expires when nobody approves in time", async () => {
    const flow = await admin.startOAuthFlow({ repo, name: "slow", question: "claim_token" });
    assert.ok(flow.expiresAt <= Date.now() + 2_000);
    const ended = await until(
      "the flow to expire",
      10_000,
      () => admin.oauthFlow(flow.id),
      (view) => view.state !== "pending",
    );
    assert.equal(ended.state, "expired");
    assert.match(ended.error ?? "", /nobody approved in time/);
  });

  it("refuses a redirect to another host, without following it", async () => {
    await assert.rejects(
      () => admin.startOAuthFlow({ repo, name: "redirect", question: "claim_token" }),
      rejectsWith(
        "unavailable",
        /redirect \(to https:\/\/elsewhere\.example\/api\/v2\/pins\), which is not followed/,
      ),
    );
  });

  it("refuses an answer over 64 KiB", async () => {
    await assert.rejects(
      () => admin.startOAuthFlow({ repo, name: "big", question: "claim_token" }),
      rejectsWith("unavailable", /larger than 65536 bytes/),
    );
  });

  it("refuses http://: the package is invalid and nothing is requested", async () => {
    const before = provider.requests.length;
    const detail = await admin.package(repo, "plain");
    assert.match(JSON.stringify(detail.versions[0]?.errors), /is not an https URL/);
    await assert.rejects(
      () => admin.startOAuthFlow({ repo, name: "plain", question: "claim_token" }),
      rejectsWith("not_found", /no valid links\/plain/),
    );
    assert.equal(provider.requests.length, before);
  });

  it("reaches no local address unless configured to, and trusts only the CAs it is given", async () => {
    const pins = {
      method: "POST" as const,
      url: `${provider.url}/api/v2/pins`,
      headers: new Map([["X-Plex-Client-Identifier", "t"]]),
    };
    const ca = await readFile(certificates.caFile, "utf8");
    const before = provider.requests.length;
    await assert.rejects(
      () => requestJson(pins, { extraCa: ca }),
      /127\.0\.0\.1 is a local address, which flows may not reach/,
    );
    const port = new URL(provider.url).port;
    await assert.rejects(
      () => requestJson({ ...pins, url: `https://localhost:${port}/api/v2/pins` }, { extraCa: ca }),
      /resolves to a local address only/,
    );
    assert.equal(provider.requests.length, before, "a refused request reached the provider");
    await assert.rejects(() => requestJson(pins, { allowPrivateAddresses: true }), /certificate/);
    await assert.rejects(
      () =>
        requestJson(
          { ...pins, url: pins.url.replace("https:", "http:") },
          { allowPrivateAddresses: true },
        ),
      /is not an https URL/,
    );
    assert.deepEqual(
      Object.keys(await requestJson(pins, { extraCa: ca, allowPrivateAddresses: true })),
      ["id", "code", "authToken"],
    );
  });
});
