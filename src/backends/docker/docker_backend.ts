/** The docker backend: a bottle is two containers and two networks, found by label. */
import { pathExists } from "../../state/path_exists.ts";
import type { Backend, BottleSummary, LaunchRequest } from "../backend.ts";
import type { Backend as BackendName } from "../../plan/plan_types.ts";
import { DockerCli } from "./docker_cli.ts";
import { launchDocker } from "./launch.ts";
import * as L from "../../labels.ts";
import { UserError } from "../../errors.ts";
import { bottleDir, readRecord } from "../../state/bottle_record.ts";
import { ownerAlive } from "../../state/owner.ts";

export class DockerBackend implements Backend {
  readonly name: BackendName = "docker";
  constructor(protected readonly stateRoot: string, protected readonly docker = new DockerCli()) {}

  launch(req: LaunchRequest): Promise<number> {
    return launchDocker(req, this.docker);
  }

  async list(): Promise<BottleSummary[]> {
    const containers = await this.docker.listContainers([
      `${L.MANAGED}=true`,
      `${L.BACKEND}=${this.name}`,
    ]);
    const byName = new Map<string, BottleSummary>();
    for (const c of containers) {
      const name = c.labels[L.BOTTLE_ID];
      if (!name) continue;
      const role = c.labels[L.ROLE];
      const prev = byName.get(name);
      if (prev && role !== "agent") continue;
      byName.set(name, {
        name,
        agent: c.labels[L.AGENT] ?? "",
        backend: this.name,
        state: role === "agent" ? c.state : prev?.state ?? `${c.state} (no agent)`,
        createdAt: c.createdAt,
      });
    }
    return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  async stop(name: string): Promise<void> {
    const filter = [`${L.BOTTLE_ID}=${name}`, `${L.MANAGED}=true`];
    const containers = await this.docker.listContainers(filter);
    const networks = await this.docker.listNetworks(filter);
    const dir = bottleDir(this.stateRoot, name);
    const hasState = await pathExists(dir);
    if (containers.length === 0 && networks.length === 0 && !hasState) {
      throw new UserError(`No bottle named "${name}" (see bottle ls)`);
    }
    // Agent before bundle, then networks: the reverse of launch.
    const order = (r?: string) => (r === "agent" ? 0 : 1);
    containers.sort((a, b) => order(a.labels[L.ROLE]) - order(b.labels[L.ROLE]));
    for (const c of containers) await this.docker.removeContainers([c.name]);
    for (const n of networks) await this.docker.networkRemove(n.name);
    if (hasState) await Deno.remove(dir, { recursive: true });
  }

  async exec(name: string, argv: string[], opts: { tty: boolean; user?: string }): Promise<number> {
    const agent = await this.agentContainer(name);
    const r = await this.docker.run(
      this.docker.execArgv(agent, argv, {
        interactive: true,
        tty: opts.tty,
        ...(opts.user ? { user: opts.user } : {}),
      }),
      { stdin: "inherit", stdout: "inherit", stderr: "inherit", check: false },
    );
    return r.code;
  }

  async agentCommand(name: string): Promise<string[]> {
    const record = await readRecord(bottleDir(this.stateRoot, name));
    if (!record?.agentCommand) {
      throw new UserError(`Bottle "${name}" has no recorded agent program (see bottle ls)`);
    }
    return record.agentCommand;
  }

  async orphans(all: boolean): Promise<string[]> {
    const filter = [`${L.MANAGED}=true`, `${L.BACKEND}=${this.name}`];
    const names = new Set<string>();
    const owners = new Map<string, { host: string | undefined; pid: string | undefined }>();
    for (
      const o of [
        ...await this.docker.listContainers(filter),
        ...await this.docker.listNetworks(filter),
      ]
    ) {
      const name = o.labels[L.BOTTLE_ID];
      if (!name) continue;
      names.add(name);
      owners.set(name, { host: o.labels[L.OWNER_HOST], pid: o.labels[L.OWNER_PID] });
    }
    const out: string[] = [];
    for (const name of names) {
      if (all) {
        out.push(name);
        continue;
      }
      const record = await readRecord(bottleDir(this.stateRoot, name));
      const kept = record?.status === "running" && record.detached;
      if (kept) continue;
      if (!(await ownerAlive(owners.get(name)!))) out.push(name);
    }
    return out.sort();
  }

  private async agentContainer(name: string): Promise<string> {
    const found = await this.docker.listContainers(
      [`${L.BOTTLE_ID}=${name}`, `${L.ROLE}=agent`],
      false,
    );
    if (found.length === 0) {
      throw new UserError(`No running bottle named "${name}" (see bottle ls)`);
    }
    return found[0]!.name;
  }
}
