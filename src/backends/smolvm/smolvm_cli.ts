/**
 * The `smolvm` CLI as bottle uses it: one method per call the smolmachines
 * launch flow needs, each building argv for the current smolvm 1.x CLI and
 * running it through `src/proc/runner.ts`.
 *
 * smolvm 1.x CLI facts this file relies on (checked against the smolvm
 * sources, smol-machines/smolvm `src/cli/machine.rs`, `src/cli/pack.rs`,
 * `src/cli/vm_common.rs`, and the project brief):
 *
 * - Machine names are flags: `-n/--name` on create/start/stop/delete/status;
 *   `machine exec` has only the long `--name` (no `-n`). A bare positional
 *   name fails since 1.0.2 (`create_rejects_bare_positional_name`).
 * - `machine create`: `--image/-I` (registry ref, a `docker save` archive
 *   path, or `-` for one on stdin), `--from PATH` (.smolmachine, conflicts
 *   with --image), `--cpus N` ("Number of virtual CPUs", u8), `--mem MiB`
 *   ("Memory allocation in MiB", u32), `--allow-cidr CIDR` and
 *   `--allow-host HOSTNAME` (repeatable, imply --net), `-e/--env KEY=VALUE`.
 * - `machine create --mount-socket HOST_PATH:GUEST_PATH` (repeatable, since
 *   1.6.4: commit b310083f, #656): a guest process that connects to
 *   GUEST_PATH reaches the host socket at HOST_PATH (the guest agent's
 *   listener, mode 0777, bridged over vsock; libkrun dials the host socket
 *   per connection). Split at the first ':'; the guest path is absolute,
 *   without ';' or '|', mounted once; at most 64 published sockets.
 *   Without --net, --allow-cidr or --allow-host the VM has no network
 *   device at all (`src/network/launch.rs`: backend None, vsock without
 *   TSI).
 * - `machine exec --name N [-i] [-t] [--stream] [-e K=V] [-w DIR] -- ARGV`.
 * - `machine delete -n N -f`: without `-f` it asks on stdin; with no stdin it
 *   prints "Cancelled" and exits 0 having deleted nothing.
 * - `machine cp SRC DST` with `NAME:/path` on the machine side, one file.
 * - `machine status -n N --json` prints one object, `machine ls --json` an
 *   array (`[]` when empty) of the same shape: `name`, `state`, `cpus`,
 *   `memory_mib`, `pid`, `image`, `network`, … (`machine_status_json`).
 * - `pack create --image REF -o STUB` writes the packed executable at STUB and
 *   its sidecar at `STUB.smolmachine`.
 * - Failures print `Error: …` and exit 1.
 */
import { UserError } from "../../errors.ts";
import { CommandError, CommandNotFoundError, run, type RunOptions } from "../../proc/runner.ts";
import { redact } from "../../proc/secrets.ts";
import { MachineNotFoundError, SmolvmMachineError, toMachineError } from "./smolvm_errors.ts";

export {
  MachineExistsError,
  MachineNotFoundError,
  MachineNotRunningError,
  SmolvmMachineError,
} from "./smolvm_errors.ts";

/**
 * The oldest smolvm bottle drives. Two reasons, both load-bearing:
 * - the VM's egress policy must be enforced: smolvm 0.8.0's TSI networking
 *   accepted `--allow-cidr` and ignored it, so the agent could reach anything;
 *   1.x moves any egress policy to virtio-net, which enforces it;
 * - 1.1.0 is the first release whose `machine create --image -` (and
 *   `--image ./x.tar`) reads a `docker save` archive, which is how a locally
 *   built agent image gets into a VM without a registry.
 */
export const MIN_SMOLVM_VERSION = "1.1.0";

/** The first smolvm with `machine create --mount-socket` (a VM with no network reaching the bundle). */
export const MOUNT_SOCKET_SMOLVM_VERSION = "1.6.4";
/** smolvm's `PUBLISH_SOCKET_MAX` (crates/smolvm-protocol/src/lib.rs). */
const MAX_PUBLISHED_SOCKETS = 64;

