/**
 * `bottle start` on the docker backend: bundle and agent containers on a
 * per-bottle internal network, the bundle alone also on an outbound one.
 * Every object is registered on the teardown stack before it is created, so
 * a failure or a signal at any step removes exactly what exists, in reverse.
 * Short engine calls are never interrupted (a killed `docker run` client can
 * leave the daemon creating a container after teardown looked for it); the
 * signal is checked between them, and long waits (builds, bundle health,
 * the agent session) are cancelled at once.
 */
import { basename, join } from "node:path";
import type { LaunchRequest } from "../backend.ts";
import { DockerCli } from "./docker_cli.ts";
import { waitBundleReady } from "./wait_ready.ts";
import { lockAgentRoutes, networkGateway } from "./lock_routes.ts";
import { ensureAgentImage, ensureBundleImage } from "../../build/bottle_images.ts";
import { UPSTREAM_CA_ENV, writeBundleFiles } from "../../bundle/bundle_files.ts";
import { BUNDLE_CONFIG_DIR } from "../../bundle/init/bundle_manifest.ts";
import { BUNDLE_LOG_DIR } from "../../bundle/init/bundle_manifest.ts";
import { makePrivateDir, writePrivateFile } from "../../state/private_files.ts";
import { writeRecord } from "../../state/bottle_record.ts";
import { resolveRouteSecrets } from "../../secrets/route_secrets.ts";
import { throwIfCancelled } from "../../proc/signals.ts";
import { UserError } from "../../errors.ts";
import type { Plan, ProvisionStep } from "../../plan/plan_types.ts";
import { agentProgram } from "../agent_program.ts";

/** Extra /etc/hosts entries for the bundle, `name:ip` comma-separated (docker --add-host). */
export const BUNDLE_ADD_HOSTS_ENV = "BOTTLE_BUNDLE_ADD_HOSTS";

