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
  const packErr = packed.status === "fulfilled" && packed.value.code !== 0
    ? await pack.stderrText()
    : undefined;
  if (packErr !== undefined) {
    throw new UserError(`Could not copy ${u.hostGitDir} for the bottle: ${packErr.trim()}`);
  }
  if (seeded.status === "rejected") throw seeded.reason;
}

/**
 * Brings the bottle's landed branches from its workspace volume into the
 * host repository; returns their short names (`bottle/<name>/<branch>`).
 */
export async function fetchLandings(docker: DockerCli, l: CopiedLanding): Promise<string[]> {
  const pattern = `${l.prefix.slice("refs/heads/".length)}*`;
  const file = await Deno.makeTempFile({ prefix: "bottle-landings-", suffix: ".bundle" });
  /** The landed branches as a git bundle in `file`; false when nothing landed. */
  const read = async (thin: boolean): Promise<boolean> => {
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
      // Nothing landed: no bundle (git refuses an empty one).
      `set -eu
cd ${SEED}/repo.git
[ -n "$(git for-each-ref --count=1 "$1")" ] || exit 0
if [ "$3" = thin ]; then
  git bundle create --quiet - --branches="$2" --not --exclude='bottle/*' --branches --tags
else
  git bundle create --quiet - --branches="$2"
fi`,
      "fetch",
      l.prefix,
      pattern,
      thin ? "thin" : "full",
    ], { stdout: "capture", stderr: "capture" });
    const out = await Deno.open(file, { write: true, truncate: true });
    const [status, , stderr] = await Promise.all([
      child.status,
      child.process.stdout.pipeTo(out.writable),
      child.stderrText(),
    ]);
    if (status.code !== 0) {
      throw new UserError(
        `Could not read the bottle's pushes from volume ${l.volume}: ${stderr.trim()}`,
      );
    }
    return (await Deno.stat(file)).size > 0;
  };
  try {
    if (!(await read(true))) return [];
    // The host may have lost commits the bottle started from (a branch
    // deleted and pruned): then the whole history of the landed branches.
    if ((await hostGit(l.repo, ["bundle", "verify", "--quiet", file])).code !== 0) {
      await read(false);
    }
    const fetched = await hostGit(l.repo, [
      "-c",
      "core.hooksPath=/dev/null",
      "fetch",
      "--quiet",
      "--no-tags",
      "--no-write-fetch-head",
      "--no-auto-gc",
      "--no-recurse-submodules",
      file,
      `${l.prefix}*:${l.prefix}*`,
    ]);
    if (fetched.code !== 0) {
      throw new UserError(
        `Could not bring the bottle's pushes into ${l.repo}: ${fetched.stderr.trim()}`,
      );
    }
    const heads = await hostGit(l.repo, ["bundle", "list-heads", file]);
    return heads.stdout.split("\n").flatMap((line) => {
      const ref = line.split(" ")[1];
      return ref?.startsWith(l.prefix) ? [ref.slice("refs/heads/".length)] : [];
    });
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

function hostGit(gitDir: string, args: string[]) {
  return run(["git", `--git-dir=${gitDir}`, ...args], { env: HOST_GIT_ENV, check: false });
}