/** Environment variable naming the smolvm binary (default: `smolvm` on PATH). */
export const SMOLVM_ENV = "SMOLVM";

export interface SmolvmVersion {
  major: number;
  minor: number;
  patch: number;
  /** Pre-release tag (`rc.1` in `1.1.0-rc.1`), empty for a release. */
  prerelease: string;
  /** `X.Y.Z[-pre]` as printed. */
  text: string;
}

/** `state` as smolvm reports it; unknown future states pass through as strings. */
export type MachineState =
  | "created"
  | "running"
  | "stopped"
  | "failed"
  | (string & Record<never, never>);

export interface MachineStatus {
  name: string;
  state: MachineState;
  /** The whole object smolvm printed (cpus, memory_mib, pid, image, …). */
  raw: Record<string, unknown>;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Cancellation and timeout for any call. */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface MachineCreateOptions extends CallOptions {
  name: string;
  /**
   * Registry reference, `-` for a `docker save` archive on `stdin`, or a path
   * to one (`./x.tar`, `/abs/x.tar`). Exactly one of `image` and `from`.
   */
  image?: string;
  /** A `.smolmachine` made by `packCreate`. */
  from?: string;
  /** Egress allow-list: the VM may reach only these (virtio-net enforces it). */
  allowCidrs?: string[];
  /**
   * Hostnames resolved at VM start and allowed for egress; also the names the
   * guest's DNS filter answers. Note that with only `allowCidrs`, smolvm still
   * forwards DNS for any name, which is a channel out: callers that must close
   * it pass the names the guest needs here.
   */
  allowHosts?: string[];
  /** Host Unix sockets mounted into the guest (`--mount-socket`, smolvm 1.6.4+). */
  mountSockets?: { host: string; guest: string }[];
  /**
   * Guest environment, NON-SECRET `KEY=VALUE` only: these go on smolvm's argv
   * (`-e K=V`, visible in `ps`) and into the machine record on disk. Secrets
   * reach the guest through the bundle (credential injection), never here; a
   * value registered in `src/proc/secrets.ts` is refused.
   */
  env?: Record<string, string>;
  cpus?: number;
  memoryMib?: number;
  /** The `docker save` archive for `image: "-"`. */
  stdin?: ReadableStream<Uint8Array>;
}

export interface MachineExecOptions extends CallOptions {
  name: string;
  argv: string[];
  /** Guest env for this command, NON-SECRET only (it is on smolvm's argv). */
  env?: Record<string, string>;
  /** Absolute guest working directory. */
  workdir?: string;
  interactive?: boolean;
  tty?: boolean;
  stream?: boolean;
  /** Input for the guest command (implies `-i`). */
  stdin?: Uint8Array | string;
}

export interface MachineExecInteractiveOptions extends CallOptions {
  name: string;
  argv: string[];
  env?: Record<string, string>;
  workdir?: string;
  /** Allocate a TTY (`-t`); default: whether our stdin is a terminal. */
  tty?: boolean;
  /** Attach our stdin (`-i`, default true); headless sessions have none. */
  stdin?: boolean;
}

export interface PackCreateOptions extends CallOptions {
  /** Registry reference, e.g. `127.0.0.1:5000/bottle/agent:abc`. */
  image: string;
  /** Output stub: smolvm writes `STUB` (packed executable) and `STUB.smolmachine`. */
  output: string;
}

export interface SmolvmCliOptions {
  /** smolvm binary; default `smolvm` on PATH (the CLI passes the invocation's `$SMOLVM`). */
  binary?: string;
  /** Extra environment for every smolvm process (tests point the fake's state here). */
  env?: Record<string, string>;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One smolvm installation. Immutable; safe to share. */
export class SmolvmCli {
  readonly binary: string;
  readonly #env: Record<string, string> | undefined;

  constructor(options: SmolvmCliOptions = {}) {
    this.binary = options.binary ?? "smolvm";
    this.#env = options.env;
  }

