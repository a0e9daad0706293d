/**
 * A contract-faithful fake of the `smolvm` 1.x CLI, for tests on machines
 * without smolvm or libkrun. Run it through the `smolvm` shim next to this
 * file. It checks argv strictly against the contract bottle relies on (the
 * project brief, "External contracts: smolvm") and fails the way smolvm does,
 * so a wrapper bug shows up as a failing test rather than as a VM that never
 * boots on a user's Mac.
 *
 * Contract enforced:
 *
 * - `smolvm --version` (or `-V`) prints `smolvm <FAKE_SMOLVM_VERSION or 1.9.3>`.
 * - Machine names are given only as `-n/--name`; `machine exec` takes only the
 *   long `--name`. A positional name (the 0.8.0 habit) fails like
 *   smolvm >= 1.0.2: `Error: …`, exit 1. The fake also requires a name where
 *   smolvm would default to "default" or make one up: bottle never wants that.
 * - `machine create --name N (--image REF|-|PATH | --from X.smolmachine)
 *   [--cpus N] [--mem MiB] [--allow-cidr CIDR]… [--allow-host HOST]…
 *   [--mount-socket HOST_PATH:GUEST_PATH]… [-e K=V]…`. `--mount-socket`
 *   exists from 1.6.4 (before, clap's "unexpected argument"); its value is
 *   split at the first ':', both sides required, the guest path absolute,
 *   without ';' or '|', mounted once, at most 64 (smolvm's own checks,
 *   src/cli/machine.rs `parse_published_sockets`); the fake also wants an
 *   absolute host path. No --allow-cidr and no --allow-host: no network. `--image -` reads a `docker save` archive on stdin and
 *   `--image ./x.tar` reads one from a file: it must be a tar with a top-level
 *   `manifest.json` or `index.json`. Any egress policy switches the recorded
 *   network to virtio-net (guest 100.96.0.2, gateway 100.96.0.1). `--net`
 *   (unrestricted egress) is refused: no bottle may ask for it.
 * - `machine start|stop|status --name N`; `status --json` and `ls --json` print
 *   smolvm's object shape (`name`, `state`, `cpus`, `memory_mib`, `pid`, …;
 *   `ls` an array). stop on a machine that is not running is a no-op.
 * - `machine delete --name N -f`. Without `-f` it asks on stdin; anything but
 *   "y"/"yes" (including no stdin) prints "Cancelled" and exits 0 WITHOUT
 *   deleting, exactly the trap real smolvm sets.
 * - `machine exec --name N [-i] [-t] [--stream] [-e K=V]… [-w DIR]
 *   [--timeout DUR] -- ARGV`: `--` is required. The machine must be running.
 *   ARGV runs for real on the host (no shell) with the cwd in the machine's
 *   guest root (`-w` is mapped under it), an environment of PATH plus the
 *   create-time and exec `-e` variables (nothing else from the host), plus
 *   `FAKE_SMOLVM_GUEST_ROOT`. Absolute paths in ARGV are NOT remapped. stdin is
 *   passed through only with `-i`; output is relayed (so killing the fake ends
 *   the exec even if the command left processes behind). The exit code is the
 *   command's; `-t` is accepted but no TTY is allocated.
 * - `machine cp SRC NAME:/path` copies one regular file into the guest root
 *   (and `NAME:/path DST` back out); the machine must be running.
 * - `pack create --image REF -o STUB [--oci-platform OS/ARCH]` really pulls REF
 *   like smolvm's crane: `GET /v2/`, the manifest (Docker v2 schema2 and OCI
 *   manifests and indexes; from an index the requested platform, else
 *   linux/amd64, else the first), the config and every layer, each checked
 *   against its sha256 digest and size; https first, then plain http only for
 *   localhost, loopback and RFC 1918 hosts. It writes `STUB` (a placeholder
 *   for the packed executable) and `STUB.smolmachine` (JSON: manifest digest,
 *   config, layers), which `machine create --from` accepts.
 * - Failures print `Error: …` and exit 1 ("already exists", "vm not found",
 *   "not running", "digest mismatch", registry 404s). Unknown subcommands,
 *   flags and misplaced arguments print `error: …` naming the argument and
 *   exit 2, like clap.
 *
 * Environment:
 * - `FAKE_SMOLVM_STATE` (default `$TMPDIR/fake-smolvm-<uid>`): directory for state:
 *   `machines/<name>.json` (name, state, image/from, allowCidrs, allowHosts,
 *   env, cpus, mem, files copied in, …) and `guests/<name>/` (guest root).
 * - `FAKE_SMOLVM_LOG`: if set, one JSON line per invocation is appended:
 *   `{"argv": [...], "time": "..."}` (logged before validation).
 * - `FAKE_SMOLVM_VERSION`: the version `--version` reports.
 * - `FAKE_SMOLVM_FAIL`: comma-separated verbs (`create`, `start`, `stop`,
 *   `delete`, `exec`, `cp`, `status`, `ls`, `pack`) that fail with an injected
 *   `Error:` after argv validation; a failed start leaves the machine "failed".
 * - `FAKE_SMOLVM_DENO`: the deno the shim runs this file with (default: PATH).
 * - Each machine is a real guest (the default): a container of the
 *   machine's image (the config digest of the `.smolmachine` or of the
 *   archive, which is the image's ID in the local engine) with exactly the
 *   network the contract promises (none; or the allowed /32s only),
 *   started by `machine start`; `machine exec` runs ARGV in it as root with
 *   the machine's env and `-w`, and `machine cp` copies into and out of it.
 *   Each `--mount-socket` host socket is bind-mounted at its guest path, so
 *   it must exist when the machine starts (smolvm dials it per connection).
 * - `FAKE_SMOLVM_GUEST=host`: exec runs ARGV on the host as described
 *   above, for tests of the fake's own argv contract that boot no image.
 */
