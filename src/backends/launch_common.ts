/**
 * The launch steps every backend shares: refuse what this version cannot
 * run, resolve credentials and images before anything exists, open the
 * bottle's state (record, bundle configs, CAs), and start the bundle
 * container. Each step registers its release on the caller's stack before it
 * creates anything.
 */
import type { LaunchRequest } from "./backend.ts";
import type { DockerCli } from "./docker/docker_cli.ts";
import { ensureAgentImage, ensureBundleImage } from "../build/bottle_images.ts";
import { type BundleFiles, UPSTREAM_CA_ENV, writeBundleFiles } from "../bundle/bundle_files.ts";
import { BUNDLE_CONFIG_DIR, BUNDLE_LOG_DIR } from "../bundle/init/bundle_manifest.ts";
import { makePrivateDir } from "../state/private_files.ts";
import { type BottleRecord, writeRecord } from "../state/bottle_record.ts";
import { resolveRouteSecrets } from "../secrets/route_secrets.ts";
import { throwIfCancelled } from "../proc/signals.ts";
import { UserError } from "../errors.ts";
import { agentProgram } from "./agent_program.ts";
import { hostDirs } from "../state/dirs.ts";

/** Extra /etc/hosts entries for the bundle, `name:ip` comma-separated (docker --add-host). */
export const BUNDLE_ADD_HOSTS_ENV = "BOTTLE_BUNDLE_ADD_HOSTS";

export interface Prepared {
  secretEnv: Record<string, string>;
  agentImage: string;
  bundleImage: string;
}

/** Everything that can fail without leaving anything behind: checks, secrets, images. */
export async function prepareLaunch(req: LaunchRequest, docker: DockerCli): Promise<Prepared> {
  const { plan, signal } = req;
  const unsupported = plan.bundle.daemons.filter((d) => d === "git-gate" || d === "supervise");
  if (unsupported.length > 0) {
    throw new UserError(
      `Agent "${plan.bottle.agent}" needs ${
        unsupported.join(" and ")
      }, which this version of bottle does not ship yet: remove git/supervise from its definition`,
    );
  }
  const secretEnv = await resolveRouteSecrets(plan, req.env, req.agent.baseDir);
  const images = { buildCaPem: req.buildCaPem, env: req.env, cacheDir: hostDirs(req.env).cache };
  const buildOpts = { progress: req.progress, signal };
  const agentImage = await ensureAgentImage(docker, plan.images.agent, images, buildOpts);
  const bundleImage = await ensureBundleImage(docker, plan.images.bundle, images, buildOpts);
  throwIfCancelled(signal);
  return { secretEnv, agentImage, bundleImage };
}

export interface OpenedState {
  record: BottleRecord;
  files: BundleFiles;
}

/** The bottle's state dir (removed on teardown), its record, and the bundle's files. */
export async function openState(
  stack: AsyncDisposableStack,
  req: LaunchRequest,
  extra: Partial<BottleRecord> = {},
): Promise<OpenedState> {
  const { plan } = req;
  const { stateDir } = plan.bottle;
  stack.defer(() => Deno.remove(stateDir, { recursive: true }).catch(() => {}));
  await makePrivateDir(stateDir);
  const record: BottleRecord = {
    name: plan.bottle.name,
    agent: plan.bottle.agent,
    backend: plan.bottle.backend,
    createdAt: new Date().toISOString(),
    ownerPid: Deno.pid,
    status: "launching",
    detached: req.detach,
    bundleContainer: plan.bundle.container,
    agentCommand: agentProgram(plan),
    ...extra,
  };
  await writeRecord(stateDir, record);
  const upstreamCaFiles = (req.env[UPSTREAM_CA_ENV] ?? "").split(":").filter(Boolean);
  return { record, files: await writeBundleFiles(plan, { upstreamCaFiles }) };
}

/** Starts the bundle container on `network` and waits until its init says ready. */
export async function startBundle(
  stack: AsyncDisposableStack,
  docker: DockerCli,
  req: LaunchRequest,
  p: { image: string; network: string; files: BundleFiles; secretEnv: Record<string, string> },
): Promise<void> {
  const { plan, signal } = req;
  req.progress("starting the bundle");
  stack.defer(() => docker.removeContainers([plan.bundle.container]));
  throwIfCancelled(signal);
  await docker.runDetached({
    name: plan.bundle.container,
    image: p.image,
    network: p.network,
    labels: plan.bundle.labels,
    // The invoking user, so the bundle can read the 0600 config it mounts
    // and the audit log it writes stays the user's.
    user: `${Deno.uid() ?? 0}:${Deno.gid() ?? 0}`,
    mounts: [
      { source: p.files.configDir, target: BUNDLE_CONFIG_DIR, readonly: true },
      { source: p.files.logDir, target: BUNDLE_LOG_DIR, readonly: false },
    ],
    secretEnv: p.secretEnv,
    addHosts: (req.env[BUNDLE_ADD_HOSTS_ENV] ?? "").split(",").filter(Boolean),
    securityOpt: ["no-new-privileges"],
    capDrop: ["ALL"],
  });
}

/** Marks the bottle running; for a detached launch, hands its resources over to `bottle stop`. */
export async function finishLaunch(
  stack: AsyncDisposableStack,
  req: LaunchRequest,
  state: OpenedState,
): Promise<boolean> {
  throwIfCancelled(req.signal);
  await writeRecord(req.plan.bottle.stateDir, { ...state.record, status: "running" });
  if (!req.detach) return false;
  stack.move(); // the bottle outlives this process; `bottle stop` releases it
  const n = req.plan.bottle.name;
  req.progress(`ready: ${n} (bottle exec ${n} -- CMD, bottle attach ${n}, bottle stop ${n})`);
  return true;
}
