/**
 * The docker CLI, one method per call bottle makes. Everything goes through
 * the runner, so failures carry argv and docker's own words. Secrets are
 * passed as bare `-e NAME` with the value in the docker client's
 * environment: they never appear on any argv.
 */
import { run, type RunOptions, type RunResult, spawn, type Spawned } from "../../proc/runner.ts";
import { registerSecret } from "../../proc/secrets.ts";

export interface ContainerSpec {
  name: string;
  image: string;
  network: string;
  /** DNS names for this container on `network`. */
  aliases?: string[];
  labels: Record<string, string>;
  /** Non-secret environment, on argv as `-e K=V`. */
  env?: Record<string, string>;
  /** Secret environment: `-e NAME` on argv, the value only in the client's env. */
  secretEnv?: Record<string, string>;
  mounts?: { source: string; target: string; readonly: boolean }[];
  user?: string;
  workdir?: string;
  capDrop?: string[];
  securityOpt?: string[];
  pidsLimit?: number;
  memory?: string;
  cpus?: number;
  /** Extra /etc/hosts entries ("name:ip", or "name:host-gateway"). */
  addHosts?: string[];
  /** Use docker's own init (tini) as PID 1: reaps zombies, forwards signals. */
  init?: boolean;
  entrypoint?: string;
  command?: string[];
}

export interface ContainerSummary {
  id: string;
  name: string;
  state: string;
  labels: Record<string, string>;
  createdAt: string;
}

export interface NetworkSummary {
  id: string;
  name: string;
  labels: Record<string, string>;
}

export class DockerCli {
  constructor(readonly bin: string = Deno.env.get("BOTTLE_DOCKER") ?? "docker") {}

  run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run([this.bin, ...args], opts);
  }

  spawn(args: string[], opts: RunOptions = {}): Spawned {
    return spawn([this.bin, ...args], opts);
  }

  async networkCreate(
    name: string,
    opts: { internal: boolean; labels: Record<string, string> },
  ): Promise<string> {
    const args = ["network", "create", "--driver", "bridge", ...labelArgs(opts.labels)];
    if (opts.internal) args.push("--internal");
    const r = await this.run([...args, name]);
    return r.stdout.trim();
  }

  async networkRemove(name: string): Promise<void> {
    const r = await this.run(["network", "rm", name], { check: false });
    if (r.code !== 0 && !/not found|No such network/i.test(r.stderr)) {
      await this.run(["network", "rm", name]); // rethrow with full context
    }
  }

  async networkConnect(network: string, container: string, aliases: string[] = []): Promise<void> {
    await this.run([
      "network",
      "connect",
      ...aliases.flatMap((a) => ["--alias", a]),
      network,
      container,
    ]);
  }

  /** `docker run -d`: returns the container id. */
  async runDetached(spec: ContainerSpec, opts: { signal?: AbortSignal } = {}): Promise<string> {
    const secretEnv = spec.secretEnv ?? {};
    for (const v of Object.values(secretEnv)) registerSecret(v);
    const r = await this.run(["run", "-d", ...containerArgs(spec)], {
      env: secretEnv,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return r.stdout.trim();
  }

  /** Removes containers (and their anonymous volumes); missing ones are fine. */
  async removeContainers(names: string[]): Promise<void> {
    if (names.length === 0) return;
    const r = await this.run(["rm", "-f", "-v", ...names], { check: false });
    if (r.code !== 0 && !/No such container/i.test(r.stderr)) {
      await this.run(["rm", "-f", "-v", ...names]);
    }
  }

  async cp(src: string, dest: string): Promise<void> {
    await this.run(["cp", src, dest]);
  }

  /** The argv for `docker exec` (run it with `run`, with the stdio the caller needs). */
  execArgv(
    container: string,
    argv: string[],
    opts: {
      user?: string;
      env?: Record<string, string>;
      workdir?: string;
      tty?: boolean;
      interactive?: boolean;
    } = {},
  ): string[] {
    return [
      "exec",
      ...(opts.interactive ? ["-i"] : []),
      ...(opts.tty ? ["-t"] : []),
      ...(opts.user ? ["-u", opts.user] : []),
      ...(opts.workdir ? ["-w", opts.workdir] : []),
      ...Object.entries(opts.env ?? {}).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
      container,
      ...argv,
    ];
  }

  async listContainers(labelFilters: string[], all = true): Promise<ContainerSummary[]> {
    const r = await this.run([
      "ps",
      ...(all ? ["-a"] : []),
      "--no-trunc",
      ...labelFilters.flatMap((f) => ["--filter", `label=${f}`]),
      "--format",
      "{{json .}}",
    ]);
    return jsonLines(r.stdout).map((c) => ({
      id: String(c.ID),
      name: String(c.Names),
      state: String(c.State),
      labels: parseLabels(String(c.Labels ?? "")),
      createdAt: String(c.CreatedAt),
    }));
  }

  async listNetworks(labelFilters: string[]): Promise<NetworkSummary[]> {
    const r = await this.run([
      "network",
      "ls",
      "--no-trunc",
      ...labelFilters.flatMap((f) => ["--filter", `label=${f}`]),
      "--format",
      "{{json .}}",
    ]);
    return jsonLines(r.stdout).map((n) => ({
      id: String(n.ID),
      name: String(n.Name),
      labels: parseLabels(String(n.Labels ?? "")),
    }));
  }

  async imageExists(ref: string): Promise<boolean> {
    const r = await this.run(["image", "inspect", "--format", "{{.Id}}", ref], { check: false });
    return r.code === 0;
  }

  async inspect<T = unknown>(ref: string): Promise<T[]> {
    const r = await this.run(["inspect", ref]);
    return JSON.parse(r.stdout) as T[];
  }
}

export function labelArgs(labels: Record<string, string>): string[] {
  return Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
}

/** The argv after `docker run -d` for a spec. Exported for tests. */
export function containerArgs(spec: ContainerSpec): string[] {
  const a = ["--name", spec.name, "--network", spec.network, ...labelArgs(spec.labels)];
  for (const alias of spec.aliases ?? []) a.push("--network-alias", alias);
  for (const [k, v] of Object.entries(spec.env ?? {})) a.push("-e", `${k}=${v}`);
  for (const k of Object.keys(spec.secretEnv ?? {})) a.push("-e", k);
  for (const m of spec.mounts ?? []) {
    a.push(
      "--mount",
      `type=bind,source=${m.source},target=${m.target}${m.readonly ? ",readonly" : ""}`,
    );
  }
  if (spec.user) a.push("--user", spec.user);
  if (spec.workdir) a.push("--workdir", spec.workdir);
  for (const c of spec.capDrop ?? []) a.push("--cap-drop", c);
  for (const o of spec.securityOpt ?? []) a.push("--security-opt", o);
  if (spec.pidsLimit !== undefined) a.push("--pids-limit", String(spec.pidsLimit));
  if (spec.memory !== undefined) a.push("--memory", spec.memory);
  if (spec.cpus !== undefined) a.push("--cpus", String(spec.cpus));
  for (const h of spec.addHosts ?? []) a.push("--add-host", h);
  if (spec.init) a.push("--init");
  if (spec.entrypoint !== undefined) a.push("--entrypoint", spec.entrypoint);
  a.push(spec.image, ...(spec.command ?? []));
  return a;
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((l) => l.trim()).map((l) =>
    JSON.parse(l) as Record<string, unknown>
  );
}

/** docker's `--format {{json .}}` gives labels as "k=v,k2=v2". */
function parseLabels(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(",")) {
    const i = part.indexOf("=");
    if (i > 0) out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}