import { createHash } from "node:crypto";
import { Fail, Usage } from "./fake_errors.ts";
import { pullImage } from "./fake_registry_pull.ts";
import { scanDockerSave, type TarSummary } from "./fake_tar.ts";
import * as guest from "./fake_guest.ts";

/** Each machine is a container of its image (see fake_guest.ts), unless FAKE_SMOLVM_GUEST=host. */
const dockerGuests = () => Deno.env.get("FAKE_SMOLVM_GUEST") !== "host";

const DEFAULT_VERSION = "1.9.3";
/** The first smolvm with --mount-socket (commit b310083f, #656). */
const MOUNT_SOCKET_SINCE = [1, 6, 4];
const PUBLISH_SOCKET_MAX = 64;
// smolvm's defaults when --cpus/--mem are absent (assumed; not load-bearing).
const DEFAULT_CPUS = 4;
const DEFAULT_MEM_MIB = 8192;
const VIRTIO_GUEST_IP = "100.96.0.2";
const VIRTIO_GATEWAY = "100.96.0.1";
const SMOLMACHINE_FORMAT = "fake-smolmachine/1";

// ---------------------------------------------------------------------------
// argv parsing (clap-like, strict)

interface FlagSpec {
  long: string;
  short?: string;
  value?: boolean;
  repeat?: boolean;
}

interface Parsed {
  values: Map<string, string[]>;
  bools: Set<string>;
  positionals: string[];
  /** Everything after `--`, or undefined if there was no `--`. */
  trailing: string[] | undefined;
}

