/** The `questions` section: what the installing person is asked. */

import { readOAuth } from "../oauth.js";
import { QUESTION_NAME } from "../rules.js";
import type { Field, FieldReader } from "./reader.js";
import { QUESTION_TYPES, type QuestionDefinition, type QuestionType } from "./types.js";

/** Markers the box fills in itself: a question may not take their names. */
const BUILTIN_MARKERS = new Set(["PACKAGE_DNS", "LOCAL_EXTERNAL_HOST", "LOCAL_INTERNAL_HOST"]);

export function readQuestions(r: FieldReader, node: Field): Map<string, QuestionDefinition> {
  const questions = new Map<string, QuestionDefinition>();
  for (const [name, value] of r.source.map(node, "questions")) {
    const field = `questions.${name}`;
    if (!QUESTION_NAME.test(name) || BUILTIN_MARKERS.has(name)) {
      r.source.keyError(field, `"${name}" is not a valid question name`);
    }
    const fields = r.fieldsOf(value, field, [
      "query",
      "type",
      "default",
      "optional",
      "show_if",
      "oauth",
    ]);
    const type = r.text(fields.get("type"), `${field}.type`) ?? "";
    if (!isQuestionType(type)) {
      r.source.error(`${field}.type`, fields.get("type"), `unknown question type "${type}"`);
    }
    const question: QuestionDefinition = {
      query: r.text(fields.get("query"), `${field}.query`) ?? "",
      type: isQuestionType(type) ? type : "",
      optional: r.source.boolean(fields.get("optional"), `${field}.optional`) ?? false,
    };
    const defaultValue = r.text(fields.get("default"), `${field}.default`);
    if (defaultValue !== undefined) question.default = defaultValue;
    const showIf = r.text(fields.get("show_if"), `${field}.show_if`);
    if (showIf) question.showIf = showIf;
    if (fields.get("oauth") != null) {
      const oauth = readOAuth(r, fields.get("oauth"), `${field}.oauth`);
      if (oauth) question.oauth = oauth;
    }
    questions.set(name, question);
  }
  checkShowIf(r, questions);
  return questions;
}

/** `show_if` names a boolean question of the same package. */
function checkShowIf(r: FieldReader, questions: ReadonlyMap<string, QuestionDefinition>): void {
  for (const [name, question] of questions) {
    if (question.showIf === undefined) continue;
    const target = questions.get(question.showIf);
    if (!target || target.type !== "boolean") {
      r.source.error(
        `questions.${name}.show_if`,
        null,
        `"${question.showIf}" must name a boolean question of this package`,
      );
    }
  }
}

function isQuestionType(type: string): type is QuestionType {
  return (QUESTION_TYPES as readonly string[]).includes(type);
}
