import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { DEFAULT_DATA_DIR, SETUP_CODE_FILE } from "@townos/daemon";

/** Where the CLI keeps its session token: `$XDG_CONFIG_HOME/town/token` (mode 0600). */
export function tokenPath(env: NodeJS.ProcessEnv): string {
  const base = env["XDG_CONFIG_HOME"] || join(env["HOME"] || homedir(), ".config");
  return join(base, "town", "token");
}

export async function readToken(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (env["TOWN_TOKEN"]) return env["TOWN_TOKEN"];
  try {
    return (await readFile(tokenPath(env), "utf8")).trim() || undefined;
  } catch {
    return undefined;
  }
}

export async function saveToken(env: NodeJS.ProcessEnv, token: string): Promise<void> {
  const path = tokenPath(env);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
}

export async function forgetToken(env: NodeJS.ProcessEnv): Promise<void> {
  await rm(tokenPath(env), { force: true });
}

/**
 * The first-run setup code from the daemon's data dir (TOWN_DATA_DIR), when
 * this runs on the box with the rights to read it (root: the file is 0600).
 */
export async function readSetupCode(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  try {
    const path = join(env["TOWN_DATA_DIR"] || DEFAULT_DATA_DIR, SETUP_CODE_FILE);
    return (await readFile(path, "utf8")).trim() || undefined;
  } catch {
    return undefined;
  }
}
