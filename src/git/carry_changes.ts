/**
 * The bottle's starting point in the user's repository: HEAD, plus, when
 * the working tree has changes (staged, unstaged or untracked but not
 * ignored), one extra commit holding them, so nothing the user sees in
 * their editor is missing from the bottle. Made with a private index: the
 * user's index, working tree, branches and stash are never touched; the
 * commit's objects go into the repository's object store, unreferenced
 * (git's gc removes them once no bottle branch holds them).
 */
import { run } from "../proc/runner.ts";
import { HOST_GIT_ENV, type HostRepo } from "./host_repo.ts";

export interface StartingPoint {
  /** The commit the bottle's branch starts at (absent in a repository with nothing to commit). */
  commit?: string;
  /** True when `commit` is the extra commit of uncommitted changes. */
  carried: boolean;
}

export async function startingPoint(repo: HostRepo): Promise<StartingPoint> {
  const tmp = await Deno.makeTempDir({ prefix: "bottle-index-" });
  try {
    const index = `${tmp}/index`;
    const indexPath =
      (await git(repo, ["rev-parse", "--path-format=absolute", "--git-path", "index"]))
        .trim();
    // A copy of the user's index keeps git's stat cache: `add -A` rereads only changed files.
    await Deno.copyFile(indexPath, index).catch(() => {});
    const env = { GIT_INDEX_FILE: index };
    await git(repo, ["add", "--all", "--", "."], env);
    const tree = (await git(repo, ["write-tree"], env)).trim();
    const headTree = repo.head
      ? (await git(repo, ["rev-parse", `${repo.head}^{tree}`])).trim()
      : (await git(repo, ["hash-object", "-t", "tree", "/dev/null"])).trim();
    if (tree === headTree) return { ...(repo.head ? { commit: repo.head } : {}), carried: false };
    const who = {
      GIT_AUTHOR_NAME: repo.identity.name ?? "bottle",
      GIT_AUTHOR_EMAIL: repo.identity.email ?? "bottle@localhost",
      GIT_COMMITTER_NAME: repo.identity.name ?? "bottle",
      GIT_COMMITTER_EMAIL: repo.identity.email ?? "bottle@localhost",
    };
    const commit = (await git(repo, [
      "commit-tree",
      tree,
      ...(repo.head ? ["-p", repo.head] : []),
      "-m",
      `bottle: uncommitted changes in ${repo.root} when the bottle started`,
    ], who)).trim();
    return { commit, carried: true };
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

async function git(repo: HostRepo, args: string[], env: Record<string, string> = {}) {
  const r = await run(["git", "-C", repo.root, ...args], { env: { ...HOST_GIT_ENV, ...env } });
  return r.stdout;
}