function parseArgs(cmd: string, args: string[], specs: FlagSpec[]): Parsed {
  const out: Parsed = { values: new Map(), bools: new Set(), positionals: [], trailing: undefined };
  const byLong = new Map(specs.map((s) => [s.long, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const set = (spec: FlagSpec, shown: string, value: string | undefined) => {
    if (!spec.value) {
      if (out.bools.has(spec.long)) {
        throw new Usage(`the argument '${shown}' cannot be used multiple times (${cmd})`);
      }
      out.bools.add(spec.long);
      return;
    }
    if (value === undefined || (value.startsWith("-") && value !== "-")) {
      throw new Usage(`a value is required for '${shown} <VALUE>' but none was supplied (${cmd})`);
    }
    const list = out.values.get(spec.long) ?? [];
    if (list.length > 0 && !spec.repeat) {
      throw new Usage(`the argument '${shown}' cannot be used multiple times (${cmd})`);
    }
    list.push(value);
    out.values.set(spec.long, list);
  };
  for (let i = 0; i < args.length; i++) {
    const t = args[i]!;
    if (t === "--") {
      out.trailing = args.slice(i + 1);
      break;
    }
    if (t.startsWith("--")) {
      const eq = t.indexOf("=");
      const flag = eq >= 0 ? t.slice(0, eq) : t;
      const spec = byLong.get(flag);
      if (!spec) throw new Usage(`unexpected argument '${flag}' found (${cmd})`);
      if (eq >= 0) {
        if (!spec.value) throw new Usage(`unexpected value for '${flag}' (${cmd})`);
        set(spec, flag, t.slice(eq + 1));
      } else {
        set(spec, flag, spec.value ? args[++i] : undefined);
      }
      continue;
    }
    if (t.startsWith("-") && t !== "-") {
      for (let j = 1; j < t.length; j++) {
        const short = `-${t[j]}`;
        const spec = byShort.get(short);
        if (!spec) {
          const hint = cmd === "machine exec" && short === "-n"
            ? "; machine exec takes the machine as --name (it has no -n)"
            : "";
          throw new Usage(`unexpected argument '${short}' found in '${t}' (${cmd})${hint}`);
        }
        if (spec.value) {
          const rest = t.slice(j + 1);
          set(spec, short, rest !== "" ? rest : args[++i]);
          break;
        }
        set(spec, short, undefined);
      }
      continue;
    }
    out.positionals.push(t);
  }
  return out;
}

const one = (p: Parsed, long: string) => p.values.get(long)?.[0];
const many = (p: Parsed, long: string) => p.values.get(long) ?? [];

/** Machine name from -n/--name; a positional name fails like smolvm >= 1.0.2. */
function requireName(cmd: string, p: Parsed, flags = "-n/--name"): string {
  const pos = p.positionals[0];
  if (pos !== undefined) {
    throw new Fail(
      `unexpected argument '${pos}' for '${cmd}': machine names are given with ${flags}, not as a positional argument`,
    );
  }
  const name = one(p, "--name");
  if (name === undefined) {
    throw new Usage(`the following required arguments were not provided: ${flags} <NAME> (${cmd})`);
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new Fail(`config operation failed: validate name: invalid machine name '${name}'`);
  }
  return name;
}

function noPositionals(cmd: string, p: Parsed): void {
  if (p.positionals.length > 0) {
    throw new Usage(`unexpected argument '${p.positionals[0]}' found (${cmd})`);
  }
  if (p.trailing !== undefined) throw new Usage(`unexpected argument '--' found (${cmd})`);
}

// ---------------------------------------------------------------------------
// state

interface FileRecord {
  sha256: string;
  size: number;
  source: string;
}

interface Machine {
  name: string;
  state: "created" | "running" | "stopped" | "failed";
  image: string | null;
  imageArchive: TarSummary | null;
  from: string | null;
  smolmachine: Record<string, unknown> | null;
  allowCidrs: string[];
  allowHosts: string[];
  /** `--mount-socket`: host socket -> guest path. */
  mountSockets?: { host: string; guest: string }[];
  env: string[];
  cpus: number;
  mem: number;
  network: { backend: "virtio-net"; guestIp: string; gateway: string } | null;
  /** What a docker guest runs: an image ID (or reference) in the local engine. */
  guestImage: string | null;
  files: Record<string, FileRecord>;
  createdAt: number;
  pid: number | null;
}

function stateDir(): string {
  return Deno.env.get("FAKE_SMOLVM_STATE") ??
    `${Deno.env.get("TMPDIR") ?? "/tmp"}/fake-smolvm-${Deno.uid() ?? "user"}`;
}
const machinePath = (name: string) => `${stateDir()}/machines/${name}.json`;
const guestRoot = (name: string) => `${stateDir()}/guests/${name}`;

async function loadMachine(name: string): Promise<Machine> {
  try {
    return JSON.parse(await Deno.readTextFile(machinePath(name))) as Machine;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new Fail(`vm not found: ${name}`);
    throw err;
  }
}

async function saveMachine(m: Machine): Promise<void> {
  const path = machinePath(m.name);
  const tmp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(m, null, 2) + "\n");
  await Deno.rename(tmp, path);
}

async function listMachines(): Promise<Machine[]> {
  const dir = `${stateDir()}/machines`;
  const out: Machine[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".json")) {
        out.push(JSON.parse(await Deno.readTextFile(`${dir}/${e.name}`)) as Machine);
      }
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

function statusJson(m: Machine): Record<string, unknown> {
  // The object shape of smolvm's `machine_status_json` (status --json, ls --json).
  return {
    name: m.name,
    state: m.state,
    cpus: m.cpus,
    memory_mib: m.mem,
    pid: m.pid,
    mounts: 0,
    ports: 0,
    created_at: m.createdAt,
    storage_gb: null,
    overlay_gb: null,
    image: m.image,
    entrypoint: [],
    cmd: [],
    ephemeral: false,
    gpu: false,
    gpu_vram_mib: null,
    restart_policy: "never",
    restart_max_retries: 0,
    restart_count: 0,
    health_cmd: null,
    health_interval_secs: null,
    health_timeout_secs: null,
    health_retries: null,
    health_startup_grace_secs: null,
    network: m.network !== null,
  };
}

function injectedFailure(verb: string): void {
  const list = (Deno.env.get("FAKE_SMOLVM_FAIL") ?? "").split(",").map((s) => s.trim());
  if (list.includes(verb)) {
    throw new Fail(`agent operation failed: ${verb}: injected failure (FAKE_SMOLVM_FAIL=${verb})`);
  }
}

// ---------------------------------------------------------------------------
// validation helpers

function checkCidr(v: string): string {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(v);
  if (v4) {
    const octets = v4.slice(1, 5).map(Number);
    if (octets.every((o) => o <= 255) && Number(v4[5]) <= 32) return v;
  } else if (/^[0-9A-Fa-f:]+\/(\d{1,3})$/.test(v) && v.includes(":")) {
    if (Number(v.split("/")[1]) <= 128) return v;
  }
  throw new Usage(`invalid value '${v}' for '--allow-cidr <CIDR>': expected ADDRESS/PREFIX`);
}

function checkHost(v: string): string {
  const label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
  if (!new RegExp(`^${label}(\\.${label})*\\.?$`).test(v)) {
    throw new Fail(`config operation failed: --allow-host: invalid hostname '${v}'`);
  }
  return v;
}

function checkEnv(v: string): string {
  const eq = v.indexOf("=");
  if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v.slice(0, eq))) {
    throw new Fail(`invalid env format '${v}': expected KEY=VALUE`);
  }
  return v;
}

