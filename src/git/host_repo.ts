/**
 * The user's repository, seen from the host: where it is, what is checked
 * out, and who commits there. Read with the host's own git, as the user,
 * so worktrees, `GIT_DIR` layouts and the user's config all count. Nothing
 * here writes to the repository.
 */
import { run } from "../proc/runner.ts";

export interface HostRepo {
  /** The working tree's top level. */
  root: string;
  /** The repository's common git dir (objects and refs; the same for every worktree). */
  gitDir: string;
  /** The checked-out branch (short name); absent on a detached HEAD. */
  branch?: string;
  /** HEAD's commit; absent in a repository without commits. */
  head?: string;
  /** user.name and user.email as the user's git sees them here, for the bottle's commits. */
  identity: { name?: string; email?: string };
}

/** Environment for the host's git: no prompts, no pager, the user's own config. */
export const HOST_GIT_ENV = { GIT_TERMINAL_PROMPT: "0", GIT_PAGER: "cat", LC_ALL: "C" };

async function git(cwd: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(["git", "-C", cwd, ...args], { check: false, env: HOST_GIT_ENV });
    return { code: r.code, out: r.stdout.trim() };
  } catch {
    return { code: 127, out: "" }; // no git on this host: not a repository then
  }
}

/** The repository `cwd` is in, or undefined outside one (or in a bare repository). */
export async function findHostRepo(cwd: string): Promise<HostRepo | undefined> {
  const top = await git(cwd, [
    "rev-parse",
    "--path-format=absolute",
    "--show-toplevel",
    "--git-common-dir",
  ]);
  if (top.code !== 0) return undefined;
  const [root, gitDir] = top.out.split("\n");
  if (!root || !gitDir) return undefined;
  const [branch, head, name, email] = await Promise.all([
    git(root, ["symbolic-ref", "--quiet", "--short", "HEAD"]),
    git(root, ["rev-parse", "--quiet", "--verify", "HEAD^{commit}"]),
    git(root, ["config", "user.name"]),
    git(root, ["config", "user.email"]),
  ]);
  return {
    root,
    gitDir,
    ...(branch.code === 0 && branch.out ? { branch: branch.out } : {}),
    ...(head.code === 0 && head.out ? { head: head.out } : {}),
    identity: {
      ...(name.code === 0 && name.out ? { name: name.out } : {}),
      ...(email.code === 0 && email.out ? { email: email.out } : {}),
    },
  };
}

/** user.name and user.email from the user's global config (outside any repository). */
export async function globalGitIdentity(): Promise<{ name?: string; email?: string }> {
  const [name, email] = await Promise.all([
    git(".", ["config", "--global", "user.name"]),
    git(".", ["config", "--global", "user.email"]),
  ]);
  return {
    ...(name.code === 0 && name.out ? { name: name.out } : {}),
    ...(email.code === 0 && email.out ? { email: email.out } : {}),
  };
}
