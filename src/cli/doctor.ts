/**
 * `bottle doctor`: is this host ready to run bottles? Each check says what it
 * found, and each failure says how to fix it. Exits 1 when a required check
 * fails.
 */
import { pathExists } from "../state/path_exists.ts";
import type { Command } from "commander";
import { CommandError, run } from "../proc/runner.ts";
import { SilentExit, UserError } from "../errors.ts";
import type { CliContext } from "./context.ts";
import {
  compareVersions,
  MIN_SMOLVM_VERSION,
  MOUNT_SOCKET_SMOLVM_VERSION,
  SmolvmCli,
} from "../backends/smolvm/smolvm_cli.ts";
import { DockerCli } from "../engine/docker_cli.ts";
import { readEngineKind } from "../engine/engine_probe.ts";
import { type EngineFinding, kindFindings } from "../engine/engine_kind.ts";
import { PIPELOCK_IMAGE, PIPELOCK_IMAGE_ENV } from "../bundle/pipelock/pipelock_release.ts";

/** One line of `bottle doctor` (the engine's findings have the same shape). */
export type Check = EngineFinding;

/** The bundle image's repository: its tags are `bottle/bundle:<context hash>`. */
const BUNDLE_REPOSITORY = "bottle/bundle";
const PULL_PROBE_TIMEOUT_MS = 10_000;

const MIN_FREE_GB = 5;

export async function runChecks(ctx: CliContext): Promise<Check[]> {
  const docker = ctx.env.BOTTLE_DOCKER ?? "docker";
  const smolvm = ctx.env.SMOLVM ?? "smolvm";
  const cli = new DockerCli({ bin: docker, env: ctx.env });
  const dockerRun = (args: string[], timeoutMs = 15_000) =>
    tryRun(() => cli.run(args, { check: false, timeoutMs }));
  const checks: Check[] = [];

  const client = await dockerRun(["version", "--format", "{{.Client.Version}}"]);
  checks.push(
    client.ran
      ? {
        name: "docker client",
        ok: true,
        required: true,
        detail: client.stdout.split("\n")[0] ?? "",
      }
      : {
        name: "docker client",
        ok: false,
        required: true,
        detail: client.error,
        fix:
          "install Docker (docker.io on Debian/Ubuntu, Docker Desktop, OrbStack or Colima on macOS)",
      },
  );
  const engine = await dockerRun(["version", "--format", "{{.Server.Version}}"]);
  const engineUp = engine.ran && engine.code === 0;
  checks.push(
    engineUp ? { name: "docker engine", ok: true, required: true, detail: engine.stdout.trim() } : {
      name: "docker engine",
      ok: false,
      required: true,
      detail: engine.ran ? lastLine(engine.stderr) : engine.error,
      fix:
        "start the Docker engine (`sudo systemctl start docker`, or open Docker Desktop) and check you may use its socket",
    },
  );

  // What the engine is and what works on it; only an engine that answers can say.
  if (engineUp) checks.push(...await engineChecks(cli));

  checks.push(await smolvmCheck(new SmolvmCli({ binary: smolvm })));

  if (engineUp) checks.push(await pipelockImageCheck(cli, dockerRun, ctx));

  for (
    const [what, dir] of [["state dir", ctx.dirs.state], ["cache dir", ctx.dirs.cache]] as const
  ) {
    const free = await freeGb(dir);
    checks.push(
      free === undefined
        ? {
          name: `disk (${what})`,
          ok: false,
          required: false,
          detail: `cannot measure free space at "${dir}"`,
        }
        : {
          name: `disk (${what})`,
          ok: free >= MIN_FREE_GB,
          required: true,
          detail: `${free.toFixed(1)} GB free at "${dir}"`,
          ...(free >= MIN_FREE_GB
            ? {}
            : { fix: `free at least ${MIN_FREE_GB} GB (images and VM artifacts live here)` }),
        },
    );
  }
  return checks;
}

export function registerDoctor(program: Command, ctx: CliContext): void {
  program.command("doctor")
    .description(
      "Check docker (its kind, what works on it, known engine bugs), smolvm, the pipelock image and disk space",
    )
    .option("--json", "print the checks as JSON")
    .action(async (opts: { json?: boolean }) => {
      const checks = await runChecks(ctx);
      if (opts.json) ctx.out(JSON.stringify(checks, null, 2));
      else {
        for (const c of checks) {
          const mark = c.ok ? "ok  " : c.required ? "FAIL" : "warn";
          ctx.out(`${mark}  ${c.name}: ${c.detail}${c.fix ? `\n      fix: ${c.fix}` : ""}`);
        }
      }
      if (checks.some((c) => c.required && !c.ok)) throw new SilentExit(1);
    });
}

