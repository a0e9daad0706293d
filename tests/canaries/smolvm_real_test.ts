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

function canary(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  Deno.test({
    name: `canary: ${name}${SMOLVM.why ? ` (skipped: ${SMOLVM.why})` : ""}`,
    ignore: SMOLVM.why !== undefined,
    fn,
  });
}

/** A TCP listener on `hostname` that counts who reached it. */
function listener(hostname: string) {
  const l = Deno.listen({ hostname, port: 0 });
  const accepted: string[] = [];
  (async () => {
    for await (const c of l) {
      accepted.push((c.remoteAddr as Deno.NetAddr).hostname);
      c.close();
    }
  })().catch(() => {});
  return { port: (l.addr as Deno.NetAddr).port, accepted, close: () => l.close() };
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
      if (
        mode === "sockets" &&
        compareVersions(
            parseSmolvmVersion(`smolvm ${SMOLVM.version}`)!,
            MOUNT_SOCKET_SMOLVM_VERSION,
          ) <
          0
      ) {
        console.error(`smolvm ${SMOLVM.version} has no --mount-socket: sockets not checked`);
        return;
      }
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
      const loopback = listener("127.0.0.1");
      const lan = lanAddress();
      const onLan = lan ? listener(lan) : undefined;
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
              `curl --noproxy '*' -s -m 5 -o /dev/null http://127.0.0.1:${loopback.port}/; echo "loopback=$?"; ` +
              (onLan
                ? `curl --noproxy '*' -s -m 5 -o /dev/null http://${lan}:${onLan.port}/; echo "lan=$?"`
                : "echo lan=skipped"),
          );
          for (const what of ["internet", "dns", "loopback", "lan"]) {
            const m = new RegExp(`^${what}=(\\S+)$`, "m").exec(r.stdout);
            assert.ok(m, r.stdout);
            assert.notEqual(m[1], "0", `${what} reached: ${r.stdout}`);
          }
          assert.deepEqual(loopback.accepted, [], "the VM reached this host's loopback");
          assert.deepEqual(onLan?.accepted ?? [], [], "the VM reached this host's LAN address");
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
        loopback.close();
        onLan?.close();
        const stop = await bottle(["stop", name], be.env);
        assert.equal(stop.code, 0, stop.stderr);
      }
    },
  );
}
