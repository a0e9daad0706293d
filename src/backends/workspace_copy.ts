/**
 * The workspace on an engine that does not see this host's files
 * (`transport: copy`): the host repository goes to the bundle as a copy,
 * and what the bottle pushes comes back, both through the engine alone.
 *
 * At launch, `git bundle` of the repository's branches and tags (never other
 * bottles' `bottle/*` branches) and the starting commit streams into a
 * short-lived container that unpacks it into the bottle's workspace volume.
 * The gate lands accepted pushes there under `bottle/<name>/`. Fetching
 * reads them back out of the volume as another git bundle (only what the
 * host lacks) and fetches that into the host repository, never forced.
 * Both containers run the bundle image, without network or capabilities
 * beyond the one the seed needs to hand the volume to the bundle's user.
 */
import type { DockerCli } from "../engine/docker_cli.ts";
import type { HostUpstreamPlan } from "../plan/plan_types.ts";
import type { HostUpstream } from "../bundle/git_gate/gate_config.ts";
import { HOST_GIT_ENV } from "../git/host_repo.ts";
import { run, spawn } from "../proc/runner.ts";
import { UserError } from "../errors.ts";
import { terminalSafe } from "../text/terminal_safe.ts";
import { missingObjects } from "../git/missing_objects.ts";
import { BUNDLE_UID } from "../bundle/init/bundle_manifest.ts";

/** What `fetch` needs, kept in the bottle's record. */
export interface CopiedLanding {
  /** The host repository's git dir. */
  repo: string;
  /** `refs/heads/bottle/<name>/` */
  prefix: string;
  volume: string;
  /** The bundle image (it has git), by id. */
  image: string;
}

const SEED = "/seed";

/** Unpacks the bundle on stdin (when $1 is 1) into the volume, then gives it to the bundle user. */
const SEED_SCRIPT = `set -eu
git init --quiet --bare ${SEED}/repo.git
if [ "$1" = 1 ]; then
  cat > ${SEED}/in.bundle
  git --git-dir=${SEED}/repo.git fetch --quiet --no-write-fetch-head ${SEED}/in.bundle '+refs/*:refs/*'
  rm ${SEED}/in.bundle
fi
chown -R "$2" ${SEED}
`;

/**
 * Copies the host repository into the workspace volume, as the bottle
 * starts from it (`start.commit` may be the commit of uncommitted changes,
 * which no ref names).
 */
