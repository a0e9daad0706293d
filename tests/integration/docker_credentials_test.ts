/**
 * Credentials stay outside the bottle: a real bottle calls a routed host
 * with a placeholder, the upstream receives the real credential, and the
 * credential is nowhere the agent (or a bystander on the host) could read it.
 */
import assert from "node:assert/strict";
import {
  bottle,
  bottleEnv,
  bridgeUpstream,
  inContainer,
  projectWith,
} from "../helpers/bottle_env.ts";
import { run } from "../../src/proc/runner.ts";

/** The route names the test upstream's port: routes match their host and port. */
const agentFile = (port: number) =>
  `version: 1
agents:
  cred:
    anthropic: none
    allowed_domains: [open.test]
    routes:
      - host: api.test:${port}
        header: x-api-key
        template: "{value}"
        placeholder_env: TEST_API_KEY
        value: { env: BOTTLE_IT_SECRET }
`;

/** Samples every host process's argv while `during` runs. */
async function sampleArgv<T>(during: () => Promise<T>): Promise<{ result: T; argv: string[] }> {
  const seen = new Set<string>();
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const r = await run(["ps", "-eo", "args="], { check: false });
      for (const l of r.stdout.split("\n")) seen.add(l);
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  try {
    return { result: await during(), argv: [...seen] };
  } finally {
    done = true;
    await sampler;
  }
}

