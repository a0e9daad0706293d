/**
 * Canaries: what only a real smolvm can prove. Opt-in, where `smolvm` (a
 * real one, with libkrun: macOS on Apple silicon, or Linux with /dev/kvm)
 * is on PATH and a Docker engine runs:
 *
 *   BOTTLE_RUN_CANARIES=1 deno test --allow-all tests/canaries/smolvm_real_test.ts
 *
 * Skipped otherwise: the fake smolvm (tests/fakes/smolvm/) checks bottle's
 * argv against the contract and runs each machine as a container, but it
 * cannot prove what smolvm itself enforces. These do, from inside a real
 * VM, for each way the VM can reach its bundle that this host supports
 * (the engine's own choice, and `sockets` wherever smolvm has
 * --mount-socket):
 *
 * - the image path: `smolvm pack create` pulls the agent image from
 *   bottle's in-process registry, and the VM boots from the .smolmachine;
 * - the bundle is reachable (positive control: the gate's health check and
 *   egress, which refuses a host off the allowlist with pipelock's 403);
 * - nothing else is: no internet by address, no DNS, nothing listening on
 *   this host's loopback or its LAN address;
 * - a route's credential is nowhere in the VM (no process's env, no file).
 */
import assert from "node:assert/strict";
import { bottle, bottleEnv, projectWith } from "../helpers/bottle_env.ts";
import { run } from "../../src/proc/runner.ts";
import { hostListener } from "../helpers/net_probe.ts";
import {
  compareVersions,
  MOUNT_SOCKET_SMOLVM_VERSION,
  parseSmolvmVersion,
} from "../../src/backends/smolvm/smolvm_cli.ts";

const ENABLED = Deno.env.get("BOTTLE_RUN_CANARIES") === "1";

/** The real smolvm on PATH, or why there is none. */
function realSmolvm(): { version?: string; why?: string } {
  if (!ENABLED) return { why: "set BOTTLE_RUN_CANARIES=1 where a real smolvm is on PATH" };
  try {
    const out = new Deno.Command("smolvm", { args: ["--version"], stdout: "piped", stderr: "null" })
      .outputSync();
    const v = parseSmolvmVersion(new TextDecoder().decode(out.stdout));
    return v ? { version: v.text } : { why: "smolvm --version printed no version" };
  } catch {
    return { why: "no smolvm on PATH" };
  }
}
const SMOLVM = realSmolvm();
/** smolvm's virtio-net gateway (src/network: the guest's route to the host's sockets). */
const VIRTIO_GATEWAY = "100.96.0.1";
const SECRET = "sk-canary-route-secret-0123456789abcdef";
const AGENT_FILE = `version: 1
agents:
  canary:
    backend: smolmachines
    anthropic: none
    routes:
      - host: api.test
        header: x-api-key
        template: "{value}"
        value: { env: BOTTLE_CANARY_SECRET }
`;

function canary(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
  why: string | undefined = SMOLVM.why,
): void {
  Deno.test({
    name: `canary: ${name}${why ? ` (skipped: ${why})` : ""}`,
    ignore: why !== undefined,
    fn,
  });
}

/** Why a real VM with no network cannot be checked here (a smolvm before --mount-socket). */
function noSockets(): string | undefined {
  if (SMOLVM.why) return SMOLVM.why;
  const v = parseSmolvmVersion(`smolvm ${SMOLVM.version}`)!;
  return compareVersions(v, MOUNT_SOCKET_SMOLVM_VERSION) < 0
    ? `smolvm ${SMOLVM.version} has no --mount-socket (${MOUNT_SOCKET_SMOLVM_VERSION}+)`
    : undefined;
}

/** This host's first non-loopback IPv4 address (its LAN side). */
function lanAddress(): string | undefined {
  return Deno.networkInterfaces().find((i) =>
    i.family === "IPv4" && !i.address.startsWith("127.") && !/^(docker|br-|veth)/.test(i.name)
  )?.address;
}

