/**
 * Starting and stopping a bottle's host relay (`host_relay.ts`) as a
 * process of its own: started detached (its own session, so a terminal's
 * Ctrl-C goes to the session, not to it), ready once it says so, tracked
 * by its pid file in its dir, and stopped by pid only once its command line
 * proves it is that dir's relay (a pid can be reused).
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { RELAY_PID, RELAY_SPEC, type RelaySpec } from "./host_relay.ts";
import { makePrivateDir, writePrivateFile } from "../../state/private_files.ts";
import { underDenoCli } from "../../proc/deno_cli.ts";
import { run } from "../../proc/runner.ts";

/** The compiled binary's hidden subcommand that runs the relay (main.ts). */
export const RELAY_SUBCOMMAND = "__relay";

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

/** Starts the relay of `dir` and returns once every socket listens. */
export async function startRelay(dir: string, spec: RelaySpec): Promise<void> {
  await privateParent(dir);
  const running = await relayPid(dir);
  if (running !== undefined && await isRelayOf(running, dir)) {
    throw new Error(`A relay already serves "${dir}" (pid ${running}): another bottle's`);
  }
  await makePrivateDir(dir);
  await writePrivateFile(join(dir, RELAY_SPEC), JSON.stringify(spec, null, 2) + "\n");
  const [bin, ...args] = relayCommand(dir, spec);
  const child = new Deno.Command(bin!, {
    args,
    // Nothing of the launcher's: not its env (the host's secrets), not its cwd (the project).
    clearEnv: true,
    env: relayEnv(),
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let said = "";
  const timer = setTimeout(() => reader.cancel().catch(() => {}), READY_TIMEOUT_MS);
  try {
    while (!said.includes("ready\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      said += value;
    }
  } finally {
    clearTimeout(timer);
  }
  if (!said.includes("ready\n")) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    const status = await child.status;
    throw new Error(
      `The host relay for the VM's sockets did not start (exit ${status.code}): ${
        (await stderr).trim() || "it said nothing"
      }`,
    );
  }
  // It outlives this process: nothing here waits for it any more.
  reader.cancel().catch(() => {});
  child.unref();
}

/** Stops the relay of `dir`, if one runs, and removes the dir. */
export async function stopRelay(dir: string): Promise<void> {
  const pid = await relayPid(dir);
  if (pid !== undefined && await isRelayOf(pid, dir)) {
    signal(pid, "SIGTERM");
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (await isRelayOf(pid, dir)) {
      if (Date.now() > deadline) {
        signal(pid, "SIGKILL");
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await Deno.remove(dir, { recursive: true }).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
}

/** The running relay's pid, from its pid file; undefined when none runs. */
export async function relayPid(dir: string): Promise<number | undefined> {
  try {
    const pid = Number((await Deno.readTextFile(join(dir, RELAY_PID))).trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is alive and is the relay of `dir` (by its command line). */
export async function isRelayOf(pid: number, dir: string): Promise<boolean> {
  let argv: string[];
  try {
    // A zombie's cmdline is empty: it is no relay any more.
    argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
  } catch {
    if (Deno.build.os === "linux") return false;
    const r = await run(["ps", "-p", String(pid), "-o", "command="], { check: false });
    if (r.code !== 0) return false;
    // ps joins argv with spaces: the relay's marker, then the dir as the last argument.
    const command = r.stdout.trim();
    return command.endsWith(` ${dir}`) &&
      (command.includes(` ${RELAY_SUBCOMMAND} `) || command.includes("relay_main.ts "));
  }
  return argv.includes(dir) &&
    argv.some((a) => a === RELAY_SUBCOMMAND || a.endsWith("relay_main.ts"));
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch { /* already gone */ }
}

/** How to run the relay: this script under the deno CLI, else this binary's subcommand. */
function relayCommand(dir: string, spec: RelaySpec): string[] {
  if (!underDenoCli()) return [Deno.execPath(), RELAY_SUBCOMMAND, dir];
  // Only what it needs: its dir and sockets, the record it watches, the bundle's ports on loopback.
  const paths = spec.sockets.map((s) => s.path);
  const ports = spec.sockets.map((s) => `127.0.0.1:${s.port}`);
  const scoped = ![dir, spec.record, ...paths].some((p) => p.includes(","));
  return [
    Deno.execPath(),
    "run",
    "--quiet",
    "--no-prompt",
    "--no-config",
    scoped ? `--allow-read=${[dir, spec.record, ...paths].join(",")}` : "--allow-read",
    scoped ? `--allow-write=${[dir, ...paths].join(",")}` : "--allow-write",
    scoped
      ? `--allow-net=${[...ports, ...paths.map((p) => `unix:${p}`)].join(",")}`
      : "--allow-net",
    fileURLToPath(new URL("./relay_main.ts", import.meta.url)),
    dir,
  ];
}

/** What the relay's process gets of this one's environment: where its runtime lives, no more. */
function relayEnv(): Record<string, string> {
  const keep = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "NO_COLOR"];
  return Object.fromEntries(
    keep.flatMap((k) => (Deno.env.get(k) !== undefined ? [[k, Deno.env.get(k)!]] : [])),
  );
}

/**
 * The relay's dir sits in a dir of this user's alone (the bottle's state dir,
 * or a short path in /tmp made 0700 here): refused when someone else made it.
 */
async function privateParent(dir: string): Promise<void> {
  const parent = dir.slice(0, dir.lastIndexOf("/"));
  await Deno.mkdir(parent, { mode: 0o700 }).catch((err) => {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  });
  const info = await Deno.lstat(parent);
  if (!info.isDirectory || info.uid !== Deno.uid() || ((info.mode ?? 0) & 0o077) !== 0) {
    throw new Error(`"${parent}" is not a private dir of this user's: remove it and start again`);
  }
}