  /** `smolvm --version`, parsed. */
  async version(options: CallOptions = {}): Promise<SmolvmVersion> {
    const res = await this.#run(["--version"], options);
    const parsed = parseSmolvmVersion(res.stdout);
    if (!parsed) {
      throw new UserError(
        `Cannot read the version of smolvm "${this.binary}": expected "smolvm X.Y.Z", got "${res.stdout.trim()}"`,
      );
    }
    return parsed;
  }

  /**
   * Refuses a missing smolvm or one older than `MIN_SMOLVM_VERSION` with a
   * `UserError` (exit 2) that says what was found and what is needed.
   */
  async assertSupported(
    options: CallOptions & {
      /** A feature this launch needs, the version that has it, and why. */
      needs?: { version: string; feature: string; why: string };
    } = {},
  ): Promise<SmolvmVersion> {
    let v: SmolvmVersion;
    try {
      v = await this.version(options);
    } catch (err) {
      if (err instanceof CommandNotFoundError) {
        throw new UserError(
          `Cannot run smolvm "${this.binary}": ${err.message}: install smolvm ${MIN_SMOLVM_VERSION} or newer, or point $${SMOLVM_ENV} at it`,
        );
      }
      throw err;
    }
    if (compareVersions(v, MIN_SMOLVM_VERSION) < 0) {
      throw new UserError(
        `Unsupported smolvm "${v.text}" at "${this.binary}": bottle needs smolvm ${MIN_SMOLVM_VERSION} or newer, ` +
          `the first release that enforces the VM egress policy (--allow-cidr) and reads "docker save" archives: upgrade smolvm`,
      );
    }
    const needs = options.needs;
    if (needs && compareVersions(v, needs.version) < 0) {
      throw new UserError(
        `smolvm "${v.text}" at "${this.binary}" has no ${needs.feature}, which ${needs.why}: ` +
          `it needs smolvm ${needs.version} or newer: upgrade smolvm, or use --backend docker`,
      );
    }
    return v;
  }

  /** `smolvm machine create --name N …`. Does not start the machine. */
  async machineCreate(o: MachineCreateOptions): Promise<void> {
    checkName(o.name);
    if ((o.image === undefined) === (o.from === undefined)) {
      throw new TypeError("machineCreate: give exactly one of image and from");
    }
    if ((o.image === "-") !== (o.stdin !== undefined)) {
      throw new TypeError('machineCreate: stdin goes with image "-" and only with it');
    }
    const argv = ["machine", "create", "--name", o.name];
    if (o.image !== undefined) {
      if (o.image === "" || (o.image.startsWith("-") && o.image !== "-")) {
        throw new TypeError(`machineCreate: bad image "${o.image}"`);
      }
      argv.push("--image", o.image);
    }
    if (o.from !== undefined) argv.push("--from", checkPathArg("from", o.from));
    // smolvm 1.x `CreateCmd`: `--cpus <N>` (u8) and `--mem <MiB>` (u32); there
    // is no `--memory`. Source: smol-machines/smolvm src/cli/machine.rs.
    if (o.cpus !== undefined) argv.push("--cpus", String(checkInt("cpus", o.cpus, 1, 255)));
    if (o.memoryMib !== undefined) {
      argv.push("--mem", String(checkInt("memoryMib", o.memoryMib, 1, 0xffffffff)));
    }
    for (const cidr of o.allowCidrs ?? []) argv.push("--allow-cidr", checkValue("cidr", cidr));
    for (const host of o.allowHosts ?? []) argv.push("--allow-host", checkValue("host", host));
    argv.push(...mountSocketFlags(o.mountSockets ?? []));
    argv.push(...envFlags(o.env));
    await this.#runNamed(o.name, argv, {
      ...callOpts(o),
      ...(o.stdin ? { stdin: o.stdin } : {}),
    });
  }

  /** `smolvm machine start --name N`. */
  async machineStart(o: { name: string } & CallOptions): Promise<void> {
    checkName(o.name);
    await this.#runNamed(o.name, ["machine", "start", "--name", o.name], callOpts(o));
  }