const modes = ["auto", "sockets"] as const;
for (const mode of modes) {
  canary(
    `a real VM (BOTTLE_SMOLVM_NETWORK=${mode}) reaches its bundle and nothing else`,
    async (t) => {
      await using be = await bottleEnv({
        BOTTLE_SMOLVM_NETWORK: mode,
        BOTTLE_CANARY_SECRET: SECRET,
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      });
      const cwd = await projectWith(be, AGENT_FILE);
      const git = (args: string[]) => run(["git", "-C", cwd, ...args]);
      await git(["init", "--quiet", "--initial-branch=main"]);
      await git([
        "-c",
        "user.name=C",
        "-c",
        "user.email=c@e",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "c",
      ]);
      const name = `canary-${mode}`;
      // On every host address: this host's loopback and its LAN side alike.
      await using host = await hostListener();
      const lan = lanAddress();
      try {
        await t.step(
          "start: the agent image is packed from bottle's registry and booted",
          async () => {
            const r = await bottle(["start", "canary", "--detach", "--name", mode], be.env, {
              cwd,
            });
            assert.equal(r.code, 0, r.stderr);
            assert.match(
              r.stderr,
              /packing 127\.0\.0\.1:\d+\/bottle\/agent[^ ]* into a \.smolmachine|using cached .*\.smolmachine/,
            );
          },
        );
        const sh = (script: string) =>
          bottle(["exec", name, "--", "sh", "-c", `{ ${script}; } 2>&1`], be.env);
        await t.step("the bundle answers: the gate and egress (positive control)", async () => {
          const origin = (await sh("git -C /workspace config remote.origin.url")).stdout.trim();
          const gate = origin.replace(/\/workspace\.git$/, "/healthz");
          const r = await sh(
            `curl --noproxy '*' -s -o /dev/null -w 'gate=%{http_code}\\n' ${gate}; ` +
              "curl -s -m 20 -o /dev/null -w 'connect=%{http_connect}\\n' https://not-allowed.example/",
          );
          assert.match(r.stdout, /^gate=200$/m);
          assert.match(r.stdout, /^connect=403$/m);
        });
        await t.step("nothing else: no internet, no DNS, no host loopback, no LAN", async () => {
          const r = await sh(
            "curl --noproxy '*' -s -m 5 -o /dev/null http://1.1.1.1/; echo \"internet=$?\"; " +
              'getent hosts example.com >/dev/null; echo "dns=$?"; ' +
              // This host's loopback as smolvm's virtio gateway would open it (no gateway: no route).
              `curl --noproxy '*' -s -m 5 -o /dev/null http://${VIRTIO_GATEWAY}:${host.port}/; echo "loopback=$?"; ` +
              (lan
                ? `curl --noproxy '*' -s -m 5 -o /dev/null http://${lan}:${host.port}/; echo "lan=$?"`
                : "echo lan=skipped"),
          );
          for (const what of ["internet", "dns", "loopback", "lan"]) {
            const m = new RegExp(`^${what}=(\\S+)$`, "m").exec(r.stdout);
            assert.ok(m, r.stdout);
            assert.notEqual(m[1], "0", `${what} reached: ${r.stdout}`);
          }
          assert.deepEqual(host.tcpFrom, [], "the VM reached this host's loopback or LAN address");
        });
        await t.step("the route's credential is nowhere in the VM", async () => {
          // Read out and searched here: no search in the VM holds the value itself.
          const dump = await bottle([
            "exec",
            name,
            "-u",
            "root",
            "--",
            "sh",
            "-c",
            "cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null; " +
            "find /etc /home /root /tmp /workspace -type f -size -4M -exec cat {} + 2>/dev/null",
          ], be.env);
          assert.ok(
            dump.stdout.includes("HOME=/home/agent"),
            "positive control: the dump has the env",
          );
          assert.ok(!dump.stdout.includes(SECRET), "the route's credential is in the VM");
        });
      } finally {
        const stop = await bottle(["stop", name], be.env);
        assert.equal(stop.code, 0, stop.stderr);
      }
    },
    mode === "sockets" ? noSockets() : SMOLVM.why,
  );
}
