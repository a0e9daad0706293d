/** The branches a bottle's pushes made in the host repository (kept after `stop`). */
import { run } from "../proc/runner.ts";
import { HOST_GIT_ENV } from "./host_repo.ts";

export async function landedBranches(landing: { repo: string; prefix: string }): Promise<string[]> {
  const r = await run([
    "git",
    `--git-dir=${landing.repo}`,
    "for-each-ref",
    "--format=%(refname:strip=2)",
    landing.prefix,
  ], { check: false, env: HOST_GIT_ENV }).catch(() => undefined);
  return r?.code === 0 ? r.stdout.split("\n").filter(Boolean) : [];
}
