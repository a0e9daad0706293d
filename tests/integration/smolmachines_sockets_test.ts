/**
 * smolmachines where container addresses are not routable from the host
 * (Docker Desktop, Colima): the VM has no network at all, and the bundle's
 * agent-facing ports reach it as host sockets smolvm mounts into the guest,
 * served by the host relay (a process that lives exactly as long as the
 * bottle). The engine is this machine's real one, told apart as Docker
 * Desktop by a docker wrapper that only rewrites `docker info`'s
 * OperatingSystem; the fake smolvm runs each machine as a container of its
 * image with no network and only the mounted sockets, so provisioning, the
 * forwarder, git and claude run in a real guest.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  bottle,
  bottleEnv,
  interfaceAddress,
  interruptAt,
  labelled,
  MAIN,
  NOTHING,
  projectWith,
} from "../helpers/bottle_env.ts";
import { run } from "../../src/proc/runner.ts";
import { FAKE_SMOLVM, fakeSmolvm } from "../fakes/smolvm/test_helpers.ts";
import { hostListener } from "../helpers/net_probe.ts";
import { pathExists } from "../../src/state/path_exists.ts";
import { isRelayOf, relayPid } from "../../src/backends/smolvm/relay_process.ts";

const SECRET = "sk-route-secret-of-the-sockets-test-0123456789";
const AGENT_FILE = `version: 1
agents:
  vmsock:
    backend: smolmachines
    anthropic: none
    supervise: { timeout: 5m }
    routes:
      - host: api.test
        header: x-api-key
        template: "{value}"
        value: { env: BOTTLE_IT_SECRET }
  vmsleep:
    backend: smolmachines
    anthropic: none
    command: [sleep, "600"]
`;

function flagValues(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
}

/** A docker CLI that says it is Docker Desktop (its `docker info` OperatingSystem), and is the real one otherwise. */
async function desktopLikeDocker(dir: string): Promise<string> {
  const path = join(dir, "docker-desktop-like");
  await Deno.writeTextFile(
    path,
    `#!/bin/sh
if [ "$1" = info ]; then
  docker "$@" | sed 's/"OperatingSystem":"[^"]*"/"OperatingSystem":"Docker Desktop"/'
  exit $?
fi
exec docker "$@"
`,
    { mode: 0o755 },
  );
  return path;
}