function versionAtLeast(min: number[]): boolean {
  const v = (Deno.env.get("FAKE_SMOLVM_VERSION") ?? DEFAULT_VERSION).split(/[.-]/).map(Number);
  for (let i = 0; i < 3; i++) {
    if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) > min[i]!;
  }
  return true;
}

/** smolvm's `parse_published_sockets` checks, and an absolute host path (bottle's own rule). */
function checkMountSockets(specs: string[]): { host: string; guest: string }[] {
  if (specs.length > PUBLISH_SOCKET_MAX) {
    throw new Fail(
      `configuration error: publish-socket: too many published sockets (${specs.length}); max is ${PUBLISH_SOCKET_MAX}`,
    );
  }
  const guests = new Set<string>();
  return specs.map((spec) => {
    const i = spec.indexOf(":");
    if (i < 0) {
      throw new Fail(
        `configuration error: mount-socket: expected HOST_PATH:GUEST_PATH, got '${spec}'`,
      );
    }
    const host = spec.slice(0, i);
    const guestPath = spec.slice(i + 1);
    if (!host || !guestPath) {
      throw new Fail(
        `configuration error: mount-socket: both HOST_PATH and GUEST_PATH are required in '${spec}'`,
      );
    }
    if (/[;|]/.test(guestPath)) {
      throw new Fail(
        `configuration error: publish-socket: guest path '${guestPath}' contains an unsupported character (';' or '|')`,
      );
    }
    if (!guestPath.startsWith("/")) {
      throw new Fail(
        `configuration error: publish-socket: guest path '${guestPath}' must be absolute`,
      );
    }
    if (guests.has(guestPath)) {
      throw new Fail(
        `configuration error: mount-socket: guest path '${guestPath}' is mounted more than once`,
      );
    }
    if (!host.startsWith("/")) {
      throw new Fail(`fake smolvm: --mount-socket host path '${host}' is not absolute`);
    }
    guests.add(guestPath);
    return { host, guest: guestPath };
  });
}

function checkUint(flag: string, v: string | undefined, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) > max) {
    throw new Usage(`invalid value '${v}' for '${flag}': expected an integer from 0 to ${max}`);
  }
  const n = Number(v);
  if (n === 0) throw new Fail(`config operation failed: validate resources: ${flag} must be > 0`);
  return n;
}

function parseDuration(v: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(v);
  if (!m) throw new Usage(`invalid value '${v}' for '--timeout <DURATION>'`);
  const n = Number(m[1]);
  return n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "s"] ?? 1000);
}

// ---------------------------------------------------------------------------
// machine subcommands

