/**
 * `bottle start --backend smolmachines`: the agent in a libkrun microVM.
 *
 * The bundle is the same container as on docker, on a per-bottle bridge.
 * The VM's egress policy allows one address: the bundle's. That address must
 * be one the host can reach, because smolvm's network gateway opens every
 * guest connection as a host socket. On a Linux engine (and OrbStack) the
 * bundle's bridge IP is routable from the host and nothing else listens on
 * it (pipelock and the health port are on the bundle's loopback). Docker
 * Desktop and Colima keep container IPs inside their own VM; the only host
 * addresses left to allow would be the host's loopback or LAN address,
 * which would open every other service there to the agent, so bottle refuses
 * those engines rather than weaken the policy (checked by connecting to the
 * bundle from the host before the VM is made).
 *
 * DNS: with only `--allow-cidr`, smolvm forwards DNS for any name, a channel
 * out. An `--allow-host` list switches its gateway to answering only listed
 * names; bottle lists one reserved name that never resolves.
 */
import { basename, join } from "node:path";
import type { LaunchRequest } from "../backend.ts";
import { DockerCli } from "../docker/docker_cli.ts";
import { waitBundleReady } from "../docker/wait_ready.ts";
import { finishLaunch, openState, prepareLaunch, startBundle } from "../launch_common.ts";
import { MachineNotFoundError, type SmolvmCli } from "./smolvm_cli.ts";
import { machineSource } from "./machine_artifact.ts";
import { asAgent, vmEnv } from "./vm_env.ts";
import { agentProgram } from "../agent_program.ts";
import { SYSTEM_CA_BUNDLE } from "../../plan/make_plan.ts";
import { writePrivateFile } from "../../state/private_files.ts";
import { throwIfCancelled } from "../../proc/signals.ts";
import { UserError } from "../../errors.ts";
import type { Plan, ProvisionStep } from "../../plan/plan_types.ts";

/** RFC 2606 reserves `.invalid`: the one name the VM's DNS may ask about, and it never resolves. */
export const DNS_SENTINEL = "bottle-dns-closed.invalid";
const REACH_TIMEOUT_MS = 3000;

export async function launchSmolmachines(
  req: LaunchRequest,
  smolvm: SmolvmCli,
  cacheDir: string,
  docker = new DockerCli(),
): Promise<number> {
  const { plan, signal } = req;
  const vm = plan.vm;
  if (!vm) throw new Error("launchSmolmachines: the plan has no vm section");
  await smolvm.assertSupported();
  const prepared = await prepareLaunch(req, docker);
  const source = await machineSource(docker, smolvm, prepared.agentImage, {
    cacheDir,
    progress: req.progress,
    signal,
  });

  await using stack = new AsyncDisposableStack();
  if (source.kind === "archive") stack.defer(() => Deno.remove(source.path).catch(() => {}));
  const state = await openState(stack, req, { machine: vm.machine });

  const net = plan.networks.outbound;
  req.progress(`creating the network for ${plan.bottle.name}`);
  stack.defer(() => docker.networkRemove(net.name));
  throwIfCancelled(signal);
  await docker.networkCreate(net.name, { internal: false, labels: net.labels });

  await startBundle(stack, docker, req, {
    image: prepared.bundleImage,
    network: net.name,
    files: state.files,
    secretEnv: prepared.secretEnv,
  });
  await waitBundleReady(docker, plan.bundle.container, signal);
  const bundleIp = await containerAddress(docker, plan.bundle.container, net.name);
  await assertReachable(bundleIp, plan.bundle.ports.egress);

  req.progress(`creating the VM ${vm.machine}`);
  stack.defer(() => removeMachine(smolvm, vm.machine));
  throwIfCancelled(signal);
  const archive = source.kind === "archive" ? await Deno.open(source.path) : undefined;
  await smolvm.machineCreate({
    name: vm.machine,
    ...(source.kind === "smolmachine"
      ? { from: source.path }
      : { image: "-", stdin: archive!.readable }),
    allowCidrs: [`${bundleIp}/32`],
    allowHosts: [DNS_SENTINEL],
    env: vmEnv(plan, bundleIp),
    ...(vm.cpus !== undefined ? { cpus: vm.cpus } : {}),
    ...(vm.memoryMib !== undefined ? { memoryMib: vm.memoryMib } : {}),
  });
  // The archive has been read into the VM's disk; a detached bottle must not keep it.
  if (source.kind === "archive") await Deno.remove(source.path).catch(() => {});
  req.progress("starting the VM");
  throwIfCancelled(signal);
  await smolvm.machineStart({ name: vm.machine });

  req.progress("provisioning");
  for (const step of plan.provision) {
    throwIfCancelled(signal);
    await provision(smolvm, plan, vm.machine, step, state.files.agentTrustFile);
  }
  if (await finishLaunch(stack, req, state)) return 0;
  return await smolvm.machineExecInteractive({
    name: vm.machine,
    argv: asAgent(agentProgram(plan)),
    workdir: plan.agent.workdir,
    tty: Deno.stdin.isTerminal(),
    signal,
  });
}