export async function launchDocker(req: LaunchRequest, docker = new DockerCli()): Promise<number> {
  const { plan, signal } = req;
  const unsupported = plan.bundle.daemons.filter((d) => d === "git-gate" || d === "supervise");
  if (unsupported.length > 0) {
    throw new UserError(
      `Agent "${plan.bottle.agent}" needs ${
        unsupported.join(" and ")
      }, which this version of bottle does not ship yet: remove git/supervise from its definition`,
    );
  }
  // Credentials and images first: a missing secret or a failed build leaves nothing behind.
  const secretEnv = await resolveRouteSecrets(plan, req.env, req.agent.baseDir);
  const images = { buildCaPem: req.buildCaPem, env: req.env };
  const buildOpts = { progress: req.progress, signal };
  const agentImage = await ensureAgentImage(docker, plan.images.agent, images, buildOpts);
  const bundleImage = await ensureBundleImage(docker, plan.images.bundle, images, buildOpts);
  throwIfCancelled(signal);

  await using stack = new AsyncDisposableStack();
  const { stateDir } = plan.bottle;
  stack.defer(() => Deno.remove(stateDir, { recursive: true }).catch(() => {}));
  await makePrivateDir(stateDir);
  const record = {
    name: plan.bottle.name,
    agent: plan.bottle.agent,
    backend: plan.bottle.backend,
    createdAt: new Date().toISOString(),
    ownerPid: Deno.pid,
    status: "launching" as const,
    detached: req.detach,
    agentContainer: plan.agent.container,
    bundleContainer: plan.bundle.container,
    agentCommand: agentProgram(plan),
  };
  await writeRecord(stateDir, record);
  const upstreamCaFiles = (req.env[UPSTREAM_CA_ENV] ?? "").split(":").filter(Boolean);
  const files = await writeBundleFiles(plan, { upstreamCaFiles });

  req.progress(`creating networks for ${plan.bottle.name}`);
  for (const net of [plan.networks.internal, plan.networks.outbound]) {
    stack.defer(() => docker.networkRemove(net.name));
    throwIfCancelled(signal);
    await docker.networkCreate(net.name, { internal: net.internal, labels: net.labels });
  }

  req.progress("starting the bundle");
  stack.defer(() => docker.removeContainers([plan.bundle.container]));
  throwIfCancelled(signal);
  await docker.runDetached({
    name: plan.bundle.container,
    image: bundleImage,
    network: plan.networks.outbound.name,
    labels: plan.bundle.labels,
    // The invoking user, so the bundle can read the 0600 config it mounts
    // and the audit log it writes stays the user's.
    user: `${Deno.uid() ?? 0}:${Deno.gid() ?? 0}`,
    mounts: [
      { source: files.configDir, target: BUNDLE_CONFIG_DIR, readonly: true },
      { source: files.logDir, target: BUNDLE_LOG_DIR, readonly: false },
    ],
    secretEnv,
    addHosts: (req.env[BUNDLE_ADD_HOSTS_ENV] ?? "").split(",").filter(Boolean),
    securityOpt: ["no-new-privileges"],
    capDrop: ["ALL"],
  });
  await docker.networkConnect(plan.networks.internal.name, plan.bundle.container, [
    plan.bundle.alias,
  ]);
  await waitBundleReady(docker, plan.bundle.container, signal);

  req.progress("starting the agent");
  stack.defer(() => docker.removeContainers([plan.agent.container]));
  throwIfCancelled(signal);
  await docker.runDetached({
    name: plan.agent.container,
    image: agentImage,
    network: plan.networks.internal.name,
    labels: plan.agent.labels,
    env: plan.agent.env,
    user: plan.agent.user,
    workdir: plan.agent.workdir,
    mounts: plan.agent.mounts,
    capDrop: plan.agent.security.capDrop,
    securityOpt: plan.agent.security.noNewPrivileges ? ["no-new-privileges"] : [],
    pidsLimit: plan.agent.resources.pids,
    ...(plan.agent.resources.memory !== undefined ? { memory: plan.agent.resources.memory } : {}),
    ...(plan.agent.resources.cpus !== undefined ? { cpus: plan.agent.resources.cpus } : {}),
    init: true,
    command: ["sleep", "infinity"],
  });

  await lockAgentRoutes(
    docker,
    plan.agent.container,
    bundleImage,
    await networkGateway(docker, plan.networks.internal.name),
    plan.agent.labels,
  );

  req.progress("provisioning");
  for (const step of plan.provision) {
    throwIfCancelled(signal);
    await provision(docker, plan, step, files.agentTrustFile);
  }
  throwIfCancelled(signal);
  await writeRecord(stateDir, { ...record, status: "running" });

  if (req.detach) {
    stack.move(); // the bottle outlives this process; `bottle stop` releases it
    req.progress(
      `ready: ${plan.bottle.name} (bottle exec ${plan.bottle.name} -- CMD, bottle attach, bottle stop)`,
    );
    return 0;
  }
  const tty = Deno.stdin.isTerminal();
  const argv = docker.exec(plan.agent.container, agentProgram(plan), {
    interactive: true,
    tty,
    user: plan.agent.user,
    workdir: plan.agent.workdir,
  });
  const r = await docker.run(argv, {
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
    check: false,
  });
  return r.code;
}

async function provision(
  docker: DockerCli,
  plan: Plan,
  step: ProvisionStep,
  trustFile: string,
): Promise<void> {
  const c = plan.agent.container;
  const root = (argv: string[]) => docker.run(docker.exec(c, argv, { user: "0" }));
  switch (step.step) {
    case "ca-trust":
      await docker.cp(trustFile, `${c}:${step.guestPath}`);
      await root(["chmod", "0644", step.guestPath]);
      await root(["update-ca-certificates"]);
      return;
    case "prompt": {
      const local = join(plan.bottle.stateDir, "prompt.md");
      const text = step.text ?? await Deno.readTextFile(step.file!);
      await writePrivateFile(local, text);
      await docker.cp(local, `${c}:${step.guestPath}`);
      await root(["chown", `${plan.agent.user}:${plan.agent.user}`, step.guestPath]);
      return;
    }
    case "skills":
      for (const dir of step.dirs) {
        const dest = `${step.guestDir}/${basename(dir)}`;
        await docker.cp(dir, `${c}:${dest}`);
        await root(["chown", "-R", `${plan.agent.user}:${plan.agent.user}`, dest]);
      }
      return;
  }
}