async function machineCreate(args: string[]): Promise<number> {
  const cmd = "machine create";
  const p = parseArgs(cmd, args, [
    { long: "--name", short: "-n", value: true },
    { long: "--image", short: "-I", value: true },
    { long: "--from", value: true },
    { long: "--cpus", value: true },
    { long: "--mem", value: true },
    { long: "--allow-cidr", value: true, repeat: true },
    { long: "--allow-host", value: true, repeat: true },
    { long: "--env", short: "-e", value: true, repeat: true },
    { long: "--net" },
    ...(versionAtLeast(MOUNT_SOCKET_SINCE)
      ? [{ long: "--mount-socket", value: true, repeat: true }]
      : []),
  ]);
  const name = requireName(cmd, p);
  if (p.trailing !== undefined) {
    throw new Usage(
      `unexpected argument '--' found (${cmd}): bottle does not use a workload command`,
    );
  }
  if (p.bools.has("--net")) {
    throw new Usage(
      `unexpected argument '--net' found (${cmd}): unrestricted egress is not part of bottle's contract`,
    );
  }
  const image = one(p, "--image");
  const from = one(p, "--from");
  if (image !== undefined && from !== undefined) {
    throw new Usage(`the argument '--from <PATH>' cannot be used with '--image <IMAGE>' (${cmd})`);
  }
  if (image === undefined && from === undefined) {
    throw new Usage(`one of '--image <IMAGE>' or '--from <PATH>' is required by bottle (${cmd})`);
  }
  const cpus = checkUint("--cpus", one(p, "--cpus"), 255) ?? DEFAULT_CPUS;
  const mem = checkUint("--mem", one(p, "--mem"), 0xffffffff) ?? DEFAULT_MEM_MIB;
  const allowCidrs = many(p, "--allow-cidr").map(checkCidr);
  const allowHosts = many(p, "--allow-host").map(checkHost);
  const env = many(p, "--env").map(checkEnv);
  const mountSockets = checkMountSockets(many(p, "--mount-socket"));

  let imageRef: string | null = null;
  let archive: TarSummary | null = null;
  let smolmachine: Record<string, unknown> | null = null;
  let fromAbs: string | null = null;
  if (image === "-") {
    archive = await scanDockerSave(Deno.stdin.readable, "read image archive from stdin");
    imageRef = `local:sha256:${archive.sha256}`;
  } else if (image !== undefined && /^(\/|\.\/|\.\.\/)/.test(image)) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(image);
    } catch {
      throw new Fail(`image source not found: ${image}`);
    }
    if (info.isDirectory) {
      imageRef = `local:dir:${await Deno.realPath(image)}`;
    } else {
      const f = await Deno.open(image);
      archive = await scanDockerSave(f.readable, `read image archive ${image}`);
      imageRef = `local:sha256:${archive.sha256}`;
    }
  } else if (image !== undefined) {
    if (!/^[a-z0-9][a-z0-9._:\/@-]*$/i.test(image)) {
      throw new Fail(`config operation failed: --image: invalid image reference '${image}'`);
    }
    imageRef = image;
  } else if (from !== undefined) {
    try {
      fromAbs = await Deno.realPath(from);
    } catch {
      throw new Fail(`config operation failed: create from .smolmachine: file not found: ${from}`);
    }
    try {
      smolmachine = JSON.parse(await Deno.readTextFile(fromAbs));
    } catch (err) {
      throw new Fail(`agent operation failed: read .smolmachine: ${(err as Error).message}`);
    }
    if (smolmachine?.format !== SMOLMACHINE_FORMAT) {
      throw new Fail(`agent operation failed: read .smolmachine: ${from} is not a .smolmachine`);
    }
    imageRef = String(smolmachine.image);
  }

  injectedFailure("create");
  await Deno.mkdir(`${stateDir()}/machines`, { recursive: true });
  try {
    // createNew makes "already exists" race-free between concurrent creates.
    (await Deno.open(machinePath(name), { createNew: true, write: true })).close();
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) {
      throw new Fail(`config operation failed: create machine: machine '${name}' already exists`);
    }
    throw err;
  }
  const m: Machine = {
    name,
    state: "created",
    image: imageRef,
    imageArchive: archive,
    from: fromAbs,
    smolmachine,
    allowCidrs,
    allowHosts,
    ...(mountSockets.length > 0 ? { mountSockets } : {}),
    env,
    cpus,
    mem,
    network: allowCidrs.length > 0 || allowHosts.length > 0
      ? { backend: "virtio-net", guestIp: VIRTIO_GUEST_IP, gateway: VIRTIO_GATEWAY }
      : null,
    guestImage: archive?.configDigest ??
      (smolmachine ? String((smolmachine.config as { digest?: string })?.digest ?? "") : null) ??
      imageRef,
    files: {},
    createdAt: Math.floor(Date.now() / 1000),
    pid: null,
  };
  await saveMachine(m);
  console.log(`Created machine: ${name}\n  CPUs: ${cpus}, Memory: ${mem} MiB`);
  console.log(`\nUse 'smolvm machine start --name ${name}' to start the machine`);
  return 0;
}

async function machineStart(args: string[]): Promise<number> {
  const cmd = "machine start";
  const p = parseArgs(cmd, args, [{ long: "--name", short: "-n", value: true }]);
  const name = requireName(cmd, p);
  noPositionals(cmd, p);
  const m = await loadMachine(name);
  if (m.state === "running") {
    console.log(`Machine '${name}' is already running`);
    return 0;
  }
  try {
    injectedFailure("start");
  } catch (err) {
    m.state = "failed";
    await saveMachine(m);
    throw err;
  }
  await Deno.mkdir(`${guestRoot(name)}/root`, { recursive: true });
  if (dockerGuests()) {
    if (!m.guestImage) throw new Fail(`start: machine '${name}' has no image to boot`);
    await guest.startGuest(stateDir(), name, m.guestImage, m.env, m.allowCidrs, m.mountSockets);
  }
  m.state = "running";
  m.pid = 10_000 + Math.floor(Math.random() * 50_000);
  await saveMachine(m);
  console.log(`Machine '${name}' started`);
  return 0;
}

async function machineStop(args: string[]): Promise<number> {
  const cmd = "machine stop";
  const p = parseArgs(cmd, args, [{ long: "--name", short: "-n", value: true }]);
  const name = requireName(cmd, p);
  noPositionals(cmd, p);
  const m = await loadMachine(name);
  injectedFailure("stop");
  if (m.state !== "running") {
    console.log(`Machine '${name}' is not running`);
    return 0;
  }
  if (dockerGuests()) await guest.stopGuest(stateDir(), name);
  m.state = "stopped";
  m.pid = null;
  await saveMachine(m);
  console.log(`Machine '${name}' stopped`);
  return 0;
}

