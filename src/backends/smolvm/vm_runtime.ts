/**
 * The smolmachines runtime: the agent's place is a libkrun microVM (plan:
 * `vm`), made from the agent image by `smolvm pack` (through bottle's own
 * registry, cached) or from its `docker save` archive.
 *
 * How the VM reaches the bundle is the plan's `vm.network`:
 *
 * - `bundle-address`: the VM's egress policy allows one address, the
 *   bundle's. smolvm's network gateway opens every guest connection as a
 *   host socket, so that address must be one the host reaches: on a Linux
 *   engine (and OrbStack) the bundle's bridge IP is, and nothing else
 *   listens on it. Checked by connecting to the bundle before the VM is made.
 * - `sockets` (Docker Desktop, Colima, …, whose container addresses stay in
 *   their own VM): the VM has no network device. The bundle's agent-facing
 *   ports are published on this host's loopback; the host relay (a process
 *   of its own, tracked in the relay dir) serves a Unix socket for each,
 *   smolvm mounts those into the guest, and the forwarder in the guest
 *   listens on 127.0.0.1 for each port, as in a docker bottle. Allowing a
 *   host address instead would open every service there to the agent.
 */
import type { DockerCli } from "../../engine/docker_cli.ts";
import type {
  AgentRuntime,
  ExecOptions,
  InteractiveOptions,
  PrepareContext,
  StartContext,
} from "../agent_runtime.ts";
import type { Plan } from "../../plan/plan_types.ts";
import type { RunResult } from "../../proc/runner.ts";
import { MachineNotFoundError, type SmolvmCli } from "./smolvm_cli.ts";
import { type MachineSource, machineSource } from "./machine_artifact.ts";
import {
  asUser,
  envWithBundleAddress,
  secretEnvFile,
  withBundleAddress,
  withSecretEnv,
  WRITE_SECRET_ENV,
} from "./vm_env.ts";
import { UserError } from "../../errors.ts";
import { MOUNT_SOCKET_SMOLVM_VERSION } from "./smolvm_cli.ts";
import { startRelay, stopRelay } from "./relay_process.ts";
import { join } from "node:path";
import { RECORD_FILE } from "../../state/bottle_record.ts";
import type { BottleRecord } from "../../state/bottle_record.ts";

const REACH_TIMEOUT_MS = 3000;
/** VM names are `bottle-<bottle name>`, as in the plan. */
const MACHINE_PREFIX = "bottle-";

export class VmRuntime implements AgentRuntime {
  readonly name = "smolmachines" as const;
  /** The agent image as smolvm boots it; found by `prepare`, used by `start`. */
  #source: MachineSource | undefined;
  /** The bundle's address, once `start` knows it. */
  #address: string | undefined;
  /** The host relay's dir, once `start` is starting it. */
  #relayDir: string | undefined;

  constructor(private readonly smolvm: SmolvmCli, private readonly docker: DockerCli) {}

  placeOf(plan: Plan): string {
    return vmOf(plan).machine;
  }

  async prepare(ctx: PrepareContext): Promise<void> {
    const net = vmOf(ctx.plan).network;
    await this.smolvm.assertSupported(
      net.mode === "sockets"
        ? {
          needs: {
            version: MOUNT_SOCKET_SMOLVM_VERSION,
            feature: "machine create --mount-socket",
            why: `a VM with no network needs to reach the bundle (${net.reason})`,
          },
        }
        : {},
    );
    const source = await machineSource(this.docker, this.smolvm, ctx.images.agent, {
      cacheDir: ctx.cacheDir,
      progress: ctx.progress,
      signal: ctx.signal,
    });
    if (source.kind === "archive") {
      ctx.stack.defer(() => Deno.remove(source.path).catch(() => {}));
    }
    this.#source = source;
  }