/** smolvm is optional: only `--backend smolmachines` needs it. */
async function smolvmCheck(cli: SmolvmCli): Promise<Check> {
  const name = "smolvm";
  try {
    const v = await cli.assertSupported({ timeoutMs: 15_000 });
    const sockets = compareVersions(v, MOUNT_SOCKET_SMOLVM_VERSION) >= 0
      ? "has --mount-socket (a VM with no network, on engines whose container addresses are not routable here)"
      : `no --mount-socket before ${MOUNT_SOCKET_SMOLVM_VERSION}: only engines whose container addresses are routable here (Docker Engine on Linux, OrbStack)`;
    return { name, ok: true, required: false, detail: `${v.text}: ${sockets}` };
  } catch (err) {
    const missing = err instanceof UserError && /^Cannot run smolvm/.test(err.message);
    return {
      name,
      ok: false,
      required: false,
      detail: missing
        ? "not installed (only needed for --backend smolmachines)"
        : (err as Error).message,
      fix:
        `install smolvm >= ${MIN_SMOLVM_VERSION} (older versions do not enforce the egress policy)`,
    };
  }
}

type Ran =
  | { ran: true; code: number; stdout: string; stderr: string; timedOut: boolean }
  | { ran: false; error: string };
type DockerRun = (args: string[], timeoutMs?: number) => Promise<Ran>;

async function tryRun(
  call: () => Promise<{ code: number; stdout: string; stderr: string; timedOut: boolean }>,
): Promise<Ran> {
  try {
    const r = await call();
    return { ran: true, code: r.code, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut };
  } catch (err) {
    return { ran: false, error: (err as Error).message };
  }
}

/** The engine kind, smolmachines on it and its version bugs, from `docker info` and the context. */
async function engineChecks(cli: DockerCli): Promise<Check[]> {
  try {
    return kindFindings(await readEngineKind(cli));
  } catch (err) {
    const why = err instanceof CommandError
      ? err.timedOut ? "timed out" : lastLine(err.stderrTail)
      : (err as Error).message;
    return [{
      name: "engine kind",
      ok: false,
      required: false,
      detail: `cannot read \`docker info --format '{{json .}}'\`: ${why}`,
    }];
  }
}

/** What doctor found out about the pipelock image the bundle copies `/pipelock` from. */
export interface PipelockFacts {
  image: string;
  /** Chosen by BOTTLE_PIPELOCK_IMAGE (else the pinned default). */
  fromEnv: boolean;
  /** `docker image inspect` found it. */
  local: boolean;
  /** Whether a registry answered for it (asked only when it is not local). */
  pull?: { ok: true; how: string } | { ok: false; reason: string };
  /** This bottle's own bundle image, when it is built (then pipelock is not needed to start). */
  bundleBuilt?: string;
  /** Other `bottle/bundle:<hash>` images here (other bottle versions or pipelock images). */
  otherBundles: string[];
}

/**
 * The pipelock check: the image must be here or pullable, unless this
 * bottle's bundle image is already built (a rebuild would need it again).
 */
export function pipelockCheck(f: PipelockFacts): Check {
  const name = "pipelock image";
  const which = f.fromEnv ? `${f.image} (from ${PIPELOCK_IMAGE_ENV})` : `${f.image} (pinned)`;
  const fix = f.fromEnv
    ? `make ${f.image} present here (\`docker load\`, or build it), or point ${PIPELOCK_IMAGE_ENV} at a local image holding /pipelock`
    : `set ${PIPELOCK_IMAGE_ENV} to a local image holding /pipelock`;
  const others = f.otherBundles.length > 0
    ? `; ${f.otherBundles.length} other ${BUNDLE_REPOSITORY} image(s) are here (${
      f.otherBundles.slice(0, 3).join(", ")
    }${
      f.otherBundles.length > 3 ? ", …" : ""
    }), built by another bottle version or with another ${PIPELOCK_IMAGE_ENV}: this bottle does not use them`
    : "";
  const built = f.bundleBuilt
    ? `; this bottle's bundle image ${f.bundleBuilt} is built, so starting needs no pipelock image`
    : "";
  if (f.local) {
    return {
      name,
      ok: true,
      required: !f.bundleBuilt,
      detail: `${which} is present locally${built}`,
    };
  }
  if (f.pull?.ok) {
    return {
      name,
      ok: true,
      required: !f.bundleBuilt,
      detail: `${which} is not here but can be pulled (${f.pull.how} answered)${built}`,
    };
  }
  const reason = f.pull && !f.pull.ok ? ` (${f.pull.reason})` : "";
  if (f.bundleBuilt) {
    return {
      name,
      ok: true,
      required: false,
      detail:
        `not needed now: this bottle's bundle image ${f.bundleBuilt} is built; ${which} is not here and cannot be pulled from here${reason}, so a rebuild (\`bottle build --force\`) would fail`,
      fix,
    };
  }
  return {
    name,
    ok: false,
    required: true,
    detail:
      `${which} is not here and cannot be pulled from here${reason}, and this bottle's bundle image is not built: \`bottle start\` cannot build it${others}`,
    fix,
  };
}