async function machineDelete(args: string[]): Promise<number> {
  const cmd = "machine delete";
  const p = parseArgs(cmd, args, [
    { long: "--name", short: "-n", value: true },
    { long: "--force", short: "-f" },
  ]);
  const name = requireName(cmd, p);
  noPositionals(cmd, p);
  await loadMachine(name);
  if (!p.bools.has("--force")) {
    await Deno.stderr.write(new TextEncoder().encode(`Delete machine '${name}'? [y/N] `));
    const answer = (await firstLine(Deno.stdin.readable)).trim().toLowerCase();
    if (answer !== "y" && answer !== "yes") {
      console.log("Cancelled");
      return 0;
    }
  }
  injectedFailure("delete");
  if (dockerGuests()) await guest.deleteGuest(stateDir(), name);
  await Deno.remove(guestRoot(name), { recursive: true }).catch(() => {});
  await Deno.remove(machinePath(name));
  console.log(`Deleted machine: ${name}`);
  return 0;
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const dec = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += dec.decode(chunk, { stream: true });
    if (text.includes("\n")) break;
  }
  return text.split("\n")[0] ?? "";
}

async function machineStatus(args: string[]): Promise<number> {
  const cmd = "machine status";
  const p = parseArgs(cmd, args, [
    { long: "--name", short: "-n", value: true },
    { long: "--json" },
  ]);
  const name = requireName(cmd, p);
  noPositionals(cmd, p);
  let m: Machine;
  try {
    m = await loadMachine(name);
  } catch (err) {
    if (err instanceof Fail && p.bools.has("--json")) {
      throw new Fail(`config operation failed: machine status: machine '${name}' not found`);
    }
    throw err;
  }
  injectedFailure("status");
  if (p.bools.has("--json")) console.log(JSON.stringify(statusJson(m), null, 2));
  else console.log(`Machine '${name}': ${m.state}`);
  return 0;
}

async function machineLs(args: string[]): Promise<number> {
  const cmd = "machine ls";
  const p = parseArgs(cmd, args, [{ long: "--json" }, { long: "--verbose", short: "-v" }]);
  noPositionals(cmd, p);
  injectedFailure("ls");
  const all = await listMachines();
  if (p.bools.has("--json")) {
    console.log(all.length === 0 ? "[]" : JSON.stringify(all.map(statusJson), null, 2));
  } else if (all.length === 0) {
    console.log("No machines found");
  } else {
    console.log(`${"NAME".padEnd(20)} ${"STATE".padEnd(12)} CPUS MEMORY`);
    for (const m of all) {
      console.log(`${m.name.padEnd(20)} ${m.state.padEnd(12)} ${m.cpus} ${m.mem} MiB`);
    }
  }
  return 0;
}

async function requireRunning(name: string): Promise<Machine> {
  const m = await loadMachine(name);
  if (m.state !== "running") {
    throw new Fail(
      `machine '${name}' is not running (state: ${m.state}); start it with: smolvm machine start --name ${name}`,
    );
  }
  return m;
}

/** Host path for a guest path inside the machine's guest root. */
function inGuest(name: string, guestPath: string): string {
  if (!guestPath.startsWith("/")) throw new Fail(`cp: guest path '${guestPath}' must be absolute`);
  const parts = guestPath.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.includes("..")) throw new Fail(`cp: guest path '${guestPath}' must not contain '..'`);
  return [guestRoot(name), ...parts].join("/");
}

