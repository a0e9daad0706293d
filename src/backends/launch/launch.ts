/**
 * `bottle start`, for both runtimes, written once:
 *
 *   checks (nothing exists yet: plan inputs, the name is free)
 *   -> state (record) -> network and volume, while secrets and images are
 *      looked up and the bottle CAs minted
 *   -> the runtime's own preparation (the VM image)
 *   -> bundle and agent place started side by side
 *        bundle: run attached, its config and secrets on stdin, its
 *                output read until it says ready
 *        agent:  the runtime's start, then provisioning
 *   -> session (or, detached, hand the bottle over to `bottle stop`)
 *
 * Every object is released on the teardown stack, registered before it is
 * created, in reverse order on every path. Work in flight side by side is
 * always awaited to the end (settled) before teardown runs, so a failure or
 * a signal in one branch never leaves the other branch's object behind.
 * Short engine calls are never interrupted (a killed `docker create` client
 * can leave the daemon creating a container after teardown looked for it);
 * the signal is checked between them, and long waits (builds, bundle
 * readiness, the session) are cancelled at once.
 */
import type { DockerCli } from "../../engine/docker_cli.ts";
import type { AgentRuntime, StartContext } from "../agent_runtime.ts";
import type { LaunchRequest } from "./launch_request.ts";
import type { HostUpstreamPlan, Plan } from "../../plan/plan_types.ts";
import { checkLaunch, prepareLaunch } from "./prepare.ts";
import { provision } from "./provision.ts";
import { type BundleFiles, type GateStarts, makeBundleFiles } from "../../bundle/bundle_files.ts";
import { gateStarts } from "./workspace_start.ts";
import {
  bundleAddress,
  publishedPorts,
  saveAuditLog,
  startBundle,
} from "../bundle/bundle_container.ts";
import { type BottleRecord, writeRecord } from "../../state/bottle_record.ts";
import { throwIfCancelled } from "../../proc/signals.ts";
import { seedWorkspace } from "../workspace_copy.ts";
import { bringHome, keepRecord, keptWhere } from "../landings.ts";
import { saveKeptHome } from "../kept_home.ts";
import * as L from "../../labels.ts";
import { terminalSafe } from "../../text/terminal_safe.ts";
import { hostname } from "node:os";

export async function launch(
  req: LaunchRequest,
  docker: DockerCli,
  runtime: AgentRuntime,
): Promise<number> {
  try {
    return await launchSteps(req, docker, runtime);
  } catch (err) {
    // A branch that noticed the signal first may have failed for it in its own words.
    if (req.signal.aborted && !(err instanceof SuppressedError)) throw req.signal.reason;
    throw err;
  }
}

