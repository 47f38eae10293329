import { randomBytes } from "node:crypto";
import type { QuestionDefinition } from "./definition/types.js";
import type { Issue } from "./errors.js";
import { findControlCharacter, MAX_VALUE_LENGTH } from "./rules.js";
import { parseByteSize, parseDuration } from "./units.js";

/** Where randomness comes from; tests inject a deterministic one. */
export interface RandomSource {
  bytes(count: number): Uint8Array;
}

export const cryptoRandom: RandomSource = { bytes: (count) => randomBytes(count) };

export const AUTO_PORT_MIN = 10000;
export const AUTO_PORT_MAX = 60000;
/**
 * Automatic ports are chosen below Linux's ephemeral range (32768–60999 by
 * default) while one is free there: a port inside it can be taken by any
 * outgoing connection between the choice and the container's start.
 */
export const AUTO_PORT_PREFERRED_MAX = 32767;

/**
 * A free port in the automatic range, from a random start (`random(n)` is an
 * integer below n): the part below the ephemeral range first, then the rest.
 * Undefined when every one is taken.
 */
export function freeAutoPort(
  taken: ReadonlySet<number>,
  random: (span: number) => number,
): number | undefined {
  const ranges: [number, number][] = [
    [AUTO_PORT_MIN, AUTO_PORT_PREFERRED_MAX],
    [AUTO_PORT_PREFERRED_MAX + 1, AUTO_PORT_MAX],
  ];
  for (const [low, high] of ranges) {
    const span = high - low + 1;
    const start = random(span);
    for (let offset = 0; offset < span; offset++) {
      const port = low + ((start + offset) % span);
      if (!taken.has(port)) return port;
    }
  }
  return undefined;
}

export interface AnswerContext {
  packageName: string;
  /** Host ports already used; ports chosen here are added to it. */
  takenPorts: Set<number>;
  /** Who holds some of the taken ports (`default/gitea`), for the error message. */
  portHolders?: ReadonlyMap<number, string>;
  random: RandomSource;
  /**
   * Questions whose blank answers may fall back to a generated value when
   * their default port is taken: a dependency's questions that nobody saw.
   */
  unseen?: ReadonlySet<string>;
}

export interface AnswerResult {
  /** Question name → final value (hidden questions → ""). */
  values: Map<string, string>;
  issues: Issue[];
}

/** Questions whose answers are secrets (passwords, keys, tokens): never shown to non-admins or logged. */
export function isSecretQuestion(question: Pick<QuestionDefinition, "type">): boolean {
  return question.type === "secret" || question.type === "oauth";
}

/**
 * The answers a form starts with: the previous answer where there is one,
 * else the question's default, else blank.
 */
export function prefillAnswers(
  questions: ReadonlyMap<string, QuestionDefinition>,
  previous: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const answers: Record<string, string> = {};
  for (const [name, question] of questions) {
    answers[name] = Object.hasOwn(previous, name)
      ? (previous[name] ?? "")
      : (question.default ?? "");
  }
  return answers;
}

/**
 * Saved answers (what `compileAnswers` made) spelled as a person gives them,
 * so that they compile again on an upgrade or reinstall: a duration is saved
 * in whole seconds, and a duration needs its unit.
 */
export function savedAnswersAsGiven(
  questions: ReadonlyMap<string, QuestionDefinition>,
  saved: Readonly<Record<string, string>>,
): Record<string, string> {
  const given = { ...saved };
  for (const [name, value] of Object.entries(saved)) {
    if (questions.get(name)?.type === "duration" && /^[0-9]+$/.test(value)) {
      given[name] = `${value}s`;
    }
  }
  return given;
}

/**
 * Validates, normalizes and generates the answers to a package's questions.
 * Every problem is returned, each naming its question.
 */
export function compileAnswers(
  questions: ReadonlyMap<string, QuestionDefinition>,
  answers: Readonly<Record<string, string>>,
  context: AnswerContext,
): AnswerResult {
  const issues: Issue[] = [];
  const values = new Map<string, string>();
  for (const name of Object.keys(answers)) {
    if (!questions.has(name))
      issues.push({ question: name, message: `there is no question "${name}"` });
  }
  // Booleans first: show_if depends on them.
  const ordered = [...questions].sort(
    ([, a], [, b]) => Number(b.type === "boolean") - Number(a.type === "boolean"),
  );
  for (const [name, question] of ordered) {
    if (question.showIf !== undefined && values.get(question.showIf) !== "true") {
      values.set(name, "");
      continue;
    }
    const given = Object.hasOwn(answers, name) ? (answers[name] ?? "") : "";
    const result = answerQuestion(name, question, given.trim() === "" ? "" : given, context);
    if ("error" in result) {
      issues.push({ question: name, message: result.error });
    } else {
      values.set(name, result.value);
    }
  }
  return { values, issues };
}