  /** `smolvm machine stop --name N`. */
  async machineStop(o: { name: string } & CallOptions): Promise<void> {
    checkName(o.name);
    await this.#runNamed(o.name, ["machine", "stop", "--name", o.name], callOpts(o));
  }

  /**
   * `smolvm machine delete --name N -f`. Always `-f`: without it smolvm asks
   * on stdin and, with none, prints "Cancelled" and exits 0 with the machine
   * still there; that outcome is treated as a failure here, never as success.
   * `missingOk` makes deleting an absent machine a no-op (for teardown).
   */
  async machineDelete(o: { name: string; missingOk?: boolean } & CallOptions): Promise<void> {
    checkName(o.name);
    const argv = ["machine", "delete", "--name", o.name, "-f"];
    let res;
    try {
      res = await this.#runNamed(o.name, argv, callOpts(o));
    } catch (err) {
      if (o.missingOk && err instanceof MachineNotFoundError) return;
      throw err;
    }
    if (/^\s*cancell?ed\b/im.test(res.stdout) || /^\s*cancell?ed\b/im.test(res.stderr)) {
      throw new CommandError(
        [this.binary, ...argv],
        res.code,
        `smolvm did not delete machine "${o.name}": it printed "Cancelled": ${
          (res.stdout + res.stderr).trim()
        }`,
        false,
      );
    }
  }

  /**
   * `smolvm machine exec --name N … -- ARGV` with output captured. A non-zero
   * exit of the guest command is returned, not thrown; smolvm's own failures
   * about the machine (missing, not running) throw their typed errors, and
   * smolvm refusing the argv (exit 2, clap's `--help` hint) or running past
   * `timeoutMs` throws a `CommandError`.
   */
  async machineExec(o: MachineExecOptions): Promise<ExecResult> {
    const argv = execArgv(o.name, o.argv, {
      ...(o.env ? { env: o.env } : {}),
      ...(o.workdir !== undefined ? { workdir: o.workdir } : {}),
      interactive: o.interactive ?? o.stdin !== undefined,
      tty: o.tty ?? false,
      stream: o.stream ?? false,
    });
    const res = await this.#run(argv, {
      ...callOpts(o),
      ...(o.stdin !== undefined ? { stdin: o.stdin } : {}),
      check: false,
    });
    if (res.code !== 0) {
      const err = new CommandError([this.binary, ...argv], res.code, res.stderr, res.timedOut);
      if (res.timedOut) throw err;
      // smolvm rejecting our argv (clap: "error: …", exit 2) is a bug here, not
      // the guest command's result.
      if (res.code === 2 && isUsageError(res.stderr)) throw err;
      const typed = toMachineError(err, o.name);
      if (typed instanceof SmolvmMachineError) throw typed;
    }
    return { code: res.code, stdout: res.stdout, stderr: res.stderr };
  }

  /**
   * `smolvm machine exec --name N -i [-t] … -- ARGV` wired to this process's
   * terminal (for an interactive agent session). Returns the exit code.
   */
  async machineExecInteractive(o: MachineExecInteractiveOptions): Promise<number> {
    const argv = execArgv(o.name, o.argv, {
      ...(o.env ? { env: o.env } : {}),
      ...(o.workdir !== undefined ? { workdir: o.workdir } : {}),
      interactive: o.stdin ?? true,
      tty: o.tty ?? Deno.stdin.isTerminal(),
      stream: false,
    });
    const res = await this.#run(argv, {
      ...callOpts(o),
      stdin: o.stdin ?? true ? "inherit" : "null",
      stdout: "inherit",
      stderr: "inherit",
      check: false,
    });
    return res.code;
  }

  /** `smolvm machine cp HOST NAME:/GUEST`: one regular file into the machine. */
  async machineCp(
    hostPath: string,
    name: string,
    guestPath: string,
    options: CallOptions = {},
  ): Promise<void> {
    checkName(name);
    if (!guestPath.startsWith("/")) {
      throw new TypeError(`machineCp: guest path "${guestPath}" is not absolute`);
    }
    const info = await Deno.stat(hostPath);
    if (!info.isFile) {
      throw new TypeError(
        `machineCp: "${hostPath}" is not a regular file (smolvm cp copies one file)`,
      );
    }
    await this.#runNamed(
      name,
      ["machine", "cp", checkPathArg("hostPath", hostPath), `${name}:${guestPath}`],
      callOpts(options),
    );
  }

  /** `smolvm machine status --name N --json`. */
  async machineStatus(name: string, options: CallOptions = {}): Promise<MachineStatus> {
    checkName(name);
    const argv = ["machine", "status", "--name", name, "--json"];
    const res = await this.#runNamed(name, argv, callOpts(options));
    return toStatus(parseJson(argv, res.stdout), argv);
  }

  /** `smolvm machine ls --json`. */
  async machineLs(options: CallOptions = {}): Promise<MachineStatus[]> {
    const argv = ["machine", "ls", "--json"];
    const res = await this.#run(argv, callOpts(options));
    const data = parseJson(argv, res.stdout);
    if (!Array.isArray(data)) throw badOutput(argv, "expected a JSON array", res.stdout);
    return data.map((item) => toStatus(item, argv));
  }

  /**
   * `smolvm pack create --image REF -o STUB`; returns `STUB.smolmachine`.
   * smolvm also writes the packed executable at STUB itself: whoever removes
   * the artifact removes both.
   */
  async packCreate(o: PackCreateOptions): Promise<string> {
    if (o.output.endsWith(".smolmachine")) {
      throw new TypeError(
        `packCreate: output "${o.output}" is a stub; smolvm appends ".smolmachine" itself`,
      );
    }
    const output = checkPathArg("output", o.output);
    const argv = ["pack", "create", "--image", checkValue("image", o.image), "-o", output];
    await this.#run(argv, callOpts(o));
    const sidecar = `${output}.smolmachine`;
    try {
      await Deno.stat(sidecar);
    } catch {
      throw new CommandError(
        [this.binary, ...argv],
        0,
        `smolvm exited 0 but "${sidecar}" does not exist`,
        false,
      );
    }
    return sidecar;
  }

  async #runNamed(name: string, argv: string[], options: RunOptions) {
    try {
      return await this.#run(argv, options);
    } catch (err) {
      throw toMachineError(err, name);
    }
  }

  #run(args: string[], options: RunOptions) {
    for (const a of args) {
      if (redact(a) !== a) {
        // Never even try: argv is visible to every process on the host.
        throw new Error(`Refusing to put a secret on smolvm's argv: ${redact(a)}`);
      }
    }
    return run([this.binary, ...args], {
      ...options,
      ...(this.#env ? { env: { ...this.#env, ...options.env } } : {}),
    });
  }
}