async function launchSteps(
  req: LaunchRequest,
  docker: DockerCli,
  runtime: AgentRuntime,
): Promise<number> {
  const { plan, signal } = req;
  await checkLaunch(req, docker);

  await using stack = new AsyncDisposableStack();
  const place = runtime.placeOf(plan);
  // What holds pushes teardown could not bring home: a copied workspace's
  // volume, a mounted one's object store. The record stays with them (for
  // `bottle fetch` and `bottle stop`).
  const keep = new Set<string>();
  const record = await openState(stack, req, place, keep);
  // The network and volume are made while images and secrets are looked up.
  // The agent needs no network, so it does not wait for it; the network's
  // removal waits for its creation to settle, whatever happens in between.
  req.progress(`creating the network and volume for ${plan.bottle.name}`);
  throwIfCancelled(signal);
  const networks = settled(
    plan.networks.map((n) =>
      docker.networkCreate(n.name, { internal: n.internal, labels: n.labels })
    ),
  );
  networks.catch(() => {}); // awaited by the bundle's branch and by teardown
  stack.defer(async () => {
    await networks.catch(() => {});
    await removeShared(docker, plan, keep).catch(keptForCleanup(keep));
  });
  // Where the workspace starts (a commit of uncommitted changes is made now,
  // the bottle's landing dirs and object store are set up).
  const starting: Promise<GateStarts> = gateStarts(plan);
  starting.catch(() => {}); // awaited below, and by teardown
  // What the bottle pushed comes home once the containers are gone (nothing
  // can push any more) and before the volume goes; if it cannot, what holds
  // it and the record stay.
  const copied = copiedHost(plan);
  let seeded: Promise<void> = Promise.resolve();
  let seedDone = false;
  let bundleImage: string | undefined;
  if (landingOf(plan).landing) {
    stack.defer(async () => {
      await Promise.allSettled([starting, seeded]);
      if (copied && !seedDone) {
        // Only a seeded volume can hold pushes: nothing to bring.
        await docker.removeContainers([`${plan.bundle.container.name}-seed`]);
        return;
      }
      const landing = landingOf(plan, bundleImage).landing!;
      try {
        for (const b of await bringHome(docker, landing)) {
          req.progress(`${terminalSafe(b)} is in the host repository`);
        }
      } catch (err) {
        const n = plan.bottle.name;
        const where = keptWhere(landing);
        const then = landing.copy ? `bottle fetch ${n}, then bottle stop ${n}` : `bottle stop ${n}`;
        // Said now as well: a signal's own error would take this one's place.
        req.progress(`the pushes of ${n} are kept in ${where}: ${then}`);
        keep.add(landing.copy?.volume ?? landing.store!);
        await keepRecord(plan.bottle.stateDir, { ...record, landing });
        throw new Error(`${(err as Error).message}: the pushes are kept in ${where} (${then})`);
      }
    });
  }
  stack.defer(() => removeContainers(docker, runtime, plan, place).catch(keptForCleanup(keep)));
  const volumes = settled(
    plan.volumes.map((v) => docker.volumeCreate(v.name, { options: v.options, labels: v.labels })),
  );
  const preparing = prepareLaunch(req, docker);
  preparing.catch(() => {}); // awaited below, after the volume settles
  // Minting the CAs is CPU work on this thread: it starts once both
  // containers' starts are under way (the bundle's init waits for them on
  // its stdin), so it holds up no engine call.
  let minting: Promise<BundleFiles> | undefined;
  const files = () => (minting ??= starting.then((s) => makeBundleFiles(plan, s)));
  await settled([volumes, preparing, starting]);
  const prepared = await preparing;
  const base = {
    plan,
    images: prepared.images,
    cacheDir: req.cacheDir,
    signal,
    progress: req.progress,
  };
  await runtime.prepare({ ...base, stack });

  // A copied workspace goes into its volume before the bundle starts.
  if (copied) {
    req.progress("copying the repository to the bundle");
    const starts = await starting;
    bundleImage = prepared.images.bundle;
    seeded = seedWorkspace(docker, copied, starts[copied.name] ?? { carried: false }, {
      image: bundleImage,
      container: `${plan.bundle.container.name}-seed`,
      labels: L.objectLabels(plan.labels, "seed"),
    }).then(() => void (seedDone = true));
    seeded.catch(() => {}); // awaited by the bundle's branch and by teardown
  }

  throwIfCancelled(signal);
  const bundleReady = Promise.all([networks, seeded]).then(() => {
    throwIfCancelled(signal);
    req.progress("starting the bundle");
    return startBundle(docker, plan, {
      image: prepared.images.bundle,
      files,
      secretEnv: prepared.secretEnv,
      signal,
    });
  });
  let address: Promise<string> | undefined;
  let ports: Promise<Record<number, number>> | undefined;
  const start: StartContext = {
    ...base,
    agentSecretEnv: Object.fromEntries(
      plan.agent.proxy.env.map((k) => [k, prepared.secretEnv[k]!]),
    ),
    bundleAddress: () => (address ??= bundleReady.then(() => bundleAddress(docker, plan))),
    bundlePorts: () => (ports ??= bundleReady.then(() => publishedPorts(docker, plan))),
  };
  req.progress("starting the agent");
  await settled([
    bundleReady,
    runtime.start(start).then(async () => {
      const { agentTrustPem } = await files();
      throwIfCancelled(signal);
      req.progress("provisioning");
      const auth = plan.bundle.gitGate?.auth;
      const superviseAuth = plan.bundle.supervise?.auth;
      return provision(runtime, place, plan, agentTrustPem, bundleReady, {
        ...(auth ? { gateToken: prepared.secretEnv[auth.tokenEnv]! } : {}),
        ...(superviseAuth ? { superviseToken: prepared.secretEnv[superviseAuth.tokenEnv]! } : {}),
      });
    }),
  ]);

  // Once provisioned, the agent's home is kept when the session ends (before its place goes).
  const kept = plan.agent.keptHome;
  if (kept) {
    stack.defer(async () => {
      const why = await saveKeptHome(runtime, place, plan.agent.user, kept.hostFile)
        .catch((err: Error) => err.message);
      if (why) req.progress(`the agent's home was not kept: ${why}`);
    });
  }
  throwIfCancelled(signal);
  await writeRecord(plan.bottle.stateDir, {
    ...record,
    ...landingOf(plan, prepared.images.bundle),
    status: "running",
  });
  if (req.detach) {
    const n = plan.bottle.name;
    // A detached task (`start --detach -- PROMPT`) runs unattended: what it asks waits in `bottle supervise`.
    if (plan.agent.session === "headless") {
      await runtime.exec(
        place,
        ["sh", "-c", BACKGROUND_SESSION, "session", ...plan.agent.program],
        {
          user: plan.agent.user,
          workdir: plan.agent.workdir,
        },
      );
    }
    stack.move(); // the bottle outlives this process; `bottle stop` releases it
    req.progress(
      plan.agent.session === "headless"
        ? `ready: ${n}, its task running (output: bottle exec ${n} -- cat ${SESSION_LOG}; questions: bottle supervise; bottle stop ${n})`
        : `ready: ${n} (bottle exec ${n} -- CMD, bottle attach ${n}, bottle stop ${n})`,
    );
    return 0;
  }
  // SIGTERM (or SIGINT where there is no TTY) ends the session, then teardown runs.
  const onTerminal = plan.agent.session === "terminal";
  return await runtime.execInteractive(place, plan.agent.program, {
    user: plan.agent.user,
    workdir: plan.agent.workdir,
    tty: onTerminal && req.tty,
    stdin: onTerminal,
    signal,
  });
}