export async function seedWorkspace(
  docker: DockerCli,
  u: HostUpstreamPlan,
  start: HostUpstream["start"],
  opts: { image: string; container: string; labels: Record<string, string> },
): Promise<void> {
  const refs = await run([
    "git",
    `--git-dir=${u.hostGitDir}`,
    "for-each-ref",
    "--format=%(refname)",
    "refs/heads/",
    "refs/tags/",
  ], { env: HOST_GIT_ENV });
  const copied = refs.stdout.split("\n").filter((r) => r && !r.startsWith("refs/heads/bottle/"));
  const empty = copied.length === 0 && !start.commit;
  const labels = Object.entries(opts.labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
  const args = [
    "run",
    "--rm",
    "--interactive",
    "--name",
    opts.container,
    ...labels,
    "--network",
    "none",
    "--user",
    "0:0",
    "--cap-drop",
    "ALL",
    "--cap-add",
    "CHOWN",
    "--security-opt",
    "no-new-privileges",
    "--mount",
    `type=volume,source=${u.copyVolume},target=${SEED}`,
    "--entrypoint",
    "sh",
    opts.image,
    "-c",
    SEED_SCRIPT,
    "seed",
    empty ? "0" : "1",
    `${BUNDLE_UID}:${BUNDLE_UID}`,
  ];
  if (empty) {
    await docker.run(args);
    return;
  }
  const pack = spawn([
    "git",
    `--git-dir=${u.hostGitDir}`,
    "bundle",
    "create",
    "--quiet",
    "-",
    "--exclude=bottle/*",
    "--branches",
    "--tags",
    ...(start.commit ? [start.commit] : []),
  ], { env: HOST_GIT_ENV, stdout: "capture", stderr: "capture" });
  const [seeded, packed] = await Promise.allSettled([
    docker.run(args, { stdin: pack.process.stdout }),
    pack.status,
  ]);
  // The container's failure first: a pack cut off by it fails only for that.
  if (seeded.status === "rejected") throw seeded.reason;
  if (packed.status === "fulfilled" && packed.value.code !== 0) {
    const why = (await pack.stderrText()).trim();
    throw new UserError(`Could not copy ${u.hostGitDir} for the bottle: ${why}`);
  }
}

/**
 * Brings the bottle's landed branches from its workspace volume into the
 * host repository; returns their short names (`bottle/<name>/<branch>`).
 * The refs are listed first, objects the host lacks come as a git bundle
 * (only what the host's branches at launch did not hold, else everything),
 * and each ref is then set on the host only as a fast-forward (or created).
 */
export async function fetchLandings(docker: DockerCli, l: CopiedLanding): Promise<string[]> {
  const inVolume = (script: string, args: string[], stdout: Deno.FsFile | "text") =>
    volumeRun(docker, l, script, args, stdout);
  const listed = await inVolume(
    `git --git-dir=${SEED}/repo.git for-each-ref --format='%(objectname) %(refname)' "$1"`,
    [l.prefix],
    "text",
  );
  const landed = listed.split("\n").filter(Boolean).map((line) => {
    const [sha, ref] = line.split(" ");
    return { sha: sha!, ref: ref! };
  }).filter((x) => /^[0-9a-f]{40,64}$/.test(x.sha) && x.ref.startsWith(l.prefix));
  if (landed.length === 0) return [];

  const missing = () => missingObjects(l.repo, landed.map((x) => x.sha));
  if ((await missing()).length > 0) {
    const file = await Deno.makeTempFile({ prefix: "bottle-landings-", suffix: ".bundle" });
    try {
      // Thin first; the host may have lost commits the bottle started from
      // (a branch deleted and pruned), and a thin bundle may leave out a
      // tip the launch's branches already held: then everything.
      for (const thin of [true, false]) {
        const out = await Deno.open(file, { write: true, truncate: true });
        await inVolume(
          `cd ${SEED}/repo.git
if [ "$2" = thin ]; then
  git bundle create --quiet - --branches="$1" --not --exclude='bottle/*' --branches --tags 2>/dev/null || true
else
  git bundle create --quiet - --branches="$1"
fi`,
          [`${l.prefix.slice("refs/heads/".length)}*`, thin ? "thin" : "full"],
          out,
        );
        if ((await Deno.stat(file)).size === 0) continue;
        const unbundled = await hostGit(l.repo, ["bundle", "unbundle", file]);
        if (unbundled.code === 0 && (await missing()).length === 0) break;
        if (!thin) {
          throw new UserError(
            `Could not bring the bottle's pushes into ${l.repo}: ${
              // git's words may hold the agent's branch names.
              terminalSafe(unbundled.stderr.trim()) || "commits are missing from the copy"}`,
          );
        }
      }
    } finally {
      await Deno.remove(file).catch(() => {});
    }
  }

  const refused: string[] = [];
  for (const x of landed) {
    const now = await hostGit(l.repo, ["rev-parse", "--verify", "--quiet", x.ref]);
    const old = now.code === 0 ? now.stdout.trim() : "";
    if (old === x.sha) continue;
    // Fetched before and built on here since: the push is in the host repository already.
    if (old && (await hostGit(l.repo, ["merge-base", "--is-ancestor", x.sha, old])).code === 0) {
      continue;
    }
    if (old && (await hostGit(l.repo, ["merge-base", "--is-ancestor", old, x.sha])).code !== 0) {
      refused.push(`${x.ref.slice("refs/heads/".length)} (moved on this host: not a fast-forward)`);
      continue;
    }
    // The old value (or none) must still hold: nothing is overwritten in between.
    const set = await hostGit(l.repo, [
      "-c",
      "core.hooksPath=/dev/null",
      "update-ref",
      "--no-deref",
      "-m",
      "bottle fetch",
      x.ref,
      x.sha,
      old || "0".repeat(x.sha.length),
    ]);
    if (set.code !== 0) refused.push(`${x.ref.slice("refs/heads/".length)} (${set.stderr.trim()})`);
  }
  if (refused.length > 0) {
    // Branch names are the agent's.
    throw new UserError(
      `Could not bring the bottle's pushes into ${l.repo}: ${terminalSafe(refused.join(", "))}`,
    );
  }
  return landed.map((x) => x.ref.slice("refs/heads/".length));
}

/** A script in a short-lived container with the volume read-only; its stdout as text or into a file. */
async function volumeRun(
  docker: DockerCli,
  l: CopiedLanding,
  script: string,
  args: string[],
  stdout: Deno.FsFile | "text",
): Promise<string> {
  const child = docker.spawn([
    "run",
    "--rm",
    "--network",
    "none",
    "--user",
    `${BUNDLE_UID}:${BUNDLE_UID}`,
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--mount",
    `type=volume,source=${l.volume},target=${SEED},readonly`,
    "--entrypoint",
    "sh",
    l.image,
    "-c",
    `set -eu\n${script}`,
    "volume",
    ...args,
  ], { stdout: "capture", stderr: "capture" });
  const [status, text, stderr] = await Promise.all([
    child.status,
    stdout === "text"
      ? new Response(child.process.stdout).text()
      : child.process.stdout.pipeTo(stdout.writable).then(() => ""),
    child.stderrText(),
  ]);
  if (status.code !== 0) {
    throw new UserError(
      `Could not read the bottle's pushes from volume ${l.volume}: ${terminalSafe(stderr.trim())}`,
    );
  }
  return text;
}

function hostGit(gitDir: string, args: string[]) {
  return run(["git", `--git-dir=${gitDir}`, ...args], { env: HOST_GIT_ENV, check: false });
}
