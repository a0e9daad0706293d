/**
 * The Docker engine, through its CLI: one method per call bottle makes.
 * Both runtimes and the bundle run on it. Everything goes through the
 * runner, so failures carry argv and docker's own words. A container's
 * secret env goes in a private `--env-file` the client reads and bottle
 * removes at once: it never appears on any argv.
 *
 * The engine may be another machine (`DOCKER_HOST=ssh://…`, a context):
 * nothing here assumes it shares this host's filesystem. Files go in and
 * out as tar streams through `docker cp`.
 */
import { run, type RunOptions, type RunResult, spawn, type Spawned } from "../proc/runner.ts";
import { registerSecret } from "../proc/secrets.ts";

/** The docker client's own settings, taken from the invocation's environment. */
const CLIENT_ENV = [
  "DOCKER_HOST",
  "DOCKER_CONTEXT",
  "DOCKER_CONFIG",
  "DOCKER_TLS_VERIFY",
  "DOCKER_CERT_PATH",
  "DOCKER_API_VERSION",
];

export interface ContainerSpec {
  name: string;
  image: string;
  /** "none" or a network name. */
  network: string;
  labels: Record<string, string>;
  /** Non-secret environment, on argv as `-e K=V`. */
  env?: Record<string, string>;
  /** Secret environment: `-e NAME` on argv, the value only in the client's env. */
  secretEnv?: Record<string, string>;
  volumes?: { volume: string; target: string; readonly: boolean }[];
  mounts?: { source: string; target: string; readonly: boolean }[];
  user?: string;
  workdir?: string;
  capDrop?: string[];
  securityOpt?: string[];
  resources?: { cpus?: number; memory?: string; pids?: number };
  /** Extra /etc/hosts entries ("name:ip", or "name:host-gateway"). */
  addHosts?: string[];
  /** Container ports published on a host address, each on a host port the engine picks. */
  publish?: { hostIp: string; port: number }[];
  /** Use docker's own init (tini) as PID 1: reaps zombies, forwards signals. */
  init?: boolean;
  /** Keep stdin open (`-i`), for a start that sends it input. */
  interactive?: boolean;
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

export interface ObjectSummary {
  name: string;
  labels: Record<string, string>;
}

export interface DockerCliOptions {
  /** The docker binary (BOTTLE_DOCKER), default `docker`. */
  bin?: string;
  /** The invocation's environment; the docker client's settings are taken from it. */
  env?: Record<string, string | undefined>;
}

export class DockerCli {
  readonly bin: string;
  readonly #env: Record<string, string>;

  constructor(options: DockerCliOptions = {}) {
    this.bin = options.bin ?? "docker";
    this.#env = {};
    for (const k of CLIENT_ENV) {
      const v = options.env?.[k];
      if (v) this.#env[k] = v;
    }
  }

  run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run([this.bin, ...args], this.#withEnv(opts));
  }