/** Parses `smolvm X.Y.Z` (also `smolvm vX.Y.Z-rc.1 (hash)`); undefined if absent. */
export function parseSmolvmVersion(text: string): SmolvmVersion | undefined {
  const m = /^\s*smolvm\s+v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?/m.exec(text);
  if (!m) return undefined;
  const prerelease = m[4] ?? "";
  return {
    major: Number(m[1]),
    minor: Number(m[2]),
    patch: Number(m[3]),
    prerelease,
    text: `${m[1]}.${m[2]}.${m[3]}${prerelease ? `-${prerelease}` : ""}`,
  };
}

/** Semver order of `a` against `b` ("X.Y.Z"); a pre-release sorts before its release. */
export function compareVersions(a: SmolvmVersion, b: string): number {
  const parsed = parseSmolvmVersion(`smolvm ${b}`);
  if (!parsed) throw new TypeError(`compareVersions: bad version "${b}"`);
  const d = a.major - parsed.major || a.minor - parsed.minor || a.patch - parsed.patch;
  if (d !== 0) return Math.sign(d);
  if (a.prerelease === parsed.prerelease) return 0;
  if (!a.prerelease) return 1;
  if (!parsed.prerelease) return -1;
  return a.prerelease < parsed.prerelease ? -1 : 1;
}