async function pipelockImageCheck(
  cli: DockerCli,
  dockerRun: DockerRun,
  ctx: CliContext,
): Promise<Check> {
  const fromEnv = Boolean(ctx.env[PIPELOCK_IMAGE_ENV]);
  const image = ctx.env[PIPELOCK_IMAGE_ENV] || PIPELOCK_IMAGE;
  const [local, bundleBuilt, tags] = await Promise.all([
    cli.imageExists(image).catch(() => false),
    thisBundleImage(cli, ctx),
    dockerRun(["image", "ls", BUNDLE_REPOSITORY, "--format", "{{.Repository}}:{{.Tag}}"]),
  ]);
  const otherBundles = tags.ran && tags.code === 0
    ? tags.stdout.split("\n").map((t) => t.trim()).filter((t) => t && t !== bundleBuilt)
    : [];
  return pipelockCheck({
    image,
    fromEnv,
    local,
    ...(local ? {} : { pull: await pullProbe(dockerRun, image) }),
    ...(bundleBuilt ? { bundleBuilt } : {}),
    otherBundles,
  });
}

/**
 * Whether a registry answers for `image`, asked from this host without
 * pulling: `docker manifest inspect` (or `docker buildx imagetools inspect`
 * where the manifest command is missing), with a short timeout.
 */
async function pullProbe(
  dockerRun: DockerRun,
  image: string,
): Promise<{ ok: true; how: string } | { ok: false; reason: string }> {
  const probes = [["manifest", "inspect", image], ["buildx", "imagetools", "inspect", image]];
  let reason = "";
  for (const args of probes) {
    const r = await dockerRun(args, PULL_PROBE_TIMEOUT_MS);
    const how = `docker ${args.slice(0, -1).join(" ")}`;
    if (!r.ran) return { ok: false, reason: r.error };
    if (r.code === 0) return { ok: true, how };
    if (r.timedOut) {
      return { ok: false, reason: `${how}: no answer in ${PULL_PROBE_TIMEOUT_MS / 1000} s` };
    }
    reason = `${how}: ${lastLine(r.stderr)}`;
    // Only a missing subcommand sends us to the next probe.
    if (!/unknown command|is not a docker command|unknown flag/i.test(r.stderr)) break;
  }
  return { ok: false, reason };
}

/**
 * The tag of this bottle's bundle image if it is built: the same lookup
 * `bottle start` makes (its context hash), without building anything.
 */
async function thisBundleImage(cli: DockerCli, ctx: CliContext): Promise<string | undefined> {
  // Loaded here: the image lookup is doctor's alone, and every command loads this module.
  const { ensureBundleImage } = await import("../build/bottle_images.ts");
  try {
    return await ensureBundleImage(
      cli,
      { source: "builtin", repository: BUNDLE_REPOSITORY, buildArgs: {} },
      { buildCaPem: "", env: ctx.env, cacheDir: ctx.dirs.cache },
      { progress: () => {}, lookOnly: true },
    );
  } catch {
    // ImageNotBuilt, or a context that cannot be made here: not built, as far as doctor can tell.
    return undefined;
  }
}

/** Free space of the nearest existing ancestor of `dir`, in GB. */
async function freeGb(dir: string): Promise<number | undefined> {
  let d = dir;
  while (d !== "/" && !(await pathExists(d))) d = d.replace(/\/[^/]+\/?$/, "") || "/";
  const r = await tryRun(() => run(["df", "-Pk", d], { check: false, timeoutMs: 15_000 }));
  if (!r.ran || r.code !== 0) return undefined;
  const kb = Number(r.stdout.trim().split("\n")[1]?.split(/\s+/)[3]);
  return Number.isFinite(kb) ? kb / 1024 / 1024 : undefined;
}

function lastLine(s: string): string {
  return s.trim().split("\n").at(-1) ?? "";
}