/** Where a detached task's output goes, in the agent's home. */
const SESSION_LOG = "~/.bottle/session.log";
/** Starts argv in the background, its output in the session log, detached from this exec. */
const BACKGROUND_SESSION = `mkdir -p "$HOME/.bottle"
nohup "$@" > "$HOME/.bottle/session.log" 2>&1 < /dev/null &`;

/**
 * A teardown step that failed (the engine gone, say) leaves objects behind:
 * the record stays with them, so `bottle cleanup` can prove them this
 * user's and dead, and take them down once the engine is back.
 */
function keptForCleanup(keep: Set<string>): (err: unknown) => never {
  return (err) => {
    keep.add(LEFT_FOR_CLEANUP);
    throw new Error(`${(err as Error).message} (bottle cleanup removes what is left)`);
  };
}
const LEFT_FOR_CLEANUP = "(objects a teardown step could not remove)";

/** Waits for every promise to settle; then throws the first failure, if any. */
async function settled(promises: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** The bottle's state dir (removed on teardown) and its record. */
async function openState(
  stack: AsyncDisposableStack,
  req: LaunchRequest,
  place: string,
  keep: ReadonlySet<string>,
): Promise<BottleRecord> {
  const { plan } = req;
  const { stateDir } = plan.bottle;
  await Deno.mkdir(stateDir.slice(0, stateDir.lastIndexOf("/")), { recursive: true, mode: 0o700 });
  // Not recursive: a dir that exists means the name is taken, and is not ours to remove.
  await Deno.mkdir(stateDir, { mode: 0o700 });
  stack.defer(async () => {
    if (keep.size === 0) await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  });
  // The supervise queue, mounted into the bundle.
  const queue = plan.bundle.supervise?.queue;
  if (queue?.transport === "mount") await Deno.mkdir(queue.hostDir, { mode: 0o700 });
  const record: BottleRecord = {
    name: plan.bottle.name,
    agent: plan.bottle.agent,
    backend: plan.bottle.backend,
    createdAt: new Date().toISOString(),
    ownerHost: hostname(),
    ownerPid: Deno.pid,
    status: "launching",
    detached: req.detach,
    place,
    user: plan.agent.user,
    workdir: plan.agent.workdir,
    program: plan.agent.attachProgram ?? plan.agent.program,
    bundleContainer: plan.bundle.container.name,
    networks: plan.networks.map((n) => n.name),
    volumes: plan.volumes.map((v) => v.name),
    ...landingOf(plan),
    ...(plan.agent.keptHome ? { keptHome: plan.agent.keptHome.hostFile } : {}),
    ...(plan.vm?.network.mode === "sockets" ? { relayDir: plan.vm.network.relayDir } : {}),
    ...(queue ? { supervise: queue } : {}),
  };
  await writeRecord(stateDir, record);
  return record;
}

function landingOf(plan: Plan, image?: string): Pick<BottleRecord, "landing"> {
  const host = plan.bundle.gitGate?.upstreams.find((u) => u.kind === "host");
  if (host?.kind !== "host") return {};
  return {
    landing: {
      repo: host.hostGitDir,
      prefix: host.landingPrefix,
      ...(host.landingStore ? { store: host.landingStore.dir } : {}),
      ...(host.copyVolume
        ? { copy: { volume: host.copyVolume, ...(image ? { image } : {}) } }
        : {}),
    },
  };
}

/** The host upstream when it is copied (an engine that does not see this host's files). */
function copiedHost(plan: Plan): HostUpstreamPlan | undefined {
  const u = plan.bundle.gitGate?.upstreams.find((u) => u.kind === "host");
  return u?.kind === "host" && u.transport === "copy" ? u : undefined;
}

/** Networks and volumes, in parallel: nothing uses them once the containers are gone. */
async function removeShared(
  docker: DockerCli,
  plan: Pick<Plan, "networks" | "volumes">,
  keep: ReadonlySet<string> = new Set(),
) {
  await settled([
    docker.networkRemove(plan.networks.map((n) => n.name)),
    docker.volumeRemove(plan.volumes.map((v) => v.name).filter((v) => !keep.has(v))),
  ]);
}

/** The audit log saved first; then the agent's place and the bundle, in parallel. */
async function removeContainers(
  docker: DockerCli,
  runtime: AgentRuntime,
  plan: Plan,
  place: string,
): Promise<void> {
  const bundle = plan.bundle.container.name;
  const saved = await saveAuditLog(docker, bundle, plan.bottle.keptAuditLog).then(
    () => undefined,
    (err: Error) => err,
  );
  // Nothing is relayed to the bundle's ports once they may be free.
  await runtime.cutOff?.(place);
  await settled([runtime.remove(place), docker.removeContainers([bundle])]);
  if (saved) {
    throw new Error(`Could not keep the audit log of ${plan.bottle.name}: ${saved.message}`);
  }
}
