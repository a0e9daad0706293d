/**
 * The gate's bare mirror of an upstream, made when the gate starts. For the
 * host repository it borrows the repository's objects (git alternates), so
 * a mirror of any size is ready in the time it takes to copy its refs; the
 * host's own `bottle/*` branches (other bottles' work) are left out. The
 * bottle's branch is set to where the bottle starts (HEAD, or the commit of
 * uncommitted changes). The mirror's config and hooks are the gate's: the
 * agent reaches the mirror only through the smart HTTP protocol.
 */
import type { HostUpstream } from "./gate_config.ts";
import { git } from "./gate_git.ts";

export function mirrorPath(mirrorsDir: string, upstream: { name: string }): string {
  return `${mirrorsDir}/${upstream.name}.git`;
}

/** Every mirror's own rules: the gate's hooks, smart HTTP only, no rewriting history. */
export async function configureMirror(dir: string, hooksDir: string): Promise<void> {
  const config: [string, string][] = [
    ["core.hooksPath", hooksDir],
    ["receive.denyNonFastForwards", "true"],
    ["receive.denyDeletes", "true"],
    ["receive.fsckObjects", "true"],
    ["receive.advertisePushOptions", "false"],
    ["http.receivepack", "true"],
    ["http.uploadpack", "true"],
    ["uploadpack.allowFilter", "true"],
    // The borrowed objects' refs (other bottles' branches, the stash) are not
    // advertised as `.have` lines to a pushing client.
    ["core.alternateRefsCommand", "true"],
    ["core.logAllRefUpdates", "true"],
    ["gc.auto", "0"],
  ];
  for (const [k, v] of config) await git(dir, ["config", k, v], { safe: false });
}

export async function makeMirror(
  mirrorsDir: string,
  hooksDir: string,
  u: HostUpstream,
): Promise<string> {
  const dir = mirrorPath(mirrorsDir, u);
  await Deno.mkdir(dir, { recursive: true });
  await git(dir, ["init", "--quiet", "--bare"]);
  // The host repository must be the one the plan named: on an engine that
  // does not see this host's files the mount is an empty directory.
  const hostObjects = `${u.bundlePath}/objects`;
  const seen = await Deno.stat(`${u.bundlePath}/HEAD`).then(() => true, () => false);
  if (!seen) {
    throw new Error(
      `the host repository is not visible in the bundle at ${u.bundlePath}: does the docker engine share this host's files?`,
    );
  }
  await Deno.writeTextFile(`${dir}/objects/info/alternates`, `${hostObjects}\n`);
  await configureMirror(dir, hooksDir);
  await git(dir, [
    "fetch",
    "--quiet",
    "--no-tags",
    "--no-write-fetch-head",
    u.bundlePath,
    "+refs/heads/*:refs/heads/*",
    "+refs/tags/*:refs/tags/*",
    "^refs/heads/bottle/*",
  ]);
  const { branch, commit } = u.start;
  if (branch && commit) {
    await git(dir, ["update-ref", `refs/heads/${branch}`, commit]);
    await git(dir, ["symbolic-ref", "HEAD", `refs/heads/${branch}`]);
  } else if (commit) {
    await git(dir, ["update-ref", "--no-deref", "HEAD", commit]);
  } else if (branch) {
    await git(dir, ["symbolic-ref", "HEAD", `refs/heads/${branch}`]);
  }
  return dir;
}