Deno.test("docker: the upstream gets the real credential, the bottle only a placeholder", async (t) => {
  const secret = `sk-it-${crypto.randomUUID()}`;
  const bridge = await bridgeUpstream(["api.test", "open.test"]);
  await using upstream = bridge.upstream;
  await using be = await bottleEnv({ BOTTLE_IT_SECRET: secret, ...bridge.env });
  const project = await projectWith(be, agentFile(upstream.port));
  const build = await bottle(["build", "cred"], be.env, { cwd: project });
  assert.equal(build.code, 0, build.stderr);

  const { result: start, argv } = await sampleArgv(() =>
    bottle(["start", "cred", "--detach", "--name", "c1"], be.env, { cwd: project })
  );
  assert.equal(start.code, 0, start.stderr);
  const agent = "bottle-cred-c1-agent";
  const base = `https://api.test:${upstream.port}`;
  try {
    await t.step(
      "the upstream receives the injected credential; the agent sent the placeholder",
      async () => {
        const r = await inContainer(
          agent,
          `curl -sS -m 20 -H "x-api-key: $TEST_API_KEY" ${base}/status/204 -w '%{http_code}'`,
        );
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "204");
        const seen = upstream.requests.filter((q) => q.path === "/status/204");
        assert.equal(seen.length, 1);
        assert.equal(seen[0]!.headers["x-api-key"], secret);
        const env = await inContainer(agent, 'printf %s "$TEST_API_KEY"');
        assert.equal(env.stdout, "bottle-placeholder");
      },
    );

    await t.step(
      "from the host, egress serves only requests with the agent's proxy credential",
      async () => {
        // The agent's proxy URLs hold the credential; egress is reached through its socket.
        const proxy = (await inContainer(agent, 'printf %s "$HTTPS_PROXY"')).stdout;
        const m = /^http:\/\/bottle:([0-9a-f]{64})@127\.0\.0\.1:\d+$/.exec(proxy);
        assert.ok(m, `unexpected HTTPS_PROXY in the agent: ${proxy}`);
        const token = m[1]!;
        const volume = await run([
          "docker",
          "volume",
          "inspect",
          "bottle-cred-c1-sockets",
          "--format",
          "{{.Mountpoint}}",
        ]);
        const socket = `${volume.stdout.trim()}/egress.sock`;
        const target = `api.test:${upstream.port}`;
        const connect = async (auth: string) => {
          const conn = await Deno.connect({ transport: "unix", path: socket });
          try {
            await conn.write(new TextEncoder().encode(
              `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`,
            ));
            const buf = new Uint8Array(1024);
            const n = await conn.read(buf);
            return new TextDecoder().decode(buf.subarray(0, n ?? 0));
          } finally {
            conn.close();
          }
        };
        const before = upstream.requests.length;
        // Positive control: the same socket, with the agent's credential, opens the route.
        const basic = (p: string) => `Proxy-Authorization: Basic ${btoa(`bottle:${p}`)}\r\n`;
        assert.match(await connect(basic(token)), /^HTTP\/1\.1 200 /);
        for (
          const auth of ["", basic("0".repeat(64)), `Proxy-Authorization: Bearer ${token}\r\n`]
        ) {
          assert.match(await connect(auth), /^HTTP\/1\.1 407 /, JSON.stringify(auth));
        }
        assert.equal(upstream.requests.length, before, "a refused request reached the upstream");
        // The bundle's address is no way in either: egress listens on its own loopback and socket.
        const ip = (await run([
          "docker",
          "inspect",
          "bottle-cred-c1-bundle",
          "--format",
          "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        ])).stdout.trim();
        const tcp = await Deno.connect({ hostname: ip, port: 3128 }).then(
          (c) => (c.close(), "connected"),
          (e: Error) => e.name,
        );
        assert.equal(tcp, "ConnectionRefused");
        // The credential is on no host argv either (it goes to docker in an env file).
        assert.ok(argv.every((a) => !a.includes(token)), "the proxy credential on a host argv");
        const inspectBundle = await run(["docker", "inspect", "bottle-cred-c1-bundle"]);
        assert.ok(
          !inspectBundle.stdout.includes(token),
          "proxy credential in the bundle's inspect",
        );
      },
    );

    await t.step(
      "the route has a pipelock of its own, the one that exempts its header",
      async () => {
        const procs = await run([
          "docker",
          "exec",
          "bottle-cred-c1-bundle",
          "sh",
          "-c",
          "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done",
        ]);
        const pipelocks = procs.stdout.split("\n").filter((l) => l.includes(" run --config "));
        assert.deepEqual(pipelocks.map((l) => /--config (\S+)/.exec(l)![1]).sort(), [
          "/etc/bottle/pipelock-routes.yaml",
          "/etc/bottle/pipelock.yaml",
        ]);
      },
    );

    await t.step("only routed hosts are intercepted by egress", async () => {
      const routed = await inContainer(
        agent,
        `curl -sS -m 20 -v -o /dev/null ${base}/status/204 2>&1 | grep -i 'issuer:'`,
      );
      assert.match(routed.stdout, /bottle egress CA/);
      await run(["docker", "cp", upstream.caFile, `${agent}:/tmp/upstream-ca.pem`]);
      await run(["docker", "exec", "-u", "0", agent, "chmod", "0644", "/tmp/upstream-ca.pem"]);
      const open = await inContainer(
        agent,
        `curl -sS -m 20 -v --cacert /tmp/upstream-ca.pem -o /dev/null https://open.test:${upstream.port}/status/204 2>&1 | grep -i 'issuer:'`,
      );
      assert.match(open.stdout, /bottle test upstream CA/);
    });

    await t.step("a non-allowlisted host is refused", async () => {
      const r = await inContainer(agent, `curl -sS -m 20 https://elsewhere.test:${upstream.port}/`);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /CONNECT tunnel failed, response 403/);
    });

    await t.step("an SSE stream arrives incrementally", async () => {
      const events = inContainer(agent, `curl -sS -N -m 60 ${base}/sse?n=3 | tee /tmp/sse.txt`);
      await upstream.sseStarted();
      // The upstream holds the rest of the stream until released: the first
      // event must reach the agent while the stream is still open.
      let early = "";
      for (let i = 0; i < 200 && !early.includes("data: event 1"); i++) {
        early = (await inContainer(agent, "cat /tmp/sse.txt 2>/dev/null; true")).stdout;
        if (!early.includes("data: event 1")) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(early, "data: event 1\n\n");
      assert.equal(upstream.sseFinished, false);
      upstream.releaseSse();
      const r = await events;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "data: event 1\n\ndata: event 2\n\ndata: event 3\n\n");
    });

    await t.step("a 100 MB download completes", async () => {
      const n = 100 * 1024 * 1024;
      const r = await inContainer(
        agent,
        `curl -sS -m 300 -o /dev/null -w '%{size_download}' ${base}/bytes?n=${n}`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(Number(r.stdout), n);
    });

    await t.step(
      "the credential is in no agent env, process, file, inspect or image history",
      async () => {
        const envs = await inContainer(
          agent,
          "env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'",
          "0",
        );
        assert.ok(!envs.stdout.includes(secret), "secret in the agent's environment");
        const files = await inContainer(
          agent,
          `grep -rlF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -- '${secret}' / 2>/dev/null; true`,
          "0",
        );
        assert.equal(files.stdout.trim(), "", `secret in files: ${files.stdout}`);
        const inspect = await run(["docker", "inspect", agent]);
        assert.ok(!inspect.stdout.includes(secret), "secret in docker inspect of the agent");
        const image = JSON.parse(inspect.stdout)[0].Config.Image as string;
        const history = await run(["docker", "history", "--no-trunc", image]);
        assert.ok(!history.stdout.includes(secret), "secret in the agent image history");
      },
    );

    await t.step("the credential is on no host argv, plan output, state file or log", async () => {
      assert.ok(argv.length > 10, "the argv sampler saw too little");
      assert.ok(argv.every((a) => !a.includes(secret)), "secret on a host process's argv");
      // The secret reaches the bundle on its stdin at start: not even its name is docker env.
      assert.ok(
        argv.some((a) =>
          a.includes("docker run --sig-proxy=false --name bottle-cred-c1-bundle") &&
          a.includes("--interactive")
        ),
        "the bundle was not run attached with its input on stdin",
      );
      assert.ok(argv.every((a) => !a.includes("BOTTLE_ROUTE_0")), "a route secret's name on argv");
      for (const c of ["bottle-cred-c1-bundle", "bottle-cred-c1-agent"]) {
        const inspect = await run(["docker", "inspect", c]);
        assert.ok(!inspect.stdout.includes(secret), `secret in docker inspect of ${c}`);
      }
      // Inside the bundle only egress holds it, in memory: no process env has it.
      const environs = await run([
        "docker",
        "exec",
        "bottle-cred-c1-bundle",
        "sh",
        "-c",
        "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'; ls /proc | head -1",
      ]);
      assert.ok(environs.stdout.length > 0);
      assert.ok(!environs.stdout.includes(secret), "secret in a bundle process's environment");
      const plan = await bottle(["plan", "cred", "--json"], be.env, { cwd: project });
      assert.equal(plan.code, 0, plan.stderr);
      assert.ok(!plan.stdout.includes(secret) && !plan.stderr.includes(secret));
      const state = await run(["grep", "-rlF", "--", secret, be.stateRoot], { check: false });
      assert.equal(state.stdout, "", `secret in state files: ${state.stdout}`);
      const logs = await bottle(["logs", "cred-c1", "--json"], be.env);
      assert.equal(logs.code, 0, logs.stderr);
      assert.ok(!logs.stdout.includes(secret));
      const lines = logs.stdout.trim().split("\n").map((l) => JSON.parse(l));
      const routed = lines.find((l) => l.path === "/status/204");
      assert.equal(routed?.decision, "routed");
      assert.equal(routed?.host, `api.test:${upstream.port}`);
      assert.ok(
        lines.some((l) => l.decision === "denied" || l.status === 403),
        "no denied line in the audit log",
      );
      const bundleLogs = await run(["docker", "logs", "bottle-cred-c1-bundle"]);
      assert.ok(!(bundleLogs.stdout + bundleLogs.stderr).includes(secret));
      const readable = await bottle(["logs", "cred-c1"], be.env);
      assert.match(
        readable.stdout,
        new RegExp(`GET api\\.test:${upstream.port}/status/204 204 routed`),
      );
    });
    await t.step("stop keeps the audit log: the session can still be reviewed", async () => {
      const stop = await bottle(["stop", "cred-c1"], be.env);
      assert.equal(stop.code, 0, stop.stderr);
      const kept = await bottle(["logs", "cred-c1"], be.env);
      assert.equal(kept.code, 0, kept.stderr);
      assert.match(
        kept.stdout,
        new RegExp(`GET api\\.test:${upstream.port}/status/204 204 routed`),
      );
      assert.ok(!kept.stdout.includes(secret));
    });
  } finally {
    await bottle(["stop", "cred-c1"], be.env);
  }
});
