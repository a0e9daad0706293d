/**
 * TEST-ONLY: the fake smolvm's guests as real containers
 * (`FAKE_SMOLVM_GUEST=docker`). Each machine is a container of the
 * machine's image, with its own filesystem, running as root like a VM's
 * init, so provisioning, `claude` and probes run in a real Linux userland
 * instead of on the host. Its network models smolvm's egress policy: with no
 * `--allow-cidr`, none at all; with some (this fake takes /32s only), the
 * guest joins the docker network those addresses are on, and an iptables
 * policy in its network namespace (set from outside it, by a helper with
 * NET_ADMIN that the guest never has) lets out only packets to those
 * addresses. DNS is closed (the docker resolver dropped): smolvm resolves
 * only `--allow-host` names, and bottle's one never resolves. Each
 * `--mount-socket` host socket is bind-mounted at its guest path: a guest
 * process that connects there reaches the host socket, as through smolvm's
 * guest agent.
 */
import { Fail } from "./fake_errors.ts";
import { testImage } from "../../helpers/test_image.ts";

export const GUEST_LABEL = "bottle-test.fake-smolvm-state";

export function guestContainer(stateDir: string, machine: string): string {
  // One state dir per test sandbox: containers of two sandboxes never collide.
  const tag = [...new TextEncoder().encode(stateDir)].reduce((h, b) => (h * 31 + b) >>> 0, 7);
  return `fake-smolvm-${tag.toString(36)}-${machine}`;
}

