/**
 * Which of some object ids a repository cannot read, asked of the host's
 * git in one `cat-file --batch-check` (one process, whatever their number).
 * A git that fails to answer counts every id as missing.
 */
import { run } from "../proc/runner.ts";
import { HOST_GIT_ENV } from "./host_repo.ts";

export async function missingObjects(
  gitDir: string,
  ids: string[],
  env: Record<string, string> = {},
): Promise<string[]> {
  if (ids.length === 0) return [];
  const r = await run(["git", `--git-dir=${gitDir}`, "cat-file", "--batch-check=%(objectname)"], {
    env: { ...HOST_GIT_ENV, ...env },
    stdin: ids.join("\n") + "\n",
    check: false,
  });
  if (r.code !== 0) return ids;
  return r.stdout.split("\n").filter((l) => l.endsWith(" missing")).map((l) => l.split(" ")[0]!);
}