function execArgv(
  name: string,
  command: string[],
  o: {
    env?: Record<string, string>;
    workdir?: string;
    interactive: boolean;
    tty: boolean;
    stream: boolean;
  },
): string[] {
  checkName(name);
  if (command.length === 0 || command[0] === "") {
    throw new TypeError("machineExec: empty argv");
  }
  // `--name` long form only: exec has no `-n`.
  const argv = ["machine", "exec", "--name", name];
  if (o.interactive) argv.push("-i");
  if (o.tty) argv.push("-t");
  if (o.stream) argv.push("--stream");
  argv.push(...envFlags(o.env));
  if (o.workdir !== undefined) {
    if (!o.workdir.startsWith("/")) {
      throw new TypeError(`machineExec: workdir "${o.workdir}" is not absolute`);
    }
    argv.push("-w", o.workdir);
  }
  // `--` so smolvm's parser never takes the guest command's flags as its own.
  argv.push("--", ...command);
  return argv;
}

/** clap's usage failure: `error: …` ending in its `--help` hint. */
function isUsageError(stderr: string): boolean {
  return /^error: /m.test(stderr) && /For more information, try '--help'/.test(stderr);
}

/** `--mount-socket HOST:GUEST` for each, checked as smolvm checks them (and the host side too). */
function mountSocketFlags(sockets: { host: string; guest: string }[]): string[] {
  if (sockets.length > MAX_PUBLISHED_SOCKETS) {
    throw new TypeError(`machineCreate: ${sockets.length} sockets; smolvm takes at most 64`);
  }
  const guests = new Set<string>();
  return sockets.flatMap(({ host, guest }) => {
    // smolvm splits at the first ':', so the host path cannot hold one.
    if (!host.startsWith("/") || host.includes(":")) {
      throw new TypeError(`machineCreate: bad host socket path "${host}"`);
    }
    if (!guest.startsWith("/") || /[;|]/.test(guest) || guests.has(guest)) {
      throw new TypeError(`machineCreate: bad or repeated guest socket path "${guest}"`);
    }
    guests.add(guest);
    return ["--mount-socket", `${host}:${guest}`];
  });
}

function envFlags(env: Record<string, string> | undefined): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(env ?? {})) {
    if (!ENV_KEY_RE.test(k)) throw new TypeError(`Bad guest env name "${k}"`);
    out.push("-e", `${k}=${v}`);
  }
  return out;
}

function checkName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new TypeError(
      `Bad smolvm machine name "${name}": use letters, digits, ".", "_" and "-", starting with a letter or digit`,
    );
  }
}

function checkInt(what: string, n: number, min: number, max: number): number {
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new TypeError(`Bad ${what} ${n}: expected an integer from ${min} to ${max}`);
  }
  return n;
}

/** A flag value must not look like a flag to smolvm's parser. */
function checkValue(what: string, v: string): string {
  if (v === "" || v.startsWith("-")) throw new TypeError(`Bad ${what} "${v}"`);
  return v;
}

/** Paths starting with "-" are made explicit so they are never read as flags. */
function checkPathArg(what: string, p: string): string {
  if (p === "") throw new TypeError(`Empty ${what} path`);
  return p.startsWith("-") ? `./${p}` : p;
}

function callOpts(o: CallOptions): RunOptions {
  return {
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  };
}

function parseJson(argv: string[], stdout: string): unknown {
  try {
    return JSON.parse(stdout);
  } catch (err) {
    throw badOutput(argv, `not JSON (${(err as Error).message})`, stdout);
  }
}

function toStatus(item: unknown, argv: string[]): MachineStatus {
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    throw badOutput(argv, "expected a JSON object per machine", JSON.stringify(item));
  }
  const raw = item as Record<string, unknown>;
  if (typeof raw.name !== "string" || typeof raw.state !== "string") {
    throw badOutput(argv, 'missing string "name" or "state"', JSON.stringify(item));
  }
  return { name: raw.name, state: raw.state, raw };
}

function badOutput(argv: string[], why: string, output: string): Error {
  const tail = output.length > 300 ? `${output.slice(0, 300)}…` : output;
  return new Error(`Unexpected output from "smolvm ${argv.join(" ")}": ${why}: ${tail.trim()}`);
}
