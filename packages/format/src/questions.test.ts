import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { QuestionDefinition, QuestionType } from "./definition/types.js";
import {
  AUTO_PORT_MAX,
  AUTO_PORT_MIN,
  AUTO_PORT_PREFERRED_MAX,
  compileAnswers,
  freeAutoPort,
  savedAnswersAsGiven,
  type AnswerContext,
} from "./questions.js";

function context(): AnswerContext {
  let counter = 0;
  return {
    packageName: "guestbook",
    takenPorts: new Set(),
    random: { bytes: (n) => new Uint8Array(n).fill(++counter) },
  };
}

describe("compileAnswers", () => {
  it("takes back its own answers, spelled as given, unchanged: saved answers compile again", () => {
    const questions = new Map<string, QuestionDefinition>();
    const given: Record<string, string> = {};
    const samples: [QuestionType, string][] = [
      ["port", "8080"],
      ["hostname", "Guestbook"],
      ["bytes", "1gb"],
      ["duration", "30d"],
      ["duration", "1.5h"],
      ["boolean", "T"],
      ["volume", "data_1"],
      ["secret", "auto"],
      ["", "  hello  "],
    ];
    for (const [index, [type, answer]] of samples.entries()) {
      questions.set(`q${String(index)}`, { query: "?", type, optional: false });
      given[`q${String(index)}`] = answer;
    }
    const first = compileAnswers(questions, given, context());
    assert.deepEqual(first.issues, []);
    const saved = Object.fromEntries(first.values);
    assert.equal(saved["q3"], String(30 * 86400));
    const again = compileAnswers(questions, savedAnswersAsGiven(questions, saved), context());
    assert.deepEqual(again.issues, []);
    assert.deepEqual(Object.fromEntries(again.values), saved);
  });
});

describe("freeAutoPort", () => {
  it("chooses below the kernel's ephemeral range while a port is free there", () => {
    for (const start of [0, 1, 11_000, AUTO_PORT_PREFERRED_MAX - AUTO_PORT_MIN]) {
      const port = freeAutoPort(new Set(), () => start);
      assert.equal(port, AUTO_PORT_MIN + start);
    }
  });

  it("wraps past taken ports, then goes above the ephemeral start once the low part is full", () => {
    assert.equal(
      freeAutoPort(new Set([32767]), (span) => span - 1),
      AUTO_PORT_MIN,
    );
    const low = new Set<number>();
    for (let port = AUTO_PORT_MIN; port <= AUTO_PORT_PREFERRED_MAX; port++) low.add(port);
    assert.equal(
      freeAutoPort(low, () => 0),
      AUTO_PORT_PREFERRED_MAX + 1,
    );
    const all = new Set(low);
    for (let port = AUTO_PORT_PREFERRED_MAX + 1; port <= AUTO_PORT_MAX; port++) all.add(port);
    assert.equal(
      freeAutoPort(all, () => 0),
      undefined,
    );
  });
});
