/**
 * The two kinds of failure bottle tells apart: a user's mistake (bad config,
 * bad flags, a missing tool) exits 2 with one clear message and no stack;
 * everything else is a bug or an environment failure and exits 1.
 */

/** A mistake the user can fix: printed as-is, exit code 2. */
export class UserError extends Error {
  override name = "UserError";
  readonly exitCode = 2;
}

/** Thrown when a launch is cancelled by SIGINT/SIGTERM; exit 130/143. */
export class CancelledError extends Error {
  override name = "CancelledError";
  constructor(readonly signal: Deno.Signal) {
    super(`Cancelled by ${signal}`);
  }
  get exitCode(): number {
    return this.signal === "SIGTERM" ? 143 : 130;
  }
}

/** Ends a command with `exitCode` after it has already said everything it had to say. */
export class SilentExit extends Error {
  override name = "SilentExit";
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}