async function machineExec(args: string[]): Promise<number> {
  const cmd = "machine exec";
  const p = parseArgs(cmd, args, [
    { long: "--name", value: true },
    { long: "--interactive", short: "-i" },
    { long: "--tty", short: "-t" },
    { long: "--stream" },
    { long: "--env", short: "-e", value: true, repeat: true },
    { long: "--workdir", short: "-w", value: true },
    { long: "--timeout", value: true },
  ]);
  if (p.positionals.length > 0) {
    throw new Usage(
      `unexpected argument '${
        p.positionals[0]
      }' found (${cmd}): put '--' before the command (machine exec --name N -- COMMAND)`,
    );
  }
  if (p.trailing === undefined || p.trailing.length === 0) {
    throw new Usage(`the following required arguments were not provided: -- <COMMAND>... (${cmd})`);
  }
  const name = one(p, "--name");
  if (name === undefined) {
    throw new Usage(`the following required arguments were not provided: --name <NAME> (${cmd})`);
  }
  const env = many(p, "--env").map(checkEnv);
  const timeoutMs = one(p, "--timeout") !== undefined
    ? parseDuration(one(p, "--timeout")!)
    : undefined;
  const m = await requireRunning(name);
  injectedFailure("exec");

  const root = guestRoot(name);
  const workdir = one(p, "--workdir");
  const cwd = workdir === undefined
    ? root
    : inGuest(name, workdir.startsWith("/") ? workdir : `/${workdir}`);
  await Deno.mkdir(cwd, { recursive: true });
  const childEnv: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: `${root}/root`,
    FAKE_SMOLVM_GUEST_ROOT: root,
  };
  for (const kv of [...m.env, ...env]) {
    const eq = kv.indexOf("=");
    childEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const [program, ...rest] = p.trailing;
  const interactive = p.bools.has("--interactive");
  let child: Deno.ChildProcess;
  try {
    // Output is relayed, not inherited, like smolvm's agent relays it over
    // vsock: when this process dies its pipes close, whatever the guest
    // command left running.
    child = dockerGuests()
      ? new Deno.Command("docker", {
        args: guest.execArgs(stateDir(), name, p.trailing, {
          env,
          ...(workdir !== undefined ? { workdir } : {}),
          interactive,
        }),
        stdin: interactive ? "piped" : "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn()
      : new Deno.Command(program!, {
        args: rest,
        cwd,
        env: childEnv,
        clearEnv: true,
        stdin: interactive ? "piped" : "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Fail(
        `agent operation failed: vm exec: ${program}: No such file or directory (os error 2)`,
      );
    }
    throw err;
  }
  if (interactive) Deno.stdin.readable.pipeTo(child.stdin).catch(() => {});
  const relays = Promise.all([
    child.stdout.pipeTo(Deno.stdout.writable, { preventClose: true }),
    child.stderr.pipeTo(Deno.stderr.writable, { preventClose: true }),
  ]).catch(() => {});
  const kill = (sig: Deno.Signal) => {
    try {
      child.kill(sig);
    } catch { /* already gone */ }
  };
  // Killing smolvm ends the exec: pass the signal on and go.
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => {
      kill(sig);
      Deno.exit(128 + signalNumber(sig));
    });
  }
  let timedOut = false;
  const timer = timeoutMs !== undefined
    ? setTimeout(() => {
      timedOut = true;
      kill("SIGKILL");
    }, timeoutMs)
    : undefined;
  const status = await child.status;
  if (timer !== undefined) clearTimeout(timer);
  // The command has exited; output still in flight gets a moment, but a
  // background process holding the pipes does not keep exec waiting.
  await Promise.race([relays, new Promise((r) => setTimeout(r, 200))]);
  if (timedOut) {
    console.error(`Error: command timed out after ${one(p, "--timeout")}`);
    return 124;
  }
  return status.signal ? 128 + signalNumber(status.signal) : status.code;
}

function signalNumber(sig: Deno.Signal): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[
    sig
  ] ?? 1;
}

