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
import { lockAgentRoutes, networkGateway } from "./lock_routes.ts";
import { finishLaunch, openState, prepareLaunch, startBundle } from "../launch_common.ts";
import { waitBundleReady } from "./wait_ready.ts";
import { writePrivateFile } from "../../state/private_files.ts";
import { throwIfCancelled } from "../../proc/signals.ts";
import type { Plan, ProvisionStep } from "../../plan/plan_types.ts";
import { agentProgram } from "../agent_program.ts";
import { SYSTEM_CA_BUNDLE } from "../../plan/make_plan.ts";

export async function launchDocker(req: LaunchRequest, docker = new DockerCli()): Promise<number> {
  const { plan, signal } = req;
  // Credentials and images first: a missing secret or a failed build leaves nothing behind.
  const prepared = await prepareLaunch(req, docker);

  await using stack = new AsyncDisposableStack();
  const state = await openState(stack, req, { agentContainer: plan.agent.container });

  req.progress(`creating networks for ${plan.bottle.name}`);
  for (const net of [plan.networks.internal, plan.networks.outbound]) {
    stack.defer(() => docker.networkRemove(net.name));
    throwIfCancelled(signal);
    await docker.networkCreate(net.name, { internal: net.internal, labels: net.labels });
  }

  await startBundle(stack, docker, req, {
    image: prepared.bundleImage,
    network: plan.networks.outbound.name,
    files: state.files,
    secretEnv: prepared.secretEnv,
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
    image: prepared.agentImage,
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
    prepared.bundleImage,
    await networkGateway(docker, plan.networks.internal.name),
    plan.agent.labels,
  );

  req.progress("provisioning");
  for (const step of plan.provision) {
    throwIfCancelled(signal);
    await provision(docker, plan, step, state.files.agentTrustFile);
  }
  if (await finishLaunch(stack, req, state)) return 0;
  const tty = Deno.stdin.isTerminal();
  const argv = docker.execArgv(plan.agent.container, agentProgram(plan), {
    interactive: true,
    tty,
    user: plan.agent.user,
    workdir: plan.agent.workdir,
  });
  // SIGTERM (or SIGINT where there is no TTY) ends the session, then teardown runs.
  const r = await docker.run(argv, {
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
    check: false,
    signal,
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
  const root = (argv: string[], stdin?: string) =>
    docker.run(
      docker.execArgv(c, argv, { user: "0", interactive: stdin !== undefined }),
      stdin ? { stdin } : {},
    );
  switch (step.step) {
    case "ca-trust":
      await docker.cp(trustFile, `${c}:${step.guestPath}`);
      await root(["chmod", "0644", step.guestPath]);
      await root(["tee", "-a", SYSTEM_CA_BUNDLE], await Deno.readTextFile(trustFile));
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
