import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseDefinition } from "./parse.js";

function errorsOf(yaml: string) {
  return parseDefinition(yaml).errors.map((issue) => ({
    field: issue.field,
    message: issue.message,
    at: issue.location ? `${issue.location.line}:${issue.location.col}` : undefined,
  }));
}

describe("parseDefinition", () => {
  it("reads a minimal container package", () => {
    const { definition, errors, warnings } = parseDefinition("image: nginx\n");
    assert.deepEqual(errors, []);
    assert.deepEqual(warnings, []);
    assert.equal(definition?.image?.url, "nginx");
    assert.equal(definition.volumes.size, 0);
  });

  it("accepts the object form of image", () => {
    const { definition, errors } = parseDefinition("image:\n  url: ghcr.io/a/b:1\n  type: oci\n");
    assert.deepEqual(errors, []);
    assert.deepEqual(definition?.image, { url: "ghcr.io/a/b:1", type: "oci" });
  });

  it("turns YAML numbers and booleans into their written text where strings are expected", () => {
    const { definition, errors } = parseDefinition(
      [
        "image: app",
        "environment:",
        "  RATIO: 1.10",
        "  ON: true",
        "network:",
        "  internal:",
        "    8080: 80",
        "questions:",
        "  port:",
        "    type: port",
        "    default: 2222",
        "volumes:",
        "  data:",
        "    mountpoint: /data",
        "    uid: 1000",
      ].join("\n"),
    );
    assert.deepEqual(errors, []);
    assert.equal(definition?.environment.get("RATIO"), "1.10");
    assert.equal(definition.environment.get("ON"), "true");
    assert.deepEqual(definition.network.internal, [{ key: "8080", value: "80" }]);
    assert.equal(definition.questions.get("port")?.default, "2222");
    assert.equal(definition.volumes.get("data")?.uid, "1000");
  });

  it("accepts empty maps and lists", () => {
    const { errors } = parseDefinition(
      "image: app\nenvironment: {}\nvolumes:\nquestions: {}\nsupplies: []\nnotes:\npost_update: []\n",
    );
    assert.deepEqual(errors, []);
  });

  it("warns about unknown top-level fields but keeps loading", () => {
    const { definition, errors, warnings } = parseDefinition("image: app\nhomepage: https://x\n");
    assert.deepEqual(errors, []);
    assert.ok(definition);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]?.message ?? "", /unknown top-level field "homepage"/);
    assert.deepEqual(warnings[0]?.location, { line: 2, col: 1 });
  });

  it("reports YAML syntax errors with line and column", () => {
    const errors = errorsOf("image: app\nenvironment:\n  A: [unclosed\n");
    assert.equal(errors.length > 0, true);
    assert.match(errors[0]?.message ?? "", /^YAML:/);
    assert.ok(errors[0]?.at);
  });

  it("reports duplicate keys", () => {
    const errors = errorsOf("image: app\nimage: other\n");
    assert.match(errors[0]?.message ?? "", /unique/i);
    assert.equal(errors[0]?.at, "2:1");
  });

  it("collects every error of a file, each with its location", () => {
    const errors = errorsOf(
      [
        "image: app", //                               1
        "environment:", //                             2
        "  1BAD: x", //                                3
        "volumes:", //                                 4
        "  data:", //                                  5
        "    mountpoint: relative/path", //            6
        "  -bad:", //                                  7
        "    mountpoint: /x", //                       8
        "templates:", //                               9
        "  conf:", //                                  10
        "    volume: missing", //                      11
        "    path: ../etc/passwd", //                  12
        "    content: x", //                           13
        "questions:", //                               14
        "  q:", //                                     15
        "    type: colour", //                         16
      ].join("\n"),
    );
    assert.deepEqual(
      errors.map((e) => [e.field, e.at]),
      [
        ["environment.1BAD", "3:3"],
        ["volumes.data.mountpoint", "6:17"],
        ["volumes.-bad", "7:3"],
        ["templates.conf.path", "12:11"],
        ["questions.q.type", "16:11"],
        ["templates.conf.volume", "11:13"],
      ],
    );
  });

  it("requires exactly one runtime", () => {
    assert.match(errorsOf("description: nothing\n")[0]?.message ?? "", /exactly one runtime/);
    assert.match(
      errorsOf("image: a\nvm:\n  image: disk.qcow2\n")[0]?.message ?? "",
      /only one runtime/,
    );
  });

  it("reads a virtual machine with defaults", () => {
    const { definition, errors } = parseDefinition(
      "vm:\n  image: https://example.org/disk.qcow2\n",
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(definition?.vm, {
      image: "https://example.org/disk.qcow2",
      memory: "1gb",
      cpus: "1",
    });
  });

  it("reads a VM image's checksum and refuses one that is not hex SHA-256", () => {
    const sum = "0f".repeat(32);
    const { definition } = parseDefinition(`vm:\n  image: disk.qcow2\n  sha256: ${sum}\n`);
    assert.equal(definition?.vm?.sha256, sum);
    assert.match(
      errorsOf("vm:\n  image: disk.qcow2\n  sha256: abc\n")[0]?.message ?? "",
      /"abc" is not a SHA-256 in hex/,
    );
  });

  it("reads the metrics extension: a port as number or digits, the path defaulting to /metrics", () => {
    assert.deepEqual(parseDefinition("image: a\nmetrics: {port: 9100}\n").definition?.metrics, {
      port: "9100",
      path: "/metrics",
    });
    assert.deepEqual(
      parseDefinition("image: a\nmetrics: {port: '8080', path: /api/metrics}\n").definition
        ?.metrics,
      { port: "8080", path: "/api/metrics" },
    );
    assert.equal(parseDefinition("image: a\n").definition?.metrics, undefined);
  });

  it("refuses bad metrics ports and paths, a missing port, and metrics on a VM", () => {
    const messages = (yaml: string): string[] =>
      errorsOf(yaml).map((e) => `${e.field}: ${e.message}`);
    assert.deepEqual(messages("image: a\nmetrics: {port: 0}\n"), [
      'metrics.port: "0" is not a port number (1-65535)',
    ]);
    assert.deepEqual(messages("image: a\nmetrics: {port: http}\n"), [
      'metrics.port: "http" is not a port number (1-65535)',
    ]);
    assert.deepEqual(messages("image: a\nmetrics: {path: /m}\n"), ["metrics: port is required"]);
    for (const path of ["metrics", "/a b", "/m?x=1", "/m#top", "/\u00e9"]) {
      assert.match(
        messages(`image: a\nmetrics: {port: 80, path: "${path}"}\n`)[0] ?? "",
        /^metrics\.path: /,
        path,
      );
    }
    assert.match(
      messages('image: a\nmetrics: {port: 80, path: "/m\\u0007"}\n')[0] ?? "",
      /control character/,
    );
    assert.deepEqual(messages("vm: {image: disk.qcow2}\nmetrics: {port: 80}\n"), [
      "metrics: a virtual machine cannot declare metrics (only containers can)",
    ]);
  });

  it("reads the backup extension: stop, or a command with an optional timeout", () => {
    assert.deepEqual(parseDefinition("image: a\nbackup: {quiesce: stop}\n").definition?.backup, {
      quiesce: "stop",
      command: [],
    });
    assert.deepEqual(
      parseDefinition(
        "image: a\nbackup:\n  quiesce: command\n  command: [redis-cli, -a, '@pw@', SAVE]\n  timeout: 120\nquestions:\n  pw: {}\n",
      ).definition?.backup,
      { quiesce: "command", command: ["redis-cli", "-a", "@pw@", "SAVE"], timeout: "120" },
    );
    // A VM can be stopped, so that much it may declare.
    assert.deepEqual(
      parseDefinition("vm: {image: disk.qcow2}\nbackup: {quiesce: stop, timeout: 300}\n").definition
        ?.backup,
      { quiesce: "stop", command: [], timeout: "300" },
    );
    assert.equal(parseDefinition("image: a\n").definition?.backup, undefined);
  });

  it("refuses a bad backup extension at its place", () => {
    const problems = (yaml: string): string[] =>
      errorsOf(yaml).map((e) => `${e.at ?? "?"} ${e.field}: ${e.message}`);
    assert.deepEqual(problems("image: a\nbackup: {quiesce: pause}\n"), [
      '2:19 backup.quiesce: "pause" is not one of stop, command',
    ]);
    assert.deepEqual(problems("image: a\nbackup: {timeout: 5}\n"), [
      "2:1 backup: quiesce is required",
    ]);
    assert.deepEqual(problems("image: a\nbackup:\n  quiesce: command\n"), [
      "2:1 backup: command is required with quiesce: command",
    ]);
    assert.deepEqual(problems("image: a\nbackup:\n  quiesce: stop\n  command: [sync]\n"), [
      "4:12 backup.command: is only for quiesce: command",
    ]);
    assert.deepEqual(problems("image: a\nbackup:\n  quiesce: command\n  command: sync\n"), [
      "4:12 backup.command: must be a list",
    ]);
    assert.deepEqual(problems("image: a\nbackup:\n  quiesce: command\n  command: []\n"), [
      "4:12 backup.command: must not be empty",
    ]);
    assert.deepEqual(problems("image: a\nbackup:\n  quiesce: command\n  command: ['', x]\n"), [
      "4:13 backup.command.0: must not be empty",
    ]);
    const many = JSON.stringify(Array.from({ length: 33 }, () => "x"));
    assert.deepEqual(problems(`image: a\nbackup:\n  quiesce: command\n  command: ${many}\n`), [
      "4:12 backup.command: has more than 32 arguments",
    ]);
    const long = "x".repeat(4097);
    assert.deepEqual(
      problems(`image: a\nbackup:\n  quiesce: command\n  command: [sh, ${long}]\n`),
      ["4:17 backup.command.1: is longer than 4096 characters"],
    );
    assert.deepEqual(problems('image: a\nbackup:\n  quiesce: command\n  command: ["a\\u0007"]\n'), [
      "4:13 backup.command.0: contains a control character (U+0007)",
    ]);
    for (const timeout of ["0", "3601", "1.5", "soon", "-1"]) {
      assert.deepEqual(problems(`image: a\nbackup: {quiesce: stop, timeout: '${timeout}'}\n`), [
        `2:34 backup.timeout: "${timeout}" is not a number of seconds (1-3600)`,
      ]);
    }
    assert.deepEqual(
      problems("vm: {image: disk.qcow2}\nbackup:\n  quiesce: command\n  command: [sync]\n"),
      [
        "3:12 backup.quiesce: a virtual machine can only be stopped for a snapshot (there is no command to run in it)",
      ],
    );
  });

  it("refuses shell metacharacters in images", () => {
    for (const image of ["'nginx; rm -rf /'", "'$(id)'", "'a b'", "'`x`'", "'x|y'", "'x>y'"]) {
      assert.match(
        errorsOf(`image: ${image}\n`)[0]?.message ?? "",
        /not a valid image reference/,
        image,
      );
    }
  });

  it("refuses control characters in strings", () => {
    const errors = errorsOf('image: app\nenvironment:\n  A: "x\\u0007y"\n');
    assert.match(errors[0]?.message ?? "", /control character \(U\+0007\)/);
  });

  it("allows newlines in template content only", () => {
    assert.deepEqual(
      errorsOf(
        "image: a\nvolumes:\n  v:\n    mountpoint: /v\ntemplates:\n  t:\n    volume: v\n    path: a\n    content: |\n      x\n      y\n",
      ),
      [],
    );
    assert.match(
      errorsOf('image: app\ncommand: ["a\\nb"]\n')[0]?.message ?? "",
      /control character/,
    );
  });

  it("checks show_if names a boolean question", () => {
    const errors = errorsOf("image: a\nquestions:\n  a:\n    query: x\n  b:\n    show_if: a\n");
    assert.equal(errors[0]?.field, "questions.b.show_if");
  });

  it("bounds alias expansion", () => {
    const responses = Array.from({ length: 2500 }, (_, i) => `r${i}: x`).join(", ");
    const dependencies = Array.from({ length: 100 }, (_, i) => `d${i}: *dep`).join(", ");
    const errors = errorsOf(
      `image: app\nx-base: &dep {package: p, responses: {${responses}}}\ndependencies: {${dependencies}}\n`,
    );
    assert.ok(
      errors.some((e) => /too many nodes/.test(e.message)),
      JSON.stringify(errors.slice(0, 3)),
    );
  });

  // Each of these took seconds to minutes before: the time limit is what the test is about.
  it("refuses an alias bomb at once (200,000 aliases in a 1 MiB file)", { timeout: 10_000 }, () => {
    const aliases = Array.from({ length: 200_000 }, () => "*a").join(",");
    const errors = errorsOf(`image: app\ndescription: &a x\nsupplies: [${aliases}]\n`);
    assert.deepEqual(errors, [
      // At the 101st alias.
      { field: undefined, message: "YAML: more than 100 aliases (an alias bomb?)", at: "3:312" },
    ]);
  });

  it("resolves the aliases it allows to the anchor defined last before them", () => {
    const { definition, errors } = parseDefinition(
      "image: app\nx: &a one\ny: &a two\nsupplies: [*a]\nz: &a three\n",
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(definition?.supplies, ["two"]);
  });

  it("refuses deep nesting at once, flow or block", { timeout: 10_000 }, () => {
    for (const nested of [
      `${"[".repeat(500_000)}${"]".repeat(500_000 - 20)}`,
      `\n${"- ".repeat(400_000)}x`,
      "{a: ".repeat(200_000),
    ]) {
      const errors = errorsOf(`image: app\ndescription: ${nested}\n`);
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.match(errors[0]?.message ?? "", /nest deeper than 64 levels/);
    }
    assert.deepEqual(errorsOf(`image: app\nx-deep: ${"[".repeat(40)}${"]".repeat(40)}\n`), []);
  });

  it(
    "reads a mapping of 30,000 keys in linear time, duplicates still found",
    { timeout: 10_000 },
    () => {
      const entries = Array.from({ length: 30_000 }, (_, i) => `  V${i}: x`);
      assert.deepEqual(errorsOf(`image: app\nenvironment:\n${entries.join("\n")}\n`), []);
      const errors = errorsOf(`image: app\nenvironment:\n${entries.join("\n")}\n  V7: y\n`);
      assert.deepEqual(errors, [
        { field: undefined, message: "YAML: Map keys must be unique", at: "30003:3" },
      ]);
    },
  );

  it("refuses files larger than the limit", () => {
    const errors = errorsOf(`image: app\ndescription: "${"x".repeat(1024 * 1024)}"\n`);
    assert.match(errors[0]?.message ?? "", /larger than/);
  });
});
