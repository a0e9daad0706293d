/**
 * What the real-engine tests share: the bottle CLI run as a subprocess (as a
 * user runs it), isolated state dirs, the pipelock stand-in image, and
 * probes of the engine's real state by label.
 */
import { fileURLToPath } from "node:url";
import { buildPipelockStandinImage } from "../fakes/pipelock_standin_image.ts";
import { run, type RunResult } from "../../src/proc/runner.ts";
import { startTestUpstream, type TestUpstream } from "../fakes/test_upstream.ts";

export const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

let standin: Promise<string> | undefined;
/** The pipelock stand-in image, built once per test process. */
export function pipelockStandin(): Promise<string> {
  return (standin ??= buildPipelockStandinImage());
}

export interface BottleEnv {
  env: Record<string, string>;
  stateRoot: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A private HOME and XDG dirs, and the env the bottle CLI needs in tests. */
export async function bottleEnv(extra: Record<string, string> = {}): Promise<BottleEnv> {
  const home = await Deno.makeTempDir({ prefix: "bottle-it-home-" });
  const env: Record<string, string> = {
    HOME: home,
    XDG_STATE_HOME: `${home}/state`,
    XDG_CACHE_HOME: `${home}/cache`,
    XDG_CONFIG_HOME: `${home}/config`,
    BOTTLE_PIPELOCK_IMAGE: await pipelockStandin(),
    NO_COLOR: "1",
    // Builds behind this machine's TLS-intercepting proxy need its CAs (CI sets this).
    ...(Deno.env.get("BOTTLE_BUILD_CA_CERTS")
      ? { BOTTLE_BUILD_CA_CERTS: Deno.env.get("BOTTLE_BUILD_CA_CERTS")! }
      : {}),
    ...extra,
  };
  return {
    env,
    stateRoot: `${home}/state/bottle`,
    async [Symbol.asyncDispose]() {
      if (Deno.env.get("BOTTLE_TEST_KEEP") === "1") return;
      await Deno.remove(home, { recursive: true }).catch(() => {});
    },
  };
}

/** A project dir in the test HOME holding `bottle.yaml` with `agentFile`. */
export async function projectWith(be: BottleEnv, agentFile: string): Promise<string> {
  const dir = `${be.env.HOME}/project`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/bottle.yaml`, agentFile);
  return dir;
}

/**
 * A test HTTPS upstream on the docker0 bridge address (where a bundle's
 * `host-gateway` points), answering for `names`, and the env that makes a
 * bottle's bundle resolve those names to it and trust its CA.
 */
export async function bridgeUpstream(names: string[]): Promise<{
  upstream: TestUpstream;
  gateway: string;
  env: Record<string, string>;
}> {
  const gateway = interfaceAddress("docker0");
  const upstream = await startTestUpstream(names, { hostname: gateway });
  return {
    upstream,
    gateway,
    env: {
      BOTTLE_BUNDLE_ADD_HOSTS: names.map((n) => `${n}:host-gateway`).join(","),
      BOTTLE_UPSTREAM_CA_CERTS: upstream.caFile,
    },
  };
}

/** Runs the bottle CLI from source as a child process. */
export function bottle(
  args: string[],
  env: Record<string, string>,
  opts: { cwd?: string } = {},
): Promise<RunResult> {
  return run([Deno.execPath(), "run", "--allow-all", MAIN, ...args], {
    env,
    check: false,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    timeoutMs: 600_000,
  });
}

/** Every container, network and volume carrying `label=value`, as the engine sees them now. */
export async function labelled(
  label: string,
): Promise<{ containers: string[]; networks: string[]; volumes: string[] }> {
  const c = await run([
    "docker",
    "ps",
    "-a",
    "--filter",
    `label=${label}`,
    "--format",
    "{{.Names}}",
  ]);
  const n = await run([
    "docker",
    "network",
    "ls",
    "--filter",
    `label=${label}`,
    "--format",
    "{{.Name}}",
  ]);
  const v = await run([
    "docker",
    "volume",
    "ls",
    "--filter",
    `label=${label}`,
    "--format",
    "{{.Name}}",
  ]);
  const lines = (s: string) => s.split("\n").filter(Boolean);
  return { containers: lines(c.stdout), networks: lines(n.stdout), volumes: lines(v.stdout) };
}

/** What `labelled` finds once a bottle is gone: nothing at all. */
export const NOTHING = { containers: [], networks: [], volumes: [] };

/** Runs a shell snippet inside a container (as the agent user unless told). */
export function inContainer(container: string, script: string, user?: string): Promise<RunResult> {
  return run(["docker", "exec", ...(user ? ["-u", user] : []), container, "sh", "-c", script], {
    check: false,
    timeoutMs: 60_000,
  });
}

/** IPv4 address of a host interface (docker0 is where `host-gateway` points). */
export function interfaceAddress(name: string): string {
  const a = Deno.networkInterfaces().find((i) => i.name === name && i.family === "IPv4");
  if (!a) throw new Error(`No IPv4 address on interface "${name}" (is dockerd running?)`);
  return a.address;
}

export async function containerIp(container: string, network: string): Promise<string> {
  const r = await run([
    "docker",
    "inspect",
    "--format",
    `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`,
    container,
  ]);
  return r.stdout.trim();
}

export async function networkGateway(network: string): Promise<string> {
  const r = await run([
    "docker",
    "network",
    "inspect",
    "--format",
    "{{json .IPAM.Config}}",
    network,
  ]);
  const cfg = JSON.parse(r.stdout) as { Subnet?: string; Gateway?: string }[];
  const first = cfg[0];
  if (first?.Gateway) return first.Gateway;
  // Engines that omit the gateway use the subnet's first address.
  const [base] = (first?.Subnet ?? "").split("/");
  const parts = (base ?? "").split(".").map(Number);
  parts[3] = (parts[3] ?? 0) + 1;
  return parts.join(".");
}

/** Runs the bottle CLI and sends `sig` as soon as its stderr (progress) matches `at`. */
export async function interruptAt(
  args: string[],
  env: Record<string, string>,
  cwd: string,
  at: RegExp,
  sig: Deno.Signal,
): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env,
    cwd,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  let sent = false;
  for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
    stderr += chunk;
    if (!sent && at.test(stderr)) {
      child.kill(sig);
      sent = true;
    }
  }
  const status = await child.status;
  if (!sent) throw new Error(`never saw ${at} in: ${stderr}`);
  return { code: status.code, stderr };
}
