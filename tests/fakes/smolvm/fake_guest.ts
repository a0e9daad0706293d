/**
 * TEST-ONLY: the fake smolvm's guests as real containers
 * (`FAKE_SMOLVM_GUEST=docker`). Each machine is a container of the
 * machine's image, with its own filesystem, running as root like a VM's
 * init, so provisioning, `claude` and probes run in a real Linux userland
 * instead of on the host. Its network is none: the contract's egress policy
 * (the allowed addresses only) is not modelled yet, so nothing in a guest can
 * reach anything at all (a stricter policy than smolvm's, never a looser one).
 */
import { Fail } from "./fake_errors.ts";

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

/** Starts (creating on first start) the guest container of a machine. */
export async function startGuest(
  stateDir: string,
  machine: string,
  image: string,
  env: string[],
): Promise<void> {
  const name = guestContainer(stateDir, machine);
  const exists = await docker(["inspect", "--format", "{{.State.Status}}", name]);
  if (exists.code === 0) {
    const r = await docker(["start", name]);
    if (r.code !== 0) throw new Fail(`start guest ${name}: ${r.err.trim()}`);
    return;
  }
  const r = await docker([
    "run",
    "-d",
    "--name",
    name,
    "--label",
    `${GUEST_LABEL}=${stateDir}`,
    "--network",
    "none",
    "--user",
    "0",
    "--init",
    ...env.flatMap((kv) => ["-e", kv]),
    "--entrypoint",
    "sleep",
    image,
    "infinity",
  ]);
  if (r.code !== 0) throw new Fail(`start guest from ${image}: ${r.err.trim()}`);
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