async function machineCp(args: string[]): Promise<number> {
  const cmd = "machine cp";
  const p = parseArgs(cmd, args, []);
  if (p.trailing !== undefined) throw new Usage(`unexpected argument '--' found (${cmd})`);
  if (p.positionals.length !== 2) {
    throw new Usage(
      `${cmd} takes exactly SRC and DST (got ${p.positionals.length} arguments: ${
        JSON.stringify(p.positionals)
      })`,
    );
  }
  const [src, dst] = p.positionals as [string, string];
  const split = (s: string) => {
    const i = s.indexOf(":");
    return i > 0 ? [s.slice(0, i), s.slice(i + 1)] as const : undefined;
  };
  const down = split(src);
  const up = down ? undefined : split(dst);
  if (!down && !up) {
    throw new Fail(
      "config operation failed: cp: one of SRC or DST must use machine:path syntax (e.g., myvm:/workspace/file)",
    );
  }
  const [name, guestPath] = (down ?? up)!;
  const m = await requireRunning(name);
  injectedFailure("cp");
  if (up) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(src);
    } catch {
      throw new Fail(
        `agent operation failed: read local file: ${src}: No such file or directory (os error 2)`,
      );
    }
    if (!info.isFile) {
      throw new Fail(
        `agent operation failed: read local file: ${src}: Is a directory (os error 21)`,
      );
    }
    const data = await Deno.readFile(src);
    if (dockerGuests()) await guest.copyToGuest(stateDir(), name, src, guestPath);
    else {
      const target = inGuest(name, guestPath);
      await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
      await Deno.copyFile(src, target);
    }
    m.files[guestPath] = {
      sha256: createHash("sha256").update(data).digest("hex"),
      size: data.length,
      source: await Deno.realPath(src),
    };
    await saveMachine(m);
  } else if (dockerGuests()) {
    await guest.copyFromGuest(stateDir(), name, guestPath, dst);
  } else {
    const from = inGuest(name, guestPath);
    try {
      await Deno.copyFile(from, dst);
    } catch {
      throw new Fail(
        `agent operation failed: read file: ${guestPath}: No such file or directory (os error 2)`,
      );
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------
// pack create

async function packCreate(args: string[]): Promise<number> {
  const cmd = "pack create";
  const p = parseArgs(cmd, args, [
    { long: "--image", short: "-I", value: true },
    { long: "--output", short: "-o", value: true },
    { long: "--oci-platform", value: true },
    { long: "--cpus", value: true },
    { long: "--mem", value: true },
  ]);
  noPositionals(cmd, p);
  const image = one(p, "--image");
  const output = one(p, "--output");
  if (image === undefined) {
    throw new Usage(`the following required arguments were not provided: --image <IMAGE> (${cmd})`);
  }
  if (output === undefined) {
    throw new Usage(`the following required arguments were not provided: --output <PATH> (${cmd})`);
  }
  const platform = one(p, "--oci-platform");
  if (platform !== undefined && !/^[a-z0-9]+\/[a-z0-9_]+$/.test(platform)) {
    throw new Usage(`invalid value '${platform}' for '--oci-platform <OS/ARCH>'`);
  }
  const cpus = checkUint("--cpus", one(p, "--cpus"), 255) ?? DEFAULT_CPUS;
  const mem = checkUint("--mem", one(p, "--mem"), 0xffffffff) ?? DEFAULT_MEM_MIB;
  if (image === "-" || /^(\/|\.\/|\.\.\/)/.test(image)) {
    throw new Fail(
      `pack create: '${image}' is not a registry reference (pack create --image pulls from a registry)`,
    );
  }
  injectedFailure("pack");
  const pulled = await pullImage(image, platform);
  console.log(
    `Image: ${image} (${pulled.layers.length} layers, ${
      pulled.layers.reduce((n, l) => n + l.size, 0)
    } bytes)`,
  );
  const sidecar = {
    format: SMOLMACHINE_FORMAT,
    image,
    ...pulled,
    cpus,
    mem,
    createdBy: `fake smolvm ${Deno.env.get("FAKE_SMOLVM_VERSION") ?? DEFAULT_VERSION}`,
  };
  try {
    await Deno.writeTextFile(`${output}.smolmachine`, JSON.stringify(sidecar, null, 2) + "\n");
    await Deno.writeTextFile(
      output,
      "#!/bin/sh\necho 'fake smolvm packed executable' >&2\nexit 1\n",
      { mode: 0o755 },
    );
  } catch (err) {
    throw new Fail(`pack create: write ${output}: ${(err as Error).message}`);
  }
  console.log(`Packed: ${output} (+ ${output}.smolmachine)`);
  return 0;
}

// ---------------------------------------------------------------------------

async function main(args: string[]): Promise<number> {
  const logFile = Deno.env.get("FAKE_SMOLVM_LOG");
  if (logFile) {
    await Deno.writeTextFile(
      logFile,
      JSON.stringify({ argv: args, time: new Date().toISOString() }) + "\n",
      {
        append: true,
      },
    );
  }
  const [top, sub, ...rest] = args;
  if (top === "--version" || top === "-V") {
    if (args.length > 1) throw new Usage(`unexpected argument '${args[1]}' found`);
    console.log(`smolvm ${Deno.env.get("FAKE_SMOLVM_VERSION") ?? DEFAULT_VERSION}`);
    return 0;
  }
  if (top === undefined) throw new Usage("a subcommand is required");
  if (top === "machine") {
    const verbs: Record<string, (a: string[]) => Promise<number>> = {
      create: machineCreate,
      start: machineStart,
      stop: machineStop,
      delete: machineDelete,
      rm: machineDelete,
      status: machineStatus,
      ls: machineLs,
      list: machineLs,
      exec: machineExec,
      cp: machineCp,
    };
    const fn = sub === undefined ? undefined : verbs[sub];
    if (!fn) {
      throw new Usage(
        sub === undefined
          ? "'smolvm machine' requires a subcommand"
          : `unrecognized subcommand '${sub}' (machine)`,
      );
    }
    return await fn(rest);
  }
  if (top === "pack") {
    if (sub !== "create") {
      throw new Usage(
        sub === undefined
          ? "'smolvm pack' requires a subcommand"
          : `unrecognized subcommand '${sub}' (pack)`,
      );
    }
    return await packCreate(rest);
  }
  throw new Usage(`unrecognized subcommand '${top}'`);
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (err) {
    if (err instanceof Usage) {
      console.error(`error: ${err.message}\n\nFor more information, try '--help'.`);
      code = 2;
    } else if (err instanceof Fail) {
      console.error(`Error: ${err.message}`);
      code = 1;
    } else {
      console.error(
        `Error: fake smolvm internal failure: ${err instanceof Error ? err.stack : String(err)}`,
      );
      code = 1;
    }
  }
  Deno.exit(code);
}