  spawn(args: string[], opts: RunOptions = {}): Spawned {
    return spawn([this.bin, ...args], this.#withEnv(opts));
  }

  async networkCreate(
    name: string,
    opts: { internal: boolean; labels: Record<string, string> },
  ): Promise<void> {
    const args = ["network", "create", "--driver", "bridge", ...labelArgs(opts.labels)];
    if (opts.internal) args.push("--internal");
    await this.run([...args, name]);
  }

  async volumeCreate(
    name: string,
    opts: { options: Record<string, string>; labels: Record<string, string> },
  ): Promise<void> {
    const o = Object.entries(opts.options).flatMap(([k, v]) => ["--opt", `${k}=${v}`]);
    await this.run(["volume", "create", ...labelArgs(opts.labels), ...o, name]);
  }

  /** Removes networks, in parallel; missing ones are fine. */
  async networkRemove(names: string[]): Promise<void> {
    await Promise.all(names.map((n) => this.#removeObject(["network", "rm"], n, /network/i)));
  }

  /** Removes volumes, in parallel; missing ones are fine. */
  async volumeRemove(names: string[]): Promise<void> {
    await Promise.all(names.map((n) => this.#removeObject(["volume", "rm", "-f"], n, /volume/i)));
  }

  /** `docker run -d`: created and started in one call. */
  async runDetached(spec: ContainerSpec): Promise<void> {
    await using envFile = await secretEnvFile(spec.secretEnv ?? {});
    await this.run(["run", "--detach", ...envFile.args, ...containerArgs(spec)]);
  }

  async start(container: string): Promise<void> {
    await this.run(["start", container]);
  }

  /**
   * `docker run` attached, with signals not passed on: created, started and
   * given `input` on stdin in one call, its output streaming back. The caller
   * ends the client with SIGKILL once it has read what it needs (any other
   * signal it would pass on), and the container keeps running.
   */
  runAttached(spec: ContainerSpec, input: Uint8Array | ReadableStream<Uint8Array>): Spawned {
    if (Object.keys(spec.secretEnv ?? {}).length > 0) {
      // Its secrets go on its stdin (the bundle's start input), never in its config.
      throw new Error(`An attached container takes no secret env ("${spec.name}")`);
    }
    return this.spawn(["run", "--sig-proxy=false", ...containerArgs(spec)], { stdin: input });
  }

  /** Extracts a tar archive into `dir` of a container (created or running); owners and modes are the archive's. */
  async copyIn(container: string, dir: string, tar: Uint8Array): Promise<void> {
    await this.run(["cp", "-", `${container}:${dir}`], { stdin: tar });
  }

  /** A path of a container (running or not) as a tar archive. */
  async copyOut(container: string, path: string): Promise<Uint8Array> {
    const child = this.spawn(["cp", `${container}:${path}`, "-"]);
    const [status, bytes, stderr] = await Promise.all([
      child.status,
      child.stdoutBytes(),
      child.stderrText(),
    ]);
    if (status.code !== 0) throw new DockerCopyError(container, path, stderr.trim());
    return bytes;
  }

  /** Removes containers (and their anonymous volumes) in one call; missing ones are fine. */
  async removeContainers(names: string[]): Promise<void> {
    if (names.length === 0) return;
    const r = await this.run(["rm", "-f", "-v", ...names], { check: false });
    if (r.code !== 0 && !/^(Error: No such container: \S+\s*)+$/i.test(r.stderr.trim())) {
      await this.run(["rm", "-f", "-v", ...names]);
    }
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
      ...filterArgs(labelFilters),
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

  async listNetworks(labelFilters: string[]): Promise<ObjectSummary[]> {
    const r = await this.run([
      "network",
      "ls",
      "--no-trunc",
      ...filterArgs(labelFilters),
      "--format",
      "{{json .}}",
    ]);
    return jsonLines(r.stdout).map((n) => ({
      name: String(n.Name),
      labels: parseLabels(String(n.Labels ?? "")),
    }));
  }

  async listVolumes(labelFilters: string[]): Promise<ObjectSummary[]> {
    const r = await this.run([
      "volume",
      "ls",
      ...filterArgs(labelFilters),
      "--format",
      "{{json .}}",
    ]);
    return jsonLines(r.stdout).map((v) => ({
      name: String(v.Name),
      labels: parseLabels(String(v.Labels ?? "")),
    }));
  }

  /** The image's ID, or undefined if the engine does not have it. */
  async imageId(ref: string): Promise<string | undefined> {
    const r = await this.run(["image", "inspect", "--format", "{{.Id}}", ref], { check: false });
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  async imageExists(ref: string): Promise<boolean> {
    return (await this.imageId(ref)) !== undefined;
  }

  /** A container's address on a network. */
  async containerAddress(container: string, network: string): Promise<string> {
    const r = await this.run([
      "inspect",
      "--format",
      `{{with index .NetworkSettings.Networks "${network}"}}{{.IPAddress}}{{end}}`,
      container,
    ]);
    const ip = r.stdout.trim();
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) {
      throw new Error(`Container "${container}" has no address on "${network}"`);
    }
    return ip;
  }

  /** The host port a container's published TCP port is on, at `hostIp` (`docker port`). */
  async publishedPort(container: string, port: number, hostIp: string): Promise<number> {
    const r = await this.run(["port", container, `${port}/tcp`]);
    for (const line of r.stdout.split("\n")) {
      const m = /^(.+):(\d+)$/.exec(line.trim());
      if (m && m[1] === hostIp) return Number(m[2]);
    }
    throw new Error(
      `Container "${container}" has no port ${port} published on ${hostIp}: ${r.stdout.trim()}`,
    );
  }

  async inspect<T = unknown>(ref: string): Promise<T[]> {
    const r = await this.run(["inspect", ref]);
    return JSON.parse(r.stdout) as T[];
  }

  #withEnv(opts: RunOptions): RunOptions {
    return { ...opts, env: { ...this.#env, ...opts.env } };
  }

  async #removeObject(verb: string[], name: string, kind: RegExp): Promise<void> {
    const r = await this.run([...verb, name], { check: false });
    if (r.code !== 0 && !(kind.test(r.stderr) && /not found|no such/i.test(r.stderr))) {
      await this.run([...verb, name]); // rethrow with full context
    }
  }
}

/** `docker cp` out of a container failed (no such container or path). */
export class DockerCopyError extends Error {
  override name = "DockerCopyError";
  constructor(readonly container: string, readonly path: string, readonly stderr: string) {
    super(`Cannot copy "${path}" out of "${container}": ${stderr}`);
  }
}

export function labelArgs(labels: Record<string, string>): string[] {
  return Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
}

function filterArgs(labelFilters: string[]): string[] {
  return labelFilters.flatMap((f) => ["--filter", `label=${f}`]);
}

/**
 * A container's secret env as an `--env-file` the CLI reads as it starts:
 * private (0600 in a 0700 dir) and removed once the call returns. Not bare
 * `-e NAME` with the value in the CLI's env: the CLI reads some of those
 * names itself (HTTPS_PROXY would send its own calls to a remote engine
 * through the agent's proxy), and they would replace the user's own.
 */
async function secretEnvFile(
  env: Record<string, string>,
): Promise<{ args: string[] } & AsyncDisposable> {
  const entries = Object.entries(env);
  if (entries.length === 0) return { args: [], [Symbol.asyncDispose]: async () => {} };
  for (const [k, v] of entries) {
    registerSecret(v);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || /[\r\n\0]/.test(v)) {
      throw new Error(`Secret env "${k}" cannot go in an env file`);
    }
  }
  const dir = await Deno.makeTempDir({ prefix: "bottle-env-" });
  const path = `${dir}/env`;
  try {
    await Deno.chmod(dir, 0o700);
    // In a dir only this user can enter, created 0600 (the umask only narrows it).
    await Deno.writeTextFile(path, entries.map(([k, v]) => `${k}=${v}\n`).join(""), {
      mode: 0o600,
      createNew: true,
    });
  } catch (err) {
    // A half-written file (a full disk) must not stay behind with the secret in it.
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
  return {
    args: ["--env-file", path],
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
}

/** The argv after `docker create` for a spec (secret env comes as an env file). Exported for tests. */
export function containerArgs(spec: ContainerSpec): string[] {
  const a = ["--name", spec.name, "--network", spec.network, ...labelArgs(spec.labels)];
  for (const [k, v] of Object.entries(spec.env ?? {})) a.push("-e", `${k}=${v}`);
  for (const v of spec.volumes ?? []) {
    // volume-nocopy: the volume's owner and contents are the plan's, never the image's.
    a.push(
      "--mount",
      `type=volume,source=${v.volume},target=${v.target},volume-nocopy${
        v.readonly ? ",readonly" : ""
      }`,
    );
  }
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
  const res = spec.resources ?? {};
  if (res.pids !== undefined) a.push("--pids-limit", String(res.pids));
  if (res.memory !== undefined) a.push("--memory", res.memory);
  if (res.cpus !== undefined) a.push("--cpus", String(res.cpus));
  for (const h of spec.addHosts ?? []) a.push("--add-host", h);
  for (const p of spec.publish ?? []) a.push("--publish", `${p.hostIp}::${p.port}/tcp`);
  if (spec.init) a.push("--init");
  if (spec.interactive) a.push("--interactive");
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