/** Stops and deletes a VM; one that is already gone is fine. */
export async function removeMachine(smolvm: SmolvmCli, name: string): Promise<void> {
  try {
    await smolvm.machineStop({ name });
  } catch (err) {
    if (err instanceof MachineNotFoundError) return;
    // A VM that failed to start cannot be stopped but must still be deleted.
  }
  await smolvm.machineDelete({ name, missingOk: true });
}

async function containerAddress(
  docker: DockerCli,
  container: string,
  network: string,
): Promise<string> {
  const r = await docker.run([
    "inspect",
    "--format",
    `{{with index .NetworkSettings.Networks "${network}"}}{{.IPAddress}}{{end}}`,
    container,
  ]);
  const ip = r.stdout.trim();
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) {
    throw new Error(`Bundle "${container}" has no address on "${network}"`);
  }
  return ip;
}

/**
 * Refuses, before any VM exists, an engine whose container addresses this
 * host cannot reach: smolvm's gateway could not reach the bundle either.
 */
export async function assertReachable(ip: string, port: number): Promise<void> {
  try {
    const conn = await Deno.connect({
      hostname: ip,
      port,
      signal: AbortSignal.timeout(REACH_TIMEOUT_MS),
    });
    conn.close();
  } catch (err) {
    const reason = err instanceof DOMException && err.name === "TimeoutError"
      ? `no answer in ${REACH_TIMEOUT_MS / 1000} s`
      : (err as Error).message;
    throw new UserError(
      `The bundle at ${ip}:${port} is not reachable from this host (${reason}): ` +
        "the smolmachines backend needs an engine whose container addresses the host can route to " +
        "(Docker Engine on Linux, OrbStack); Docker Desktop and Colima keep them inside their VM. " +
        "Use --backend docker with this engine.",
    );
  }
}

async function provision(
  smolvm: SmolvmCli,
  plan: Plan,
  machine: string,
  step: ProvisionStep,
  trustFile: string,
): Promise<void> {
  const root = async (argv: string[], stdin?: string) => {
    const r = await smolvm.machineExec({ name: machine, argv, ...(stdin ? { stdin } : {}) });
    if (r.code !== 0) {
      throw new Error(
        `Provisioning "${argv.join(" ")}" in ${machine} failed (${r.code}): ${r.stderr.trim()}`,
      );
    }
  };
  const owner = `${plan.agent.user}:${plan.agent.user}`;
  switch (step.step) {
    case "ca-trust":
      await smolvm.machineCp(trustFile, machine, step.guestPath);
      await root(["chmod", "0644", step.guestPath]);
      await root(["tee", "-a", SYSTEM_CA_BUNDLE], await Deno.readTextFile(trustFile));
      return;
    case "prompt": {
      const local = join(plan.bottle.stateDir, "prompt.md");
      await writePrivateFile(local, step.text ?? await Deno.readTextFile(step.file!));
      await smolvm.machineCp(local, machine, step.guestPath);
      await root(["chown", owner, step.guestPath]);
      return;
    }
    case "skills":
      for (const dir of step.dirs) {
        const dest = `${step.guestDir}/${basename(dir)}`;
        // machine cp takes one file at a time.
        for (const rel of await filesUnder(dir)) {
          const target = `${dest}/${rel}`;
          await root(["mkdir", "-p", target.slice(0, target.lastIndexOf("/"))]);
          await smolvm.machineCp(join(dir, rel), machine, target);
        }
        await root(["chown", "-R", owner, dest]);
      }
      return;
  }
}

async function filesUnder(root: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(root, rel))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await filesUnder(root, p));
    else if (e.isFile) out.push(p);
  }
  return out.sort();
}
