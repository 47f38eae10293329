/** A mistake in how a command was called: reported like the API's problems, exit code 2. */
export class UsageError extends Error {}