Deno.test("smolmachines on a Docker-Desktop-like engine: no network in the VM, the bundle through mounted sockets", async (t) => {
  await using fake = await fakeSmolvm({ dockerGuests: true });
  const tools = await Deno.makeTempDir({ prefix: "bottle-it-tools-" });
  await using be = await bottleEnv({
    ...fake.env,
    SMOLVM: FAKE_SMOLVM,
    BOTTLE_DOCKER: await desktopLikeDocker(tools),
    BOTTLE_IT_SECRET: SECRET,
  });
  const cwd = await projectWith(be, AGENT_FILE);
  const git = (args: string[]) => run(["git", "-C", cwd, ...args]);
  await git(["init", "--quiet", "--initial-branch=main"]);
  await git(["config", "user.name", "Vm User"]);
  await git(["config", "user.email", "vm@example.com"]);
  await git(["add", "bottle.yaml"]);
  await git(["commit", "--quiet", "-m", "first"]);
  const name = "vmsock-d1";
  const relayDir = join(be.stateRoot, "bottles", name, "relay");
  // A host listener the guest must not reach (on every host address, docker0's among them).
  await using host = await hostListener();
  const port = host.port;
  let relay = 0;
  try {
    await t.step("the plan: no network, a socket per agent-facing port, said why", async () => {
      const r = await bottle(["plan", "vmsock", "--json"], be.env, { cwd });
      assert.equal(r.code, 0, r.stderr);
      const vm = JSON.parse(r.stdout).vm;
      assert.equal(vm.network.mode, "sockets");
      assert.match(vm.network.reason, /Docker Desktop keeps container addresses inside its own VM/);
      assert.deepEqual(
        vm.network.sockets.map((s: { daemon: string }) => s.daemon),
        ["egress", "git-gate", "supervise"],
      );
      // And on the real engine as it is, the bundle's address (the choice is the engine's kind).
      const plain = await bottle(["plan", "vmsock", "--json"], {
        ...be.env,
        BOTTLE_DOCKER: "docker",
      }, { cwd });
      assert.equal(JSON.parse(plain.stdout).vm.network.mode, "bundle-address");
    });

    await t.step(
      "start --detach: mounted sockets, no egress policy, the relay outlives the launcher",
      async () => {
        const r = await bottle(["start", "vmsock", "--detach", "--name", "d1"], be.env, { cwd });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /starting the host relay for the VM's sockets/);
        const create = (await fake.log()).find((a) => a[0] === "machine" && a[1] === "create")!;
        assert.deepEqual(flagValues(create, "--allow-cidr"), []);
        assert.deepEqual(flagValues(create, "--allow-host"), []);
        assert.deepEqual(flagValues(create, "--mount-socket"), [
          `${relayDir}/egress.sock:/run/bottle/sockets/egress.sock`,
          `${relayDir}/git-gate.sock:/run/bottle/sockets/git-gate.sock`,
          `${relayDir}/supervise.sock:/run/bottle/sockets/supervise.sock`,
        ]);
        assert.equal((await fake.machine(`bottle-${name}`))?.network, null);
        // The launching process has exited; the relay runs on, tracked in the bottle's state.
        relay = (await relayPid(relayDir))!;
        assert.ok(relay, "no relay pid");
        assert.ok(await isRelayOf(relay, relayDir), "the relay is not running");
        const record = JSON.parse(
          await Deno.readTextFile(join(be.stateRoot, "bottles", name, "bottle.json")),
        );
        assert.equal(record.relayDir, relayDir);
        assert.equal((await Deno.stat(relayDir)).mode! & 0o777, 0o700);
        // Nothing secret on any smolvm argv.
        assert.ok((await fake.log()).every((a) => a.every((x) => !x.includes(SECRET))));
      },
    );

    const guest = fake.guestContainer(`bottle-${name}`);
    await t.step("the guest has no network and holds only the sockets", async () => {
      const inspect = JSON.parse(
        (await run(["docker", "inspect", guest])).stdout,
      )[0] as {
        HostConfig: { NetworkMode: string };
        Mounts: { Type: string; Source: string; Destination: string }[];
      };
      assert.equal(inspect.HostConfig.NetworkMode, "none");
      assert.deepEqual(
        inspect.Mounts.map((m) => `${m.Type} ${m.Source} ${m.Destination}`).sort(),
        ["egress", "git-gate", "supervise"].map((d) =>
          `bind ${relayDir}/${d}.sock /run/bottle/sockets/${d}.sock`
        ),
      );
      const ifaces = await run(["docker", "exec", guest, "cat", "/proc/net/dev"]);
      const names = ifaces.stdout.split("\n").slice(2).map((l) => l.trim().split(":")[0])
        .filter(Boolean);
      assert.deepEqual(names, ["lo"]);
    });

    const sh = (script: string) =>
      bottle(["exec", name, "--", "sh", "-c", `{ ${script}; } 2>&1`], be.env);
    await t.step(
      "through the sockets: the workspace clone, a push, egress, supervise",
      async () => {
        // Provisioning cloned the workspace through the gate, at the guest's own loopback.
        const view = await sh(
          "cd /workspace && git config remote.origin.url && git log --format=%s",
        );
        assert.equal(view.code, 0, view.stdout);
        assert.deepEqual(view.stdout.trim().split("\n"), [
          "http://127.0.0.1:8080/workspace.git",
          "first",
        ]);
        const push = await sh(
          "cd /workspace && echo vm > vm.txt && git add vm.txt && git commit -qm 'from the vm' && git push origin main",
        );
        assert.equal(push.code, 0, push.stdout);
        assert.match(push.stdout, /landed in the host repository as bottle\/vmsock-d1\/main/);
        assert.equal(
          (await git(["log", "-1", "--format=%s", "refs/heads/bottle/vmsock-d1/main"])).stdout
            .trim(),
          "from the vm",
        );
        // Egress answers through the proxy with the agent's credential: pipelock refuses a host off the allowlist.
        const out = await sh(
          "curl -s -m 20 -o /dev/null -w 'connect=%{http_connect}\\n' https://not-allowed.example/",
        );
        assert.match(out.stdout, /^connect=403$/m);
        // Supervise: Claude Code is connected to it, at the guest's loopback.
        const list = await bottle(["exec", name, "--", "claude", "mcp", "list"], be.env, { cwd });
        assert.equal(list.code, 0, list.stderr);
        assert.ok(
          list.stdout.includes("supervise: http://127.0.0.1:8090/mcp (HTTP) - ✔ Connected"),
          list.stdout,
        );
      },
    );

    await t.step("nothing else: no bundle address, no host, no DNS, no credential", async () => {
      const bundleIp = (await run([
        "docker",
        "inspect",
        "--format",
        `{{(index .NetworkSettings.Networks "bottle-${name}-outbound").IPAddress}}`,
        `bottle-${name}-bundle`,
      ])).stdout.trim();
      assert.match(bundleIp, /^\d+\.\d+\.\d+\.\d+$/);
      const probe = await sh(
        // Positive control first, from the same place: the gate answers on the guest's loopback.
        `curl --noproxy '*' -s -o /dev/null -w 'gate=%{http_code}\\n' http://127.0.0.1:8080/healthz; ` +
          `curl --noproxy '*' -s -m 5 -o /dev/null http://${bundleIp}:3128/healthz; echo "bundle=$?"; ` +
          `curl --noproxy '*' -s -m 5 -o /dev/null http://${
            interfaceAddress("docker0")
          }:${port}/; echo "host=$?"; ` +
          `getent hosts example.com; echo "dns=$?"`,
      );
      assert.match(probe.stdout, /^gate=200$/m);
      // 7: no route at all (no interface but lo); 2: getent found nothing.
      assert.match(probe.stdout, /^bundle=7$/m);
      assert.match(probe.stdout, /^host=7$/m);
      assert.match(probe.stdout, /^dns=2$/m);
      assert.deepEqual(host.tcpFrom, [], "the guest reached a host listener");
      // The route's credential stays in the bundle: in no process's env or argv, no file (read
      // out and searched here, so that no search in the guest holds the value itself).
      const dump = await run([
        "docker",
        "exec",
        guest,
        "sh",
        "-c",
        "cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null; " +
        "find /etc /home /root /tmp /workspace -type f -size -4M -exec cat {} + 2>/dev/null",
      ], { check: false });
      assert.ok(dump.stdout.includes("HOME=/home/agent"), "positive control: the dump has the env");
      assert.ok(!dump.stdout.includes(SECRET), "the route's credential is in the VM");
    });

    await t.step(
      "from the host: the published ports are on loopback and want the credential",
      async () => {
        const ports = (await run(["docker", "port", `bottle-${name}-bundle`])).stdout.trim()
          .split("\n").sort();
        assert.equal(ports.length, 3, ports.join("\n"));
        for (const p of ports) assert.match(p, /^(3128|8080|8090)\/tcp -> 127\.0\.0\.1:\d+$/);
        const hostPort = (p: number) =>
          Number(ports.find((l) => l.startsWith(`${p}/`))!.split(":").at(-1));
        // The agent's own credentials, for the positive controls from this same place.
        const said = await bottle([
          "exec",
          name,
          "--",
          "sh",
          "-c",
          'printf "%s\\n" "$HTTPS_PROXY"; git config --global --get-regexp extraheader; ' +
          "cat /home/agent/.claude.json",
        ], be.env);
        const proxyToken = /http:\/\/bottle:([0-9a-f]{64})@127\.0\.0\.1:3128/.exec(said.stdout)
          ?.[1];
        const gateAuth = /Authorization: (Basic \S+)/.exec(said.stdout)?.[1];
        const mcpAuth = /"Authorization": "(Bearer [^"]+)"/.exec(said.stdout)?.[1];
        assert.ok(proxyToken && gateAuth && mcpAuth, said.stdout);
        const connect = async (auth: string) => {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: hostPort(3128) });
          try {
            await conn.write(new TextEncoder().encode(
              `CONNECT x.example:443 HTTP/1.1\r\nHost: x.example:443\r\n${auth}\r\n`,
            ));
            const buf = new Uint8Array(256);
            const n = await conn.read(buf);
            return new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0];
          } finally {
            conn.close();
          }
        };
        // Another local process: egress answers 407 without the credential; with it, the
        // request goes on to pipelock's allowlist (its 403).
        assert.match(
          await connect(`Proxy-Authorization: Basic ${btoa(`bottle:${proxyToken}`)}\r\n`) ?? "",
          /^HTTP\/1\.1 403 /,
        );
        assert.equal(await connect(""), "HTTP/1.1 407 Proxy Authentication Required");
        // The gate and supervise: 200 with the agent's token, 401 without.
        const refs = (auth?: string) =>
          fetch(
            `http://127.0.0.1:${hostPort(8080)}/workspace.git/info/refs?service=git-upload-pack`,
            auth ? { headers: { authorization: auth } } : {},
          );
        const refsOk = await refs(gateAuth);
        await refsOk.body?.cancel();
        assert.equal(refsOk.status, 200);
        const refsAnon = await refs();
        await refsAnon.body?.cancel();
        assert.equal(refsAnon.status, 401);
        const tools = (auth?: string) =>
          fetch(`http://127.0.0.1:${hostPort(8090)}/mcp`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              accept: "application/json, text/event-stream",
              "mcp-protocol-version": "2025-06-18",
              ...(auth ? { authorization: auth } : {}),
            },
            body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
          });
        const mcpOk = await tools(mcpAuth);
        assert.equal(mcpOk.status, 200);
        assert.match(await mcpOk.text(), /request_approval/);
        const mcp = await tools();
        await mcp.body?.cancel();
        assert.equal(mcp.status, 401);
      },
    );

    await t.step("stop removes the VM, the bundle and the relay", async () => {
      const r = await bottle(["stop", name], be.env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await isRelayOf(relay, relayDir), false, "the relay still runs");
      assert.equal(await pathExists(relayDir), false);
      assert.equal(await fake.machine(`bottle-${name}`), undefined);
      assert.deepEqual(await labelled(`bottle.id=${name}`), NOTHING);
    });

    await t.step("a session whose launcher was killed: cleanup removes its relay too", async () => {
      const session = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", MAIN, "start", "vmsleep", "--name", "k1"],
        env: be.env,
        cwd,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const dir = join(be.stateRoot, "bottles", "vmsleep-k1", "relay");
      let said = "";
      for await (const chunk of session.stderr.pipeThrough(new TextDecoderStream())) {
        said += chunk;
        if (/provisioning/.test(said)) break;
      }
      let pid: number | undefined;
      for (let i = 0; i < 100 && !pid; i++) {
        pid = await relayPid(dir);
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.ok(pid, said);
      // Wait for the session itself (the record says running), then kill the launcher outright.
      for (let i = 0; i < 200; i++) {
        const rec = await Deno.readTextFile(
          join(be.stateRoot, "bottles", "vmsleep-k1", "bottle.json"),
        )
          .then((t) => JSON.parse(t).status, () => "");
        if (rec === "running") break;
        await new Promise((res) => setTimeout(res, 100));
      }
      session.kill("SIGKILL");
      await session.status;
      assert.ok(await isRelayOf(pid, dir), "the relay went with its launcher");
      const c = await bottle(["cleanup"], be.env);
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /removed vmsleep-k1 \(smolmachines\)/);
      assert.equal(await isRelayOf(pid, dir), false, "cleanup left the relay running");
      assert.equal(await pathExists(dir), false);
      assert.deepEqual(await labelled("bottle.id=vmsleep-k1"), NOTHING);
    });

    await t.step('SIGINT during "starting the host relay" leaves nothing behind', async () => {
      const r = await interruptAt(
        ["start", "vmsock", "--detach", "--name", "i1"],
        be.env,
        cwd,
        /starting the host relay/,
        "SIGINT",
      );
      assert.equal(r.code, 130, r.stderr);
      assert.equal(await fake.machine("bottle-vmsock-i1"), undefined);
      assert.deepEqual(await labelled("bottle.id=vmsock-i1"), NOTHING);
      assert.equal(await pathExists(join(be.stateRoot, "bottles", "vmsock-i1")), false);
      const relays = await run(
        ["sh", "-c", "ps -eo args= | grep -c '[r]elay_main.ts.*vmsock-i1'"],
        {
          check: false,
        },
      );
      assert.equal(relays.stdout.trim(), "0");
    });

    await t.step(
      "a smolvm without --mount-socket is refused, naming the version needed",
      async () => {
        const r = await bottle(["start", "vmsock", "--detach", "--name", "old"], {
          ...be.env,
          FAKE_SMOLVM_VERSION: "1.6.3",
        }, { cwd });
        assert.equal(r.code, 2, r.stderr);
        assert.match(
          r.stderr,
          /smolvm "1\.6\.3" .* has no machine create --mount-socket, which a VM with no network needs to reach the bundle \(Docker Desktop keeps container addresses inside its own VM\): it needs smolvm 1\.6\.4 or newer/,
        );
        assert.deepEqual(await labelled("bottle.id=vmsock-old"), NOTHING);
      },
    );
  } finally {
    await bottle(["cleanup", "--all"], be.env);
    await Deno.remove(tools, { recursive: true }).catch(() => {});
  }
});
