/**
 * git as the gate runs it: never a prompt, never a pager, never a hook or
 * config of the host repository's (it may hold anything), and any
 * ownership accepted (the host repository's files are the user's, whose id
 * the bundle may not share, as under Docker Desktop).
 */
import { run, type RunResult } from "../../proc/runner.ts";

export const SAFE_CONFIG = [
  "-c",
  "safe.directory=*",
  "-c",
  "core.hooksPath=/dev/null",
  "-c",
  "gc.auto=0",
  "-c",
  "maintenance.auto=false",
  "-c",
  "core.quotePath=false",
];

/** What every git the gate starts sees, besides `extra`: nothing from the hook's repository env. */
export function gitEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: "/nonexistent",
    GIT_TERMINAL_PROMPT: "0",
    GIT_CONFIG_NOSYSTEM: "1",
    LC_ALL: "C",
    ...extra,
  };
}

/** `git --git-dir=DIR ARGS` with the gate's config and a clean env (`noGitDir`: a clone to DIR). */
export function git(
  gitDir: string,
  args: string[],
  opts: {
    env?: Record<string, string>;
    stdin?: string;
    check?: boolean;
    safe?: boolean;
    noGitDir?: boolean;
  } = {},
): Promise<RunResult> {
  return run(
    [
      "git",
      ...(opts.safe === false ? [] : SAFE_CONFIG),
      ...(opts.noGitDir ? [] : [`--git-dir=${gitDir}`]),
      ...args,
    ],
    {
      clearEnv: true,
      env: gitEnv(opts.env),
      ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
      check: opts.check ?? true,
    },
  );
}