  async start(ctx: StartContext): Promise<void> {
    const vm = vmOf(ctx.plan);
    const source = this.#source;
    if (!source) throw new Error("VmRuntime.start before prepare");
    const net = vm.network;
    let address = "";
    let relay: Promise<void> = Promise.resolve();
    if (net.mode === "bundle-address") {
      address = await ctx.bundleAddress();
      this.#address = address;
      await assertReachable(address, ctx.plan.bundle.ports.egress);
    } else {
      // Made while the VM is: its sockets must listen before the guest starts.
      this.#relayDir = net.relayDir;
      relay = ctx.bundlePorts().then((ports) => {
        ctx.progress("starting the host relay for the VM's sockets");
        return startRelay(net.relayDir, {
          record: join(ctx.plan.bottle.stateDir, RECORD_FILE),
          sockets: net.sockets.map((s) => {
            const port = ports[s.port];
            if (port === undefined) throw new Error(`The bundle's port ${s.port} is not published`);
            return { path: s.hostSocket, port };
          }),
        });
      });
      relay.catch(() => {}); // awaited below, on every path
    }
    ctx.progress(`creating the VM ${vm.machine}`);
    try {
      const archive = source.kind === "archive" ? await Deno.open(source.path) : undefined;
      await this.smolvm.machineCreate({
        name: vm.machine,
        ...(source.kind === "smolmachine"
          ? { from: source.path }
          : { image: "-", stdin: archive!.readable }),
        ...(net.mode === "bundle-address"
          ? {
            allowCidrs: net.allowCidrs.map((c) => withBundleAddress(c, address)),
            allowHosts: net.allowHosts,
          }
          : {
            mountSockets: net.sockets.map((s) => ({ host: s.hostSocket, guest: s.guestSocket })),
          }),
        env: address ? envWithBundleAddress(ctx.plan.agent.env, address) : ctx.plan.agent.env,
        ...(vm.cpus !== undefined ? { cpus: vm.cpus } : {}),
        ...(vm.memoryMib !== undefined ? { memoryMib: vm.memoryMib } : {}),
      });
    } finally {
      // The relay is this runtime's to remove: never still starting when teardown looks for it.
      await relay.catch(() => {});
    }
    await relay;
    // The archive has been read into the VM's disk; a detached bottle must not keep it.
    if (source.kind === "archive") await Deno.remove(source.path).catch(() => {});
    ctx.progress("starting the VM");
    await this.smolvm.machineStart({ name: vm.machine });
    await this.#run(vm.machine, WRITE_SECRET_ENV, {
      stdin: new TextEncoder().encode(
        secretEnvFile(
          address ? envWithBundleAddress(ctx.agentSecretEnv, address) : ctx.agentSecretEnv,
        ),
      ),
    });
    if (net.mode === "sockets") {
      // Detaches once every port listens: provisioning can use them at once.
      await this.exec(vm.machine, [
        "sh",
        "-c",
        'exec "$@" < /dev/null > /dev/null 2>> /tmp/bottle-forward.log',
        "bottle-forward",
        ...net.forwarder,
      ], { user: ctx.plan.agent.user });
    }
  }

  async exec(place: string, argv: string[], opts: ExecOptions): Promise<RunResult> {
    // Provisioning's argv names the bundle as the plan does (a clone's gate URL).
    const address = this.#address;
    const full = asUser(
      opts.user,
      withSecretEnv(address ? argv.map((a) => withBundleAddress(a, address)) : argv),
    );
    return await this.#run(place, full, opts);
  }

  async #run(
    place: string,
    full: string[],
    opts: { workdir?: string; stdin?: Uint8Array },
  ): Promise<RunResult> {
    const r = await this.smolvm.machineExec({
      name: place,
      argv: full,
      ...(opts.workdir ? { workdir: opts.workdir } : {}),
      ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
    });
    if (r.code !== 0) {
      throw new Error(
        `"${full.join(" ")}" in ${place} exited with code ${r.code}: ${r.stderr.trim()}`,
      );
    }
    return { argv: full, code: r.code, stdout: r.stdout, stderr: r.stderr, timedOut: false };
  }

  async copyIn(place: string, dir: string, tar: Uint8Array, user: string): Promise<void> {
    // As the user itself (root only for root's files): whatever an agent could
    // have put in the way leads nowhere it could not write already.
    await this.exec(place, ["tar", "-x", "-f", "-", "-C", dir], { user, stdin: tar });
  }

  execInteractive(place: string, argv: string[], opts: InteractiveOptions): Promise<number> {
    return this.smolvm.machineExecInteractive({
      name: place,
      argv: asUser(opts.user, withSecretEnv(argv)),
      tty: opts.tty,
      stdin: opts.stdin ?? true,
      ...(opts.workdir ? { workdir: opts.workdir } : {}),
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  async cutOff(_place: string, record?: Pick<BottleRecord, "relayDir">): Promise<void> {
    const relayDir = record?.relayDir ?? this.#relayDir;
    if (relayDir) await stopRelay(relayDir);
  }

  async remove(place: string, record?: Pick<BottleRecord, "relayDir">): Promise<void> {
    // The relay goes too, whatever the VM did (a caller that did not cut it off first).
    const relayDir = record?.relayDir ?? this.#relayDir;
    let failed: unknown;
    try {
      await this.#removeMachine(place);
    } catch (err) {
      failed = err;
    }
    // The VM's own error is the one to tell, where both fail.
    if (relayDir) await stopRelay(relayDir).catch((err) => void (failed ??= err));
    if (failed) throw failed;
  }

  async #removeMachine(place: string): Promise<void> {
    try {
      await this.smolvm.machineStop({ name: place });
    } catch (err) {
      if (err instanceof MachineNotFoundError) return;
      // A VM that failed to start cannot be stopped but must still be deleted.
    }
    await this.smolvm.machineDelete({ name: place, missingOk: true });
  }

  async state(place: string): Promise<string | undefined> {
    try {
      return (await this.smolvm.machineStatus(place)).state;
    } catch (err) {
      if (err instanceof MachineNotFoundError) return undefined;
      throw err;
    }
  }

  async listPlaces(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const m of await this.smolvm.machineLs()) {
      if (m.name.startsWith(MACHINE_PREFIX)) out.set(m.name.slice(MACHINE_PREFIX.length), m.name);
    }
    return out;
  }
}

function vmOf(plan: Plan): NonNullable<Plan["vm"]> {
  if (!plan.vm) throw new Error(`Plan of "${plan.bottle.name}" has no vm`);
  return plan.vm;
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