async function docker(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const child = new Deno.Command("docker", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const [status, out, err] = await Promise.all([
    child.status,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  return { code: status.code, out, err };
}

const IPTABLES_DOCKERFILE = `FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends iptables && rm -rf /var/lib/apt/lists/*
`;

/** The docker network holding every allowed address (the bundle's, in bottle's case). */
async function networkOf(allowCidrs: string[]): Promise<string> {
  const hosts = allowCidrs.map((c) => {
    const [ip, prefix] = c.split("/");
    if (prefix !== "32") throw new Fail(`fake smolvm: only /32 allow-cidrs are modelled, got ${c}`);
    return ip!;
  });
  const ids = (await docker(["network", "ls", "-q"])).out.split("\n").filter(Boolean);
  const r = await docker([
    "network",
    "inspect",
    "--format",
    "{{.Name}}{{range .Containers}} {{.IPv4Address}}{{end}}",
    ...ids,
  ]);
  for (const line of r.out.split("\n")) {
    const [net, ...addrs] = line.trim().split(" ");
    const ips = new Set(addrs.map((a) => a.split("/")[0]));
    if (net && hosts.every((h) => ips.has(h))) return net;
  }
  throw new Fail(`fake smolvm: no docker network holds ${hosts.join(", ")}`);
}

/** Only packets to the allowed addresses leave the guest (and nothing to docker's resolver). */
async function confine(name: string, allowCidrs: string[]): Promise<void> {
  const rules = [
    "set -eu",
    'ipt() { iptables "$@" 2>/dev/null || iptables-legacy "$@"; }',
    "ipt -P OUTPUT DROP",
    "ipt -A OUTPUT -d 127.0.0.11 -j DROP",
    "ipt -A OUTPUT -o lo -j ACCEPT",
    ...allowCidrs.map((c) => `ipt -A OUTPUT -d ${c} -j ACCEPT`),
    "ip6tables -P OUTPUT DROP 2>/dev/null || ip6tables-legacy -P OUTPUT DROP 2>/dev/null || true",
  ].join("\n");
  const r = await docker([
    "run",
    "--rm",
    "--network",
    `container:${name}`,
    "--cap-drop",
    "ALL",
    "--cap-add",
    "NET_ADMIN",
    "--cap-add",
    "NET_RAW",
    await testImage("iptables", IPTABLES_DOCKERFILE),
    "sh",
    "-c",
    rules,
  ]);
  if (r.code !== 0) throw new Fail(`fake smolvm: could not set ${name}'s policy: ${r.err.trim()}`);
}

/** Starts (creating on first start) the guest container of a machine. */
export async function startGuest(
  stateDir: string,
  machine: string,
  image: string,
  env: string[],
  allowCidrs: string[] = [],
  mountSockets: { host: string; guest: string }[] = [],
): Promise<void> {
  const name = guestContainer(stateDir, machine);
  const exists = await docker(["inspect", "--format", "{{.State.Status}}", name]);
  if (exists.code === 0) {
    const r = await docker(["start", name]);
    if (r.code !== 0) throw new Fail(`start guest ${name}: ${r.err.trim()}`);
    // A started container has a new network namespace: its policy again.
    if (allowCidrs.length > 0) await confine(name, allowCidrs);
    return;
  }
  const network = allowCidrs.length > 0 ? await networkOf(allowCidrs) : "none";
  for (const s of mountSockets) {
    // docker would make a missing bind source a directory: fail as smolvm's dial would.
    const info = await Deno.lstat(s.host).catch(() => undefined);
    if (!info?.isSocket) {
      throw new Fail(
        `fake smolvm: --mount-socket host path '${s.host}' is not a listening socket when the machine starts`,
      );
    }
  }
  const r = await docker([
    "run",
    "-d",
    "--name",
    name,
    "--label",
    `${GUEST_LABEL}=${stateDir}`,
    "--network",
    network,
    "--user",
    "0",
    "--init",
    ...mountSockets.flatMap((s) => ["--mount", `type=bind,source=${s.host},target=${s.guest}`]),
    ...env.flatMap((kv) => ["-e", kv]),
    "--entrypoint",
    "sleep",
    image,
    "infinity",
  ]);
  if (r.code !== 0) throw new Fail(`start guest from ${image}: ${r.err.trim()}`);
  if (allowCidrs.length > 0) {
    try {
      await confine(name, allowCidrs);
    } catch (err) {
      // A guest with a network but no policy must never run.
      await docker(["rm", "-f", name]);
      throw err;
    }
  }
}

export async function stopGuest(stateDir: string, machine: string): Promise<void> {
  await docker(["stop", "-t", "0", guestContainer(stateDir, machine)]);
}

export async function deleteGuest(stateDir: string, machine: string): Promise<void> {
  await docker(["rm", "-f", guestContainer(stateDir, machine)]);
}

/** `machine exec` in the guest: argv as root, exit code and output passed through. */
export function execArgs(
  stateDir: string,
  machine: string,
  argv: string[],
  opts: { env: string[]; workdir?: string; interactive: boolean },
): string[] {
  return [
    "exec",
    ...(opts.interactive ? ["-i"] : []),
    ...opts.env.flatMap((kv) => ["-e", kv]),
    ...(opts.workdir ? ["-w", opts.workdir] : []),
    guestContainer(stateDir, machine),
    ...argv,
  ];
}

export async function copyToGuest(
  stateDir: string,
  machine: string,
  src: string,
  guestPath: string,
): Promise<void> {
  const name = guestContainer(stateDir, machine);
  const dir = guestPath.slice(0, guestPath.lastIndexOf("/")) || "/";
  await docker(["exec", name, "mkdir", "-p", dir]);
  const r = await docker(["cp", src, `${name}:${guestPath}`]);
  if (r.code !== 0) throw new Fail(`agent operation failed: write file: ${r.err.trim()}`);
}

export async function copyFromGuest(
  stateDir: string,
  machine: string,
  guestPath: string,
  dst: string,
): Promise<void> {
  const r = await docker(["cp", `${guestContainer(stateDir, machine)}:${guestPath}`, dst]);
  if (r.code !== 0) {
    throw new Fail(
      `agent operation failed: read file: ${guestPath}: No such file or directory (os error 2)`,
    );
  }
}

/** Removes every guest container of a sandbox (test teardown). */
export async function removeGuests(stateDir: string): Promise<void> {
  const r = await docker(["ps", "-aq", "--filter", `label=${GUEST_LABEL}=${stateDir}`]);
  const ids = r.out.split("\n").filter(Boolean);
  if (ids.length) await docker(["rm", "-f", ...ids]);
}
