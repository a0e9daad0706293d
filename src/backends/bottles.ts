/**
 * The bottles that exist, on both runtimes: list, exec into, stop, and the
 * orphans `cleanup` removes. A bottle is found by its record (which names
 * every object it owns, so `exec` and `stop` need no search of the engine),
 * else by the labels on its objects (a bottle whose launcher was killed, or
 * made from another host).
 */
import type { Engines } from "./engines.ts";
import { runtimeFor } from "./engines.ts";
import type { Backend } from "../plan/plan_types.ts";
import * as L from "../labels.ts";
import { bottleDir, keptAuditLog, readRecord } from "../state/bottle_record.ts";
import { landedBranches } from "../git/landed_branches.ts";
import { checkBottleName, isBottleName } from "../state/bottle_name.ts";
import { ownerAlive } from "../state/owner.ts";
import { pathExists } from "../state/path_exists.ts";
import { UserError } from "../errors.ts";
import { saveAuditLog } from "./bundle/bundle_container.ts";
import { bringHome, keepRecord, keptWhere } from "./landings.ts";
import { saveKeptHome } from "./kept_home.ts";
import { closest } from "../config/suggest.ts";
import type { ContainerSummary } from "../engine/docker_cli.ts";

export interface BottleSummary {
  name: string;
  agent: string;
  backend: Backend;
  /** The agent's state ("running", "exited", …), with the bundle's when it is not running. */
  state: string;
  /** ISO 8601. */
  createdAt: string;
  /** workspace: git: the branches its pushes made in the host repository. */
  pushed?: string[];
}

/** Everything a bottle owns, by name. */
interface Owned {
  name: string;
  backend: Backend;
  place?: string;
  user: string;
  workdir?: string;
  program?: string[];
  containers: string[];
  bundleContainer?: string;
  networks: string[];
  volumes: string[];
  /** Where the agent's home is kept at stop (from the record). */
  keptHome?: string;
  /** A VM's host relay (from the record). */
  relayDir?: string;
  hasState: boolean;
}

export interface ExecRequest {
  tty: boolean;
  user?: string;
  workdir?: string;
  env?: Record<string, string>;
}

export class Bottles {
  constructor(private readonly engines: Engines, private readonly stateRoot: string) {}

