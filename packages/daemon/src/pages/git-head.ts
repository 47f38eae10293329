/**
 * Which commit a git page's branch is at, asked without cloning, so a
 * scheduled or hooked refresh of an unchanged branch does nothing.
 */
import { emptyRepository } from "../git/errors.js";
import { remoteCommit } from "../git/network.js";
import { checkBranchName, parseRemoteUrl } from "../git/remote.js";
import { checkTimeout, deadline } from "../git/transport.js";
import { DEFAULT_GIT_MAX_OBJECT_BYTES } from "../storage/seed.js";

export const DEFAULT_REMOTE_HEAD_TIMEOUT_MS = 60_000;
/** The ref listing of a repository with very many branches and tags (protocol v1 lists them all). */
const MAX_LISTING_BYTES = 32 * 1024 * 1024;

/**
 * The commit `branch` (the remote's default branch when null) points to.
 * Credentials in `url` are used, never shown.
 * @throws TownError `invalid_argument` (URL, branch), `not_found` (no such
 *   branch, an empty repository), `io` (network, HTTP, timeout).
 */
export async function remoteHead(
  url: string,
  branch: string | null,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<string> {
  const remote = parseRemoteUrl(url);
  if (branch !== null) checkBranchName(branch);
  const bound = deadline(
    checkTimeout(options.timeoutMs ?? DEFAULT_REMOTE_HEAD_TIMEOUT_MS),
    options.signal,
  );
  const session = {
    url: remote.url,
    display: remote.display,
    branch: branch ?? undefined,
    credentials: remote.credentials,
    maxDownloadBytes: MAX_LISTING_BYTES,
    maxObjectBytes: DEFAULT_GIT_MAX_OBJECT_BYTES,
    signal: bound.signal,
    onProgress: undefined,
  };
  try {
    const commit = await remoteCommit(session);
    if (commit === null) throw emptyRepository(session, "fetch");
    return commit;
  } finally {
    bound.stop();
  }
}
