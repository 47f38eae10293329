/**
 * Compiles single fields of one package once its answers are known: marker
 * substitution, then the check the substituted value needs. Problems go to
 * `report` with the field they belong to; the value is still returned so that
 * one pass finds every problem.
 */

import { normalizeImage } from "../image.js";
import {
  finishMarkers,
  markText,
  substituteMarkers,
  type MarkedText,
  type MarkerValues,
} from "../markers.js";
import {
  absolutePathProblem,
  findControlCharacter,
  isDomainName,
  isGitUrl,
  relativePathProblem,
} from "../rules.js";

export class FieldCompiler {
  constructor(
    private readonly builtins: MarkerValues,
    private readonly answers: MarkerValues,
    readonly report: (field: string, message: string) => void,
  ) {}

  /** Built-ins first, then answers, as the format defines. */
  stage1(text: string): MarkedText {
    return substituteMarkers(substituteMarkers(markText(text), this.builtins), this.answers);
  }

  /** Final value of a field that reaches a command line, environment or path. */
  text(field: string, substituted: MarkedText): string {
    const value = finishMarkers(substituted);
    const control = findControlCharacter(value);
    if (control) this.report(field, `contains a control character (${control}) after substitution`);
    return value;
  }

  image(field: string, written: string): string | null {
    const reference = this.text(field, this.stage1(written));
    const normalized = normalizeImage(reference);
    if (normalized === undefined) {
      this.report(field, `"${reference}" is not a valid image reference`);
      return null;
    }
    return normalized;
  }

  domain(field: string, written: string): string {
    const domain = this.text(field, this.stage1(written)).toLowerCase();
    if (!isDomainName(domain)) this.report(field, `"${domain}" is not a domain name`);
    return domain;
  }

  path(field: string, written: string, kind: "absolute" | "relative"): string {
    const path = this.text(field, this.stage1(written));
    const problem = kind === "absolute" ? absolutePathProblem(path) : relativePathProblem(path);
    if (problem) this.report(field, `"${path}" ${problem}`);
    return path;
  }

  volumeRef(field: string, written: string, volumes: ReadonlySet<string>): string {
    const volume = this.text(field, this.stage1(written));
    if (!volumes.has(volume))
      this.report(field, `names volume "${volume}", which this package does not define`);
    return volume;
  }

  gitUrl(field: string, written: string): string {
    const url = this.text(field, this.stage1(written));
    if (!isGitUrl(url)) this.report(field, `"${url}" is not an http(s) git URL`);
    return url;
  }

  /** A field that may be absent, or substitute to blank (an optional answer left empty). */
  optional(
    field: string,
    written: string | undefined,
    parse: (text: string) => number | string,
  ): number | null {
    if (written === undefined) return null;
    const text = this.text(field, this.stage1(written)).trim();
    if (text === "") return null;
    const parsed = parse(text);
    if (typeof parsed === "string") {
      this.report(field, parsed);
      return null;
    }
    return parsed;
  }

  note(field: string, written: string, type: string): string {
    const value = finishMarkers(this.stage1(written));
    const control = findControlCharacter(value);
    if (control) this.report(field, `contains a control character (${control}) after substitution`);
    const problem = noteProblem(value, type);
    if (problem) this.report(field, `"${value}" ${problem}`);
    return value;
  }
}

function noteProblem(value: string, type: string): string | undefined {
  switch (type) {
    case "url":
      try {
        const url = new URL(value);
        return url.protocol.length > 1 ? undefined : "is not a URL";
      } catch {
        return "is not a URL";
      }
    case "phone":
      return /^\+?[0-9][0-9 ().-]{2,30}$/.test(value) ? undefined : "is not a phone number";
    case "email":
      return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value) ? undefined : "is not an email address";
    default:
      return undefined;
  }
}
