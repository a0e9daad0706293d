/**
 * The smolmachines launch flow end to end: a real engine runs the bundle,
 * bottle's registry serves the real agent image, and the contract-faithful
 * fake smolvm (strict argv, a pack that really pulls and checks every
 * digest, machine state) stands in for the VM, each machine a container of
 * the image it was made from, so provisioning runs in a real guest.
 * Teardown is checked after a SIGINT at each launch step.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  bottle,
  bottleEnv,
  interfaceAddress,
  interruptAt,
  labelled,
  NOTHING,
  projectWith,
} from "../helpers/bottle_env.ts";
import { run } from "../../src/proc/runner.ts";
import { callFromBottle, firstPendingId } from "../helpers/supervise.ts";
import { FAKE_SMOLVM, fakeSmolvm } from "../fakes/smolvm/test_helpers.ts";
import { pathExists } from "../../src/state/path_exists.ts";
import { startGitHttpsServer } from "../fakes/git_https_server.ts";

const AGENT_FILE = `version: 1
agents:
  vmprobe:
    backend: smolmachines
    anthropic: none
    prompt: You are in a VM.
    resources: { cpus: 2, memory: 2g }
`;

function flagValues(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
}

Deno.test("smolmachines: launch, reuse the packed image, stop, and teardown on SIGINT", async (t) => {
  await using fake = await fakeSmolvm({ dockerGuests: true });
  const cache = await Deno.makeTempDir({ prefix: "bottle-smol-cache-" });
  await using be = await bottleEnv({
    ...fake.env,
    SMOLVM: FAKE_SMOLVM,
    XDG_CACHE_HOME: cache,
  });
  const cwd = await projectWith(be, AGENT_FILE);
  try {
    await t.step(
      "start --detach packs the agent image through the registry and boots the VM",
      async () => {
        const r = await bottle(["start", "vmprobe", "--detach", "--name", "s1"], be.env, { cwd });
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stderr,
          /packing 127\.0\.0\.1:\d+\/bottle\/agent:[0-9a-f]{16} into a \.smolmachine/,
        );
        const log = await fake.log();
        const pack = log.find((a) => a[0] === "pack");
        assert.ok(pack, "no pack create");
        assert.match(pack[3]!, /^127\.0\.0\.1:\d+\/bottle\/agent:[0-9a-f]{16}$/);
        const create = log.find((a) => a[0] === "machine" && a[1] === "create")!;
        assert.deepEqual(flagValues(create, "--name").concat(flagValues(create, "-n")), [
          "bottle-vmprobe-s1",
        ]);
        const cidrs = flagValues(create, "--allow-cidr");
        assert.equal(cidrs.length, 1);
        assert.match(cidrs[0]!, /^\d+\.\d+\.\d+\.\d+\/32$/);
        assert.deepEqual(flagValues(create, "--allow-host"), ["bottle-dns-closed.invalid"]);
        const bundleIp = cidrs[0]!.replace("/32", "");
        // The proxy URLs hold the proxy credential: they are not on smolvm's argv.
        const env = flagValues(create, "-e").concat(flagValues(create, "--env"));
        assert.ok(env.some((e) => e.startsWith("NO_PROXY=")), env.join(" "));
        assert.ok(!env.some((e) => /^https?_proxy=/i.test(e)), env.join(" "));
        // Every command in the VM has them, from the guest file written on stdin.
        const proxy = await bottle(
          ["exec", "vmprobe-s1", "--", "sh", "-c", 'printf %s "$HTTPS_PROXY $http_proxy"'],
          be.env,
        );
        assert.equal(proxy.code, 0, proxy.stderr);
        const m = new RegExp(
          `^(http://bottle:([0-9a-f]{64})@${bundleIp.replaceAll(".", "\\.")}:3128) \\1$`,
        ).exec(proxy.stdout);
        assert.ok(m, proxy.stdout);
        const token = m[2]!;
        assert.ok(
          (await fake.log()).every((a) => a.every((x) => !x.includes(token))),
          "the proxy credential on smolvm's argv",
        );
        // Egress listens where the host reaches it (the VM comes from the host):
        // without the credential it answers 407 and dials nothing.
        const health = await fetch(`http://${bundleIp}:3128/healthz`);
        assert.equal(await health.text(), "ok\n"); // positive control: reachable from here
        const ask = async (auth: string) => {
          const conn = await Deno.connect({ hostname: bundleIp, port: 3128 });
          try {
            await conn.write(new TextEncoder().encode(
              `CONNECT nowhere.example:443 HTTP/1.1\r\nHost: nowhere.example:443\r\n${auth}\r\n`,
            ));
            const buf = new Uint8Array(512);
            const n = await conn.read(buf);
            return new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0];
          } finally {
            conn.close();
          }
        };
        assert.equal(await ask(""), "HTTP/1.1 407 Proxy Authentication Required");
        assert.equal(
          await ask(`Proxy-Authorization: Basic ${btoa(`bottle:${"1".repeat(64)}`)}\r\n`),
          "HTTP/1.1 407 Proxy Authentication Required",
        );
        // With the agent's credential the request goes on, to pipelock's allowlist (a 403 from it).
        assert.match(
          await ask(`Proxy-Authorization: Basic ${btoa(`bottle:${token}`)}\r\n`) ?? "",
          /^HTTP\/1\.1 403 /,
        );
        assert.deepEqual(flagValues(create, "--cpus"), ["2"]);
        assert.deepEqual(flagValues(create, "--mem"), ["2048"]);
        const machine = await fake.machine("bottle-vmprobe-s1");
        assert.equal(machine?.state, "running");
        // Provisioning ran in the guest through machine exec: the trust store and the prompt.
        const guest = fake.guestContainer("bottle-vmprobe-s1");
        const inGuest = async (...argv: string[]) =>
          (await run(["docker", "exec", guest, ...argv])).stdout;
        assert.match(
          await inGuest("cat", "/usr/local/share/ca-certificates/bottle.crt"),
          /BEGIN CERTIFICATE/,
        );
        assert.equal(await inGuest("cat", "/home/agent/.bottle/prompt.md"), "You are in a VM.");
        assert.equal(await inGuest("stat", "-c", "%U", "/home/agent/.bottle/prompt.md"), "agent\n");
        assert.ok(
          log.some((a) =>
            a.includes("exec") && a.includes("tee") &&
            a.includes("/etc/ssl/certs/ca-certificates.crt")
          ),
        );
        const ls = JSON.parse((await bottle(["ls", "--json"], be.env)).stdout) as {
          name: string;
          backend: string;
          state: string;
        }[];
        const row = ls.find((b) => b.name === "vmprobe-s1");
        assert.ok(row, `vmprobe-s1 not in bottle ls: ${JSON.stringify(ls)}`);
        assert.equal(row.backend, "smolmachines");
        assert.equal(row.state, "running");
      },
    );

    await t.step("a second start reuses the cached .smolmachine", async () => {
      const r = await bottle(["start", "vmprobe", "--detach", "--name", "s2"], be.env, { cwd });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /using cached .*\.smolmachine/);
      assert.equal((await fake.log()).filter((a) => a[0] === "pack").length, 1);
    });

    await t.step("stop removes the VM, the bundle, the network and the state", async () => {
      for (const name of ["vmprobe-s1", "vmprobe-s2"]) {
        const r = await bottle(["stop", name], be.env);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await fake.machine(`bottle-${name}`), undefined);
        assert.deepEqual(await labelled(`bottle.id=${name}`), NOTHING);
        assert.equal(await pathExists(join(be.stateRoot, "bottles", name)), false);
      }
    });

    const steps = [
      /creating the network/,
      /starting the bundle/,
      /creating the VM/,
      /starting the VM/,
      /provisioning/,
    ];
    for (const [i, step] of steps.entries()) {
      await t.step(`SIGINT during "${step.source}" leaves nothing behind`, async () => {
        const name = `int${i}`;
        const r = await interruptAt(
          ["start", "vmprobe", "--detach", "--name", name],
          be.env,
          cwd,
          step,
          "SIGINT",
        );
        assert.equal(r.code, 130, r.stderr);
        assert.equal(await fake.machine(`bottle-vmprobe-${name}`), undefined);
        assert.deepEqual(await labelled(`bottle.id=vmprobe-${name}`), NOTHING);
        assert.equal(await pathExists(join(be.stateRoot, "bottles", `vmprobe-${name}`)), false);
      });
    }

    await t.step("cleanup --cache prunes the cached .smolmachine", async () => {
      const dir = join(cache, "bottle", "smolmachines");
      assert.ok([...Deno.readDirSync(dir)].some((e) => e.name.endsWith(".smolmachine")));
      const r = await bottle(["cleanup", "--cache"], be.env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /removed .*\.smolmachine/);
      assert.deepEqual([...Deno.readDirSync(dir)], []);
    });

    await t.step("where pack fails, the VM is created from the archive on stdin", async () => {
      const r = await bottle(["start", "vmprobe", "--detach", "--name", "fb"], {
        ...be.env,
        FAKE_SMOLVM_FAIL: "pack",
      }, { cwd });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /creating the VM from the archive on stdin/);
      const create = (await fake.log()).findLast((a) => a[0] === "machine" && a[1] === "create")!;
      assert.deepEqual(flagValues(create, "--image"), ["-"]);
      assert.equal((await fake.machine("bottle-vmprobe-fb"))?.state, "running");
      assert.equal((await bottle(["stop", "vmprobe-fb"], be.env)).code, 0);
      const leftovers = [...Deno.readDirSync(join(cache, "bottle", "smolmachines"))].map((e) =>
        e.name
      );
      assert.deepEqual(leftovers.filter((n) => n.endsWith(".tar")), []);
    });

    await t.step("a smolvm that cannot enforce the egress policy is refused", async () => {
      const r = await bottle(["start", "vmprobe", "--detach", "--name", "old"], {
        ...be.env,
        FAKE_SMOLVM_VERSION: "0.8.0",
      }, { cwd });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /0\.8\.0.*1\.1\.0/);
      assert.deepEqual(await labelled("bottle.id=vmprobe-old"), NOTHING);
    });
  } finally {
    await bottle(["cleanup", "--all"], be.env);
    await Deno.remove(cache, { recursive: true }).catch(() => {});
  }
});

Deno.test("smolmachines: the workspace through the gate, which answers only the bottle's token", async () => {
  await using fake = await fakeSmolvm({ dockerGuests: true });
  // A declared upstream too: a token-checking HTTPS git host the bundle reaches.
  const TOKEN = "ghp_TheTokenOfTheVmTest0123456789abcdefXYZ";
  await using https = await startGitHttpsServer({
    names: ["git.test"],
    hostname: interfaceAddress("docker0"),
    token: TOKEN,
    repos: ["lib"],
  });
  const seed = await Deno.makeTempDir({ prefix: "bottle-test-seed-" });
  await run(["git", "clone", "--quiet", `${https.root}/lib.git`, seed]);
  await run(["git", "-C", seed, "commit", "--quiet", "--allow-empty", "-m", "lib: first"], {
    env: {
      GIT_AUTHOR_NAME: "S",
      GIT_AUTHOR_EMAIL: "s@e",
      GIT_COMMITTER_NAME: "S",
      GIT_COMMITTER_EMAIL: "s@e",
    },
  });
  await run(["git", "-C", seed, "push", "--quiet", "origin", "main"]);
  await Deno.remove(seed, { recursive: true });
  await using be = await bottleEnv({
    ...fake.env,
    SMOLVM: FAKE_SMOLVM,
    TEST_GIT_TOKEN: TOKEN,
    BOTTLE_BUNDLE_ADD_HOSTS: "git.test:host-gateway",
    BOTTLE_UPSTREAM_CA_CERTS: https.caFile,
  });
  const libUrl = `https://git.test:${https.port}/lib.git`;
  const cwd = await projectWith(
    be,
    AGENT_FILE + `    git:
      - url: ${libUrl}
        identity: { token: { env: TEST_GIT_TOKEN } }
`,
  );
  const git = (args: string[]) => run(["git", "-C", cwd, ...args]);
  await git(["init", "--quiet", "--initial-branch=main"]);
  await git(["config", "user.name", "Vm User"]);
  await git(["config", "user.email", "vm@example.com"]);
  await git(["add", "bottle.yaml"]);
  await git(["commit", "--quiet", "-m", "first"]);
  const listener = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted: string[] = [];
  (async () => {
    for await (const c of listener) {
      accepted.push((c.remoteAddr as Deno.NetAddr).hostname);
      c.close();
    }
  })().catch(() => {});
  const name = "vmprobe-w1";
  try {
    const r = await bottle(["start", "vmprobe", "--detach", "--name", "w1"], be.env, { cwd });
    assert.equal(r.code, 0, r.stderr);
    const create = (await fake.log()).find((a) => a[0] === "machine" && a[1] === "create")!;
    const bundleIp = flagValues(create, "--allow-cidr")[0]!.replace("/32", "");
    const sh = (script: string) =>
      bottle(["exec", name, "--", "sh", "-c", `cd /workspace && { ${script}; } 2>&1`], be.env);

    // The clone, made in the VM through the gate at the bundle's address.
    const view = await sh("git config remote.origin.url && git log --format=%s && cat bottle.yaml");
    assert.equal(view.code, 0, view.stdout);
    const [origin, subject] = view.stdout.trim().split("\n");
    assert.equal(origin, `http://${bundleIp}:8080/workspace.git`);
    assert.equal(subject, "first");

    const push = await sh(
      "echo vm > vm.txt && git add vm.txt && git commit -qm 'from the vm' && git push origin main && git rev-parse HEAD",
    );
    assert.equal(push.code, 0, push.stdout);
    assert.match(push.stdout, /landed in the host repository as bottle\/vmprobe-w1\/main/);
    assert.equal(
      (await git(["rev-parse", "refs/heads/bottle/vmprobe-w1/main"])).stdout.trim(),
      push.stdout.trim().split("\n").at(-1),
    );

    // The declared upstream: cloned beside the workspace by its URL, a push pushed on.
    const lib = await bottle([
      "exec",
      name,
      "--",
      "sh",
      "-c",
      "cd ~/lib && git config remote.origin.url && git commit -q --allow-empty -m vm && git push -q origin HEAD:bottle/vm 2>&1 && git rev-parse HEAD",
    ], be.env);
    assert.equal(lib.code, 0, lib.stdout + lib.stderr);
    const libLines = lib.stdout.trim().split("\n");
    const [libOrigin, libTip] = [libLines[0], libLines.at(-1)];
    assert.equal(libOrigin, libUrl);
    assert.equal(
      (await run(["git", "--git-dir", `${https.root}/lib.git`, "rev-parse", "bottle/vm"])).stdout
        .trim(),
      libTip,
    );

    // The guest reaches the bundle and nothing else: the gate answers, a host listener does not.
    const gateway = (await run([
      "docker",
      "network",
      "inspect",
      "--format",
      "{{(index .IPAM.Config 0).Gateway}}",
      `bottle-${name}-outbound`,
    ])).stdout.trim();
    const probe = await sh(
      `curl -s -o /dev/null -w 'gate=%{http_code}\\n' http://${bundleIp}:8080/healthz; curl --noproxy '*' -s -m 5 -o /dev/null http://${gateway}:${port}/; echo "direct=$?"`,
    );
    assert.match(probe.stdout, /gate=200/);
    // 28: timed out (the policy drops it); 52 would be the listener's empty reply.
    assert.match(probe.stdout, /^direct=28$/m);
    assert.deepEqual(accepted, [], "the guest reached a host listener");

    // Another process on the host reaches the bundle's address, but not the repository.
    const refs = `http://${bundleIp}:8080/workspace.git/info/refs?service=git-upload-pack`;
    const anon = await fetch(refs);
    await anon.body?.cancel();
    assert.equal(anon.status, 401);
    const header = await bottle(
      ["exec", name, "--", "git", "config", "--global", "--get-regexp", "extraheader"],
      be.env,
    );
    const auth = /Authorization: (Basic \S+)/.exec(header.stdout)?.[1];
    assert.ok(auth, header.stdout);
    const wrong = await fetch(refs, { headers: { authorization: "Basic Ym90dGxlOndyb25n" } });
    await wrong.body?.cancel();
    assert.equal(wrong.status, 401);
    // Positive control: the agent's own credential is what the gate wants.
    const withToken = await fetch(refs, { headers: { authorization: auth } });
    await withToken.body?.cancel();
    assert.equal(withToken.status, 200);
    // Nor push: receive-pack wants the token as well.
    const push0 = await fetch(`http://${bundleIp}:8080/workspace.git/git-receive-pack`, {
      method: "POST",
      headers: { "content-type": "application/x-git-receive-pack-request" },
      body: "0000",
    });
    await push0.body?.cancel();
    assert.equal(push0.status, 401);
    // The token went to the VM on stdin: on no command line of smolvm's.
    const token = atob(auth.slice("Basic ".length)).split(":")[1]!;
    assert.ok(token.length >= 32);
    assert.ok(
      (await fake.log()).every((argv) => argv.every((a) => !a.includes(token))),
      "the gate token is on an argv",
    );
  } finally {
    listener.close();
    const stop = await bottle(["stop", name], be.env);
    assert.equal(stop.code, 0, stop.stderr);
  }
  assert.deepEqual(await labelled(`bottle.id=${name}`), NOTHING);
  assert.match((await git(["branch", "--list", "bottle/*"])).stdout, /bottle\/vmprobe-w1\/main/);
});

Deno.test("smolmachines: Claude Code in the VM is connected to supervise, which answers only the bottle's token", async () => {
  await using fake = await fakeSmolvm({ dockerGuests: true });
  await using be = await bottleEnv({ ...fake.env, SMOLVM: FAKE_SMOLVM });
  const cwd = await projectWith(be, AGENT_FILE + "    supervise: { timeout: 5m }\n");
  const name = "vmprobe-s1";
  try {
    const r = await bottle(["start", "vmprobe", "--detach", "--name", "s1"], be.env, { cwd });
    assert.equal(r.code, 0, r.stderr);
    const create = (await fake.log()).find((a) => a[0] === "machine" && a[1] === "create")!;
    const bundleIp = flagValues(create, "--allow-cidr")[0]!.replace("/32", "");
    const mcpUrl = `http://${bundleIp}:8090/mcp`;

    const list = await bottle(["exec", name, "--", "claude", "mcp", "list"], be.env, { cwd });
    assert.equal(list.code, 0, list.stderr);
    assert.ok(list.stdout.includes(`supervise: ${mcpUrl} (HTTP) - ✔ Connected`), list.stdout);

    // Another process on the host reaches the bundle's address, but not the daemon's tools.
    const call = (auth?: string) =>
      fetch(mcpUrl, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": "2025-06-18",
          ...(auth ? { authorization: auth } : {}),
        },
        body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
      });
    const anon = await call();
    await anon.body?.cancel();
    assert.equal(anon.status, 401);
    const wrong = await call("Bearer wrong");
    await wrong.body?.cancel();
    assert.equal(wrong.status, 401);
    // Positive control: the header Claude Code was given is what the daemon wants.
    const cfg = await bottle(["exec", name, "--", "cat", "/home/agent/.claude.json"], be.env);
    const servers = JSON.parse(cfg.stdout).mcpServers as Record<
      string,
      { url: string; headers: Record<string, string>; timeout: number }
    >;
    const auth = servers.supervise!.headers.Authorization!;
    assert.equal(servers.supervise!.timeout, (300 + 60) * 1000);
    const ok = await call(auth);
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /request_approval/);
    const token = auth.slice("Bearer ".length);
    assert.ok(token.length >= 32);
    assert.ok(
      (await fake.log()).every((argv) => argv.every((a) => !a.includes(token))),
      "the supervise token is on an argv",
    );

    // A request from the VM, answered from the host.
    const ask = callFromBottle(
      name,
      be.env,
      mcpUrl,
      "ask_human",
      { question: "from the vm?" },
      auth,
    );
    const id = await firstPendingId(be.env);
    const answered = await bottle(["supervise", "--answer", id, "yes, from the host"], be.env);
    assert.equal(answered.code, 0, answered.stderr);
    assert.match((await ask).stdout, /yes, from the host/);
  } finally {
    const stop = await bottle(["stop", name], be.env);
    assert.equal(stop.code, 0, stop.stderr);
  }
  assert.deepEqual(await labelled(`bottle.id=${name}`), NOTHING);
});
