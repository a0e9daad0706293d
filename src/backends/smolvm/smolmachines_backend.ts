/**
 * The smolmachines backend: a bottle is a bundle container and network
 * (found by label, like docker's) plus a microVM named after the bottle.
 */
import type { BottleSummary, LaunchRequest } from "../backend.ts";
import { DockerBackend } from "../docker/docker_backend.ts";
import { DockerCli } from "../docker/docker_cli.ts";
import type { Backend as BackendName } from "../../plan/plan_types.ts";
import { MachineNotFoundError, SmolvmCli } from "./smolvm_cli.ts";
import { launchSmolmachines, removeMachine } from "./smolvm_launch.ts";
import { asAgent } from "./vm_env.ts";
import { bottleDir, readRecord } from "../../state/bottle_record.ts";
import { UserError } from "../../errors.ts";

/** VM names are `bottle-<bottle name>`, as in the plan. */
const MACHINE_PREFIX = "bottle-";

export class SmolmachinesBackend extends DockerBackend {
  override readonly name: BackendName = "smolmachines";
  constructor(
    stateRoot: string,
    private readonly cacheRoot: string,
    private readonly smolvm = new SmolvmCli(),
    docker = new DockerCli(),
  ) {
    super(stateRoot, docker);
  }

  override launch(req: LaunchRequest): Promise<number> {
    return launchSmolmachines(req, this.smolvm, this.cacheRoot, this.docker);
  }

  override async list(): Promise<BottleSummary[]> {
    const rows = await super.list();
    return await Promise.all(rows.map(async (r) => ({ ...r, state: await this.vmState(r.name) })));
  }

  override async stop(name: string): Promise<void> {
    // The VM first (it is the agent), then the bundle, network and state.
    const machine = MACHINE_PREFIX + name;
    const hadVm = await this.vmExists(machine);
    if (hadVm) await removeMachine(this.smolvm, machine);
    try {
      await super.stop(name);
    } catch (err) {
      if (!(hadVm && err instanceof UserError)) throw err;
    }
  }

  override async exec(
    name: string,
    argv: string[],
    opts: { tty: boolean; user?: string },
  ): Promise<number> {
    const record = await readRecord(bottleDir(this.stateRoot, name));
    const machine = record?.machine ?? MACHINE_PREFIX + name;
    const asRoot = opts.user === "0" || opts.user === "root";
    return await this.smolvm.machineExecInteractive({
      name: machine,
      argv: asRoot ? argv : asAgent(argv),
      tty: opts.tty,
    });
  }

  override async orphans(all: boolean): Promise<string[]> {
    const names = new Set(await super.orphans(all));
    // A VM whose bottle has no record left is an orphan too.
    for (const m of await this.smolvm.machineLs()) {
      if (!m.name.startsWith(MACHINE_PREFIX)) continue;
      const name = m.name.slice(MACHINE_PREFIX.length);
      if (all || !(await readRecord(bottleDir(this.stateRoot, name)))) names.add(name);
    }
    return [...names].sort();
  }

  private async vmExists(machine: string): Promise<boolean> {
    try {
      await this.smolvm.machineStatus(machine);
      return true;
    } catch (err) {
      if (err instanceof MachineNotFoundError) return false;
      throw err;
    }
  }

  private async vmState(name: string): Promise<string> {
    try {
      return (await this.smolvm.machineStatus(MACHINE_PREFIX + name)).state;
    } catch (err) {
      if (err instanceof MachineNotFoundError) return "no vm";
      throw err;
    }
  }
}