type Outcome = { value: string } | { error: string };

function answerQuestion(
  name: string,
  question: QuestionDefinition,
  given: string,
  context: AnswerContext,
): Outcome {
  if (given.length > MAX_VALUE_LENGTH)
    return { error: `is longer than ${MAX_VALUE_LENGTH} characters` };
  const control = findControlCharacter(given);
  if (control) return { error: `contains a control character (${control})` };
  const generates =
    question.type === "port" || question.type === "hostname" || question.type === "secret";
  if (generates && (given === "" || given.toLowerCase() === "auto")) {
    // A blank optional answer stays blank: it is never generated.
    if (given === "" && question.optional) return { value: "" };
    return generate(question, context);
  }
  let text = given;
  if (text === "") {
    text = question.default ?? "";
    if (text === "" && question.type === "boolean") text = "false";
    if (text === "") {
      return question.optional ? { value: "" } : { error: "an answer is required" };
    }
  }
  const outcome = normalize(question, text, context);
  // An unseen dependency question whose default port is taken gets a free one instead.
  if ("error" in outcome && question.type === "port" && context.unseen?.has(name)) {
    return generate(question, context);
  }
  return outcome;
}

function normalize(question: QuestionDefinition, text: string, context: AnswerContext): Outcome {
  switch (question.type) {
    case "port": {
      if (!/^[0-9]{1,5}$/.test(text.trim())) return { error: `"${text}" is not a port number` };
      const port = Number(text.trim());
      if (port < 1 || port > 65535) return { error: `port ${port} is outside 1-65535` };
      if (context.takenPorts.has(port)) return { error: portInUse(port, context.portHolders) };
      context.takenPorts.add(port);
      return { value: String(port) };
    }
    case "hostname": {
      const lower = text.trim().toLowerCase();
      if (!/^[a-z][a-z0-9-]*$/.test(lower) || lower.length > 63) {
        return { error: `"${text}" is not a host name (a letter, then letters, digits or -)` };
      }
      return { value: lower };
    }
    case "bytes": {
      const bytes = parseByteSize(text);
      return bytes === undefined
        ? { error: `"${text}" is not a size (a number with mb, gb or tb)` }
        : { value: String(bytes) };
    }
    case "duration": {
      const seconds = parseDuration(text);
      return seconds === undefined
        ? { error: `"${text}" is not a duration (a number with s, m, h or d)` }
        : { value: String(seconds) };
    }
    case "boolean": {
      const lower = text.trim().toLowerCase();
      if (["true", "t", "1"].includes(lower)) return { value: "true" };
      if (["false", "f", "0"].includes(lower)) return { value: "false" };
      return { error: `"${text}" is not true or false` };
    }
    case "volume":
      return /^[a-zA-Z0-9_-]+$/.test(text)
        ? { value: text }
        : { error: `"${text}" is not a volume name (letters, digits, _ and -)` };
    case "secret":
    case "archive":
    case "oauth":
    case "":
      return { value: text };
  }
}

function generate(question: QuestionDefinition, context: AnswerContext): Outcome {
  switch (question.type) {
    case "port": {
      const port = freePort(context);
      if (port === undefined) return { error: "no free port is left to choose" };
      context.takenPorts.add(port);
      return { value: String(port) };
    }
    case "hostname":
      return { value: `${context.packageName}-${hex(context.random, 2)}` };
    default:
      return { value: hex(context.random, 32) };
  }
}

function hex(random: RandomSource, bytes: number): string {
  return Buffer.from(random.bytes(bytes)).toString("hex");
}

function freePort(context: AnswerContext): number | undefined {
  return freeAutoPort(
    context.takenPorts,
    (span) => Buffer.from(context.random.bytes(4)).readUInt32BE(0) % span,
  );
}

/** `port 80 is already in use (by default/web)`: who holds it, when known. */
export function portInUse(port: number, holders: ReadonlyMap<number, string> | undefined): string {
  const holder = holders?.get(port);
  return `port ${port} is already in use${holder === undefined ? "" : ` (by ${holder})`}`;
}
