/**
 * Git remotes: which URLs are taken, what is shown of them, and the
 * credentials they carry. Credentials are handed to git only through its auth
 * callback: they never reach a stored URL (a clone's config), a message or a
 * log line.
 */
import { TownError } from "@townos/format";
import { redactText } from "../redact.js";
import { printable } from "../storage/names.js";

/** HTTP basic-auth credentials. */
export interface Credentials {
  username: string;
  password: string;
}

export interface RemoteUrl {
  /** The URL git talks to: no credentials, no fragment, no trailing slash. */
  url: string;
  /** The URL shown in messages: also without the query, which may hold tokens. */
  display: string;
  /** The credentials embedded in the URL, when it had any. */
  credentials: Credentials | undefined;
}

/**
 * Parses an `http://` or `https://` URL and takes its credentials out.
 * @throws TownError `invalid_argument` for anything else; the input is not
 *   echoed, as a URL that does not parse may still hold a password.
 */
export function parseRemoteUrl(input: string): RemoteUrl {
  let parsed: URL;
  try {
    parsed = new URL(input);
  } catch {
    throw new TownError("invalid_argument", "git: the repository URL is not a valid URL");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TownError(
      "invalid_argument",
      `git: ${printable(parsed.protocol, 40)}// URLs are not supported, only http:// and https://`,
    );
  }
  const credentials =
    parsed.username || parsed.password
      ? {
          username: decodeURIComponent(parsed.username),
          password: decodeURIComponent(parsed.password),
        }
      : undefined;
  parsed.username = "";
  parsed.password = "";
  parsed.hash = "";
  parsed.pathname = parsed.pathname.replace(/\/+$/, "");
  const url = parsed.href.replace(/\/+$/, "");
  return { url, display: `${parsed.origin}${parsed.pathname}`, credentials };
}

/**
 * The credentials to use: a given username or password is taken over the
 * one in the URL; undefined when there are none at all.
 */
export function credentialsFor(
  remote: RemoteUrl,
  username: string | undefined,
  password: string | undefined,
): Credentials | undefined {
  const user = username ?? remote.credentials?.username;
  const secret = password ?? remote.credentials?.password;
  if (user === undefined && secret === undefined) return undefined;
  return { username: user ?? "", password: secret ?? "" };
}

/** Branch names as git allows them, less what could be read as an option or a path trick. */
export function checkBranchName(branch: string): void {
  const valid =
    /^[A-Za-z0-9._/-]{1,200}$/.test(branch) &&
    !branch.startsWith("-") &&
    !branch.startsWith("/") &&
    !branch.endsWith("/") &&
    !branch.endsWith(".lock") &&
    !branch.includes("..") &&
    !branch.includes("//");
  if (!valid) {
    throw new TownError("invalid_argument", `git: "${printable(branch)}" is not a valid branch`);
  }
}

/**
 * A text with every URL redacted and, for good measure, the password
 * (as written, percent-encoded, and inside a basic-auth header) removed.
 */
export function redactSecrets(text: string, credentials: Credentials | undefined): string {
  if (!credentials?.password) return redactText(text);
  const basic = Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64");
  return redactText(text, [credentials.password, basic]);
}