  async list(): Promise<BottleSummary[]> {
    const containers = await this.engines.docker.listContainers([`${L.MANAGED}=true`]);
    const byName = new Map<string, ContainerSummary[]>();
    for (const c of containers) {
      const name = c.labels[L.BOTTLE_ID];
      if (!name || !isBottleName(name)) continue;
      byName.set(name, [...(byName.get(name) ?? []), c]);
    }
    const rows = await Promise.all([...byName].map(async ([name, cs]) => {
      const record = await readRecord(bottleDir(this.stateRoot, name));
      const backend = (cs[0]!.labels[L.BACKEND] ?? "docker") as Backend;
      const bundle = cs.find((c) => c.labels[L.ROLE] === "bundle");
      const agent = await this.agentState(backend, name, cs);
      const bundleState = bundle?.state ?? "missing";
      return {
        name,
        agent: cs[0]!.labels[L.AGENT] ?? "",
        backend,
        state: bundleState === "running" ? agent : `${agent} (bundle ${bundleState})`,
        createdAt: record?.createdAt ?? isoTime(cs[0]!.createdAt),
        ...(record?.landing ? { pushed: await landedBranches(record.landing) } : {}),
      };
    }));
    return rows.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Runs argv in a bottle's agent, on this terminal; returns its exit code. */
  async exec(name: string, argv: string[], req: ExecRequest): Promise<number> {
    const b = await this.find(name);
    if (!b.place) throw new UserError(`Bottle "${name}" has no agent (see bottle ls)`);
    return await runtimeFor(this.engines, b.backend).execInteractive(b.place, argv, {
      user: req.user ?? b.user,
      tty: req.tty,
      ...(req.workdir ?? b.workdir ? { workdir: req.workdir ?? b.workdir } : {}),
      ...(req.env ? { env: req.env } : {}),
    });
  }

  /** The argv that starts the agent program in a running bottle (for attach). */
  async program(name: string): Promise<string[]> {
    const b = await this.find(name);
    if (!b.program) {
      throw new UserError(`Bottle "${name}" has no recorded agent program (see bottle ls)`);
    }
    return b.program;
  }

  /**
   * Removes everything a bottle owns; other bottles keep running. The audit
   * log is kept (`bottle logs` still shows it).
   */
  async stop(
    name: string,
    opts: { discardPushes?: boolean; say?: (message: string) => void } = {},
  ): Promise<void> {
    const b = await this.find(name);
    const { docker } = this.engines;
    const runtime = b.place ? runtimeFor(this.engines, b.backend) : undefined;
    // The agent's home is kept first, while its place still runs.
    if (b.keptHome && runtime && b.place && await runtime.state(b.place) === "running") {
      const why = await saveKeptHome(runtime, b.place, b.user, b.keptHome)
        .catch((err: Error) => err.message);
      if (why) opts.say?.(`the agent's home of ${name} was not kept: ${why}`);
    }
    const others = b.containers.filter((c) => c !== b.place && c !== b.bundleContainer);
    const helpers = b.relayDir ? { relayDir: b.relayDir } : undefined;
    // Nothing is relayed to the bundle's ports once they may be free.
    if (runtime && b.place) await runtime.cutOff?.(b.place, helpers);
    // The agent goes while the audit log is copied out of the bundle; then
    // the bundle; then what they used. Each group in parallel.
    await Promise.all([
      runtime && b.place ? runtime.remove(b.place, helpers) : undefined,
      docker.removeContainers(others),
      b.bundleContainer
        ? saveAuditLog(docker, b.bundleContainer, keptAuditLog(this.stateRoot, name))
          .finally(() => docker.removeContainers([b.bundleContainer!]))
        : undefined,
    ]);
    // What the bottle pushed comes home before its volume goes; if it
    // cannot, what holds it and the record stay.
    const record = b.hasState ? await readRecord(bottleDir(this.stateRoot, name)) : undefined;
    const landing = record?.landing;
    const copy = landing?.copy;
    let kept: Error | undefined;
    if (
      landing && !(copy && (!b.volumes.includes(copy.volume) || opts.discardPushes))
    ) {
      try {
        await bringHome(docker, landing);
      } catch (err) {
        kept = err as Error;
      }
    }
    const volumes = kept && copy ? b.volumes.filter((v) => v !== copy.volume) : b.volumes;
    await Promise.all([docker.networkRemove(b.networks), docker.volumeRemove(volumes)]);
    if (kept) {
      await keepRecord(bottleDir(this.stateRoot, name), record!);
      const finish = copy
        ? `bottle fetch ${name} brings them and bottle stop ${name} removes it (bottle stop --discard-pushes ${name} drops them)`
        : `bottle stop ${name} brings them in`;
      throw new UserError(
        `${kept.message}\nThe pushes of ${name} are kept in ${
          keptWhere(landing!)
        }: once the cause is fixed, ${finish}`,
      );
    }
    if (b.hasState) await Deno.remove(bottleDir(this.stateRoot, name), { recursive: true });
  }

  /**
   * Brings a bottle's pushes into the host repository, where the engine
   * does not share this host's files (elsewhere they are there as they
   * happen). Returns the bottle's branches in the host repository.
   */
  async fetch(name: string): Promise<{ branches: string[]; copied: boolean }> {
    const record = await readRecord(bottleDir(this.stateRoot, checkBottleName(name)));
    if (!record) throw new UserError(`No bottle named "${name}" on this host (see bottle ls)`);
    const landing = record.landing;
    if (!landing) throw new UserError(`Bottle "${name}" has no git workspace: nothing to fetch`);
    if (!landing.copy) return { branches: await landedBranches(landing), copied: false };
    if (!landing.copy.image) {
      throw new UserError(`Bottle "${name}" never started its bundle: nothing was pushed`);
    }
    await bringHome(this.engines.docker, landing);
    return { branches: await landedBranches(landing), copied: true };
  }

  /**
   * Bottles this user's records prove dead: a launch whose launcher died
   * before it finished, or a session whose launcher is gone. A bottle with
   * no record here is not this user's to judge (another user's, or another
   * state dir's), and is left alone; `all` takes every bottle on the engine.
   */
  async orphans(all: boolean): Promise<{ name: string; backend: Backend }[]> {
    const { docker } = this.engines;
    const filter = [`${L.MANAGED}=true`];
    const [containers, networks, volumes] = await Promise.all([
      docker.listContainers(filter),
      docker.listNetworks(filter),
      docker.listVolumes(filter),
    ]);
    const found = new Map<string, Backend>();
    for (const o of [...containers, ...networks, ...volumes]) {
      const name = o.labels[L.BOTTLE_ID];
      if (!name || !isBottleName(name)) continue;
      found.set(name, (o.labels[L.BACKEND] ?? "docker") as Backend);
    }
    if (await this.smolvmPresent()) {
      for (const [name] of await runtimeFor(this.engines, "smolmachines").listPlaces()) {
        if (isBottleName(name) && !found.has(name)) found.set(name, "smolmachines");
      }
    }
    const out: { name: string; backend: Backend }[] = [];
    for (const [name, backend] of found) {
      if (all) {
        out.push({ name, backend });
        continue;
      }
      const record = await readRecord(bottleDir(this.stateRoot, name));
      if (!record) continue;
      if (record.status === "running" && record.detached) continue;
      const alive = await ownerAlive({ host: record.ownerHost, pid: String(record.ownerPid) });
      if (!alive) out.push({ name, backend });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** What a bottle owns: from its record, else from the engine's labels. */
  private async find(name: string): Promise<Owned> {
    if (!isBottleName(name) && /^[a-z0-9][a-z0-9-]*$/.test(name)) {
      const hint = await this.suggest(name);
      if (hint) throw new UserError(`No bottle named "${name}"${hint} (see bottle ls)`);
    }
    checkBottleName(name);
    const dir = bottleDir(this.stateRoot, name);
    const record = await readRecord(dir);
    if (record) {
      return {
        name,
        backend: record.backend,
        place: record.place,
        user: record.user,
        workdir: record.workdir,
        program: record.program,
        containers: [
          record.bundleContainer,
          ...(record.backend === "docker" ? [record.place] : []),
        ],
        bundleContainer: record.bundleContainer,
        networks: record.networks,
        volumes: record.volumes,
        ...(record.keptHome ? { keptHome: record.keptHome } : {}),
        ...(record.relayDir ? { relayDir: record.relayDir } : {}),
        hasState: true,
      };
    }
    const { docker } = this.engines;
    const filter = [`${L.BOTTLE_ID}=${name}`, `${L.MANAGED}=true`];
    const [containers, networks, volumes, hasState] = await Promise.all([
      docker.listContainers(filter),
      docker.listNetworks(filter),
      docker.listVolumes(filter),
      pathExists(dir),
    ]);
    const backend = ([...containers, ...networks, ...volumes][0]?.labels[L.BACKEND] ??
      "docker") as Backend;
    let place = containers.find((c) => c.labels[L.ROLE] === "agent")?.name;
    if (backend === "smolmachines" || (!place && await this.smolvmPresent())) {
      const vm = (await runtimeFor(this.engines, "smolmachines").listPlaces()).get(name);
      if (vm) place = vm;
    }
    if (!place && containers.length + networks.length + volumes.length === 0 && !hasState) {
      throw new UserError(`No bottle named "${name}"${await this.suggest(name)} (see bottle ls)`);
    }
    const vmBackend: Backend = place && !containers.some((c) => c.name === place)
      ? "smolmachines"
      : backend;
    return {
      name,
      backend: vmBackend,
      ...(place ? { place } : {}),
      user: "agent",
      containers: containers.map((c) => c.name),
      ...(containers.find((c) => c.labels[L.ROLE] === "bundle")
        ? { bundleContainer: containers.find((c) => c.labels[L.ROLE] === "bundle")!.name }
        : {}),
      networks: networks.map((n) => n.name),
      volumes: volumes.map((v) => v.name),
      hasState,
    };
  }

  /** `--name nc3` makes `<agent>-nc3`: a bottle whose name ends (or starts) so is meant. */
  private async suggest(name: string): Promise<string> {
    const known = new Set<string>();
    const dir = `${this.stateRoot}/bottles`;
    for (const e of await Array.fromAsync(Deno.readDir(dir)).catch(() => [])) {
      if (e.isDirectory && isBottleName(e.name)) known.add(e.name);
    }
    for (const c of await this.engines.docker.listContainers([`${L.MANAGED}=true`])) {
      const n = c.labels[L.BOTTLE_ID];
      if (n && isBottleName(n)) known.add(n);
    }
    const near = [...known].filter((k) => k.endsWith(`-${name}`) || k.startsWith(`${name}-`))
      .sort();
    // A typo: the closest name within a small edit distance.
    const typo = near.length === 0 ? closest(name, [...known]) : undefined;
    if (typo) near.push(typo);
    return near.length > 0 ? `: did you mean ${near.join(" or ")}?` : "";
  }

  private async agentState(
    backend: Backend,
    name: string,
    cs: ContainerSummary[],
  ): Promise<string> {
    if (backend === "docker") {
      return cs.find((c) => c.labels[L.ROLE] === "agent")?.state ?? "no agent";
    }
    const record = await readRecord(bottleDir(this.stateRoot, name));
    const place = record?.place ?? `bottle-${name}`;
    if (!(await this.smolvmPresent())) return "unknown (smolvm not found)";
    return (await runtimeFor(this.engines, "smolmachines").state(place)) ?? "no vm";
  }

  #smolvm: Promise<boolean> | undefined;
  /** Whether smolvm is installed: a host without it cannot have VMs, and must not fail for it. */
  private smolvmPresent(): Promise<boolean> {
    return (this.#smolvm ??= this.engines.smolvm.version().then(() => true, () => false));
  }
}

/** docker's "2026-12-01 21:36:55 +0000 UTC" as ISO 8601. */
export function isoTime(dockerTime: string): string {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.\d+)? ([+-]\d\d)(\d\d)/.exec(dockerTime);
  if (!m) return dockerTime;
  const t = Date.parse(`${m[1]}T${m[2]}${m[3]}:${m[4]}`);
  return Number.isNaN(t) ? dockerTime : new Date(t).toISOString();
}
