/**
 * Isolation of a real docker bottle, proven by probes from inside the agent
 * container: what it can reach (the allowlisted host, through the bundle)
 * and everything it cannot. Two bottles of one agent run side by side, so
 * the probes also cover "no other bottle".
 */
import assert from "node:assert/strict";
import {
  bottle,
  bottleEnv,
  bridgeUpstream,
  containerIp,
  inContainer,
  labelled,
  networkGateway,
  projectWith,
} from "../helpers/bottle_env.ts";
import { run } from "../../src/proc/runner.ts";

const AGENT_FILE = `version: 1
agents:
  probe:
    description: isolation probes
    anthropic: none
    allowed_domains: [allowed.test]
`;

Deno.test("docker: a real bottle reaches only what the bundle allows", async (t) => {
  const bridge = await bridgeUpstream(["allowed.test", "denied.test"]);
  const { gateway } = bridge;
  await using upstream = bridge.upstream;
  await using be = await bottleEnv(bridge.env);
  const project = await projectWith(be, AGENT_FILE);

  const names: string[] = [];
  try {
    for (const suffix of ["a", "b"]) {
      const r = await bottle(["start", "probe", "--detach", "--name", `iso${suffix}`], be.env, {
        cwd: project,
      });
      assert.equal(r.code, 0, r.stderr);
      names.push(r.stdout.trim());
    }
    assert.deepEqual(names, ["probe-isoa", "probe-isob"]);
    const agent = "bottle-probe-isoa-agent";
    const url = (host: string, path = "/headers") => `https://${host}:${upstream.port}${path}`;
    await run(["docker", "cp", upstream.caFile, `${agent}:/tmp/upstream-ca.pem`]);
    await run(["docker", "exec", "-u", "0", agent, "chmod", "0644", "/tmp/upstream-ca.pem"]);

    await t.step("the allowlisted host answers through the proxy", async () => {
      const r = await inContainer(
        agent,
        `curl -sS -m 20 --cacert /tmp/upstream-ca.pem ${url("allowed.test")}`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(JSON.parse(r.stdout)["user-agent"], /^curl\//);
      assert.ok(
        upstream.requests.some((q) => q.path === "/headers"),
        "the upstream saw no request",
      );
    });

    await t.step("a host that is not allowlisted is refused by the proxy", async () => {
      const r = await inContainer(
        agent,
        `curl -sS -m 20 --cacert /tmp/upstream-ca.pem ${url("denied.test")}`,
      );
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /CONNECT tunnel failed, response 403/);
    });

    await t.step("direct TCP to the upstream's address fails", async () => {
      const r = await inContainer(
        agent,
        `curl -sS -m 5 --noproxy '*' -k https://${gateway}:${upstream.port}/headers`,
      );
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Failed to connect|Couldn't connect|timed out|unreachable/i);
    });

    await t.step("DNS for outside names fails", async () => {
      for (const name of ["example.com", "allowed.test", "host.docker.internal"]) {
        const r = await inContainer(agent, `timeout 8 getent hosts ${name}`);
        assert.notEqual(r.code, 0, `${name} resolved: ${r.stdout}`);
      }
    });

    await t.step("host loopback and the docker gateways are unreachable", async () => {
      const internalGw = await networkGateway("bottle-probe-isoa-internal");
      const outboundGw = await networkGateway("bottle-probe-isoa-outbound");
      for (const ip of [internalGw, outboundGw, gateway]) {
        const r = await inContainer(
          agent,
          `curl -sS -m 5 --noproxy '*' -k https://${ip}:${upstream.port}/headers`,
        );
        assert.notEqual(r.code, 0, `reached ${ip}: ${r.stdout}`);
      }
      // The agent's own loopback is not the host's: nothing of the host listens there.
      const lo = await inContainer(
        agent,
        `curl -sS -m 5 --noproxy '*' -k https://127.0.0.1:${upstream.port}/`,
      );
      assert.notEqual(lo.code, 0);
    });

    await t.step("no docker socket inside the bottle", async () => {
      const r = await inContainer(
        agent,
        "ls /var/run/docker.sock /run/docker.sock 2>&1; find / -name docker.sock 2>/dev/null | head -1",
      );
      assert.doesNotMatch(r.stdout, /^\/.*docker\.sock$/m);
    });

    await t.step("cloud metadata (169.254.169.254) is unreachable", async () => {
      const r = await inContainer(
        agent,
        "curl -sS -m 5 --noproxy '*' http://169.254.169.254/latest/meta-data/",
      );
      assert.notEqual(r.code, 0);
    });

    await t.step("the other bottle's bundle is unreachable", async () => {
      const otherBundle = await containerIp(
        "bottle-probe-isob-bundle",
        "bottle-probe-isob-internal",
      );
      assert.match(otherBundle, /^\d+\.\d+\.\d+\.\d+$/);
      const r = await inContainer(
        agent,
        `curl -sS -m 5 --noproxy '*' http://${otherBundle}:3128/healthz`,
      );
      assert.notEqual(r.code, 0, r.stdout);
      const byName = await inContainer(agent, "timeout 8 getent hosts bottle-probe-isob-bundle");
      assert.notEqual(byName.code, 0);
      // Its own bundle answers on the same port: the refusal above is isolation, not a dead port.
      const own = await inContainer(
        agent,
        "curl -sS -m 5 --noproxy '*' http://bundle:3128/healthz",
      );
      assert.equal(own.code, 0, own.stderr);
    });

    await t.step("the bundle's internal ports (pipelock, health) are unreachable", async () => {
      for (const port of [8888, 9099]) {
        const r = await inContainer(
          agent,
          `curl -sS -m 5 --noproxy '*' http://bundle:${port}/health`,
        );
        assert.notEqual(r.code, 0, `port ${port} answered: ${r.stdout}`);
      }
    });

    await t.step("the agent runs unprivileged and locked down", async () => {
      const r = await inContainer(agent, "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status");
      assert.match(r.stdout, /^1000\n/);
      assert.match(r.stdout, /CapEff:\s+0000000000000000/);
      assert.match(r.stdout, /NoNewPrivs:\s+1/);
    });

    await t.step("stopping one bottle leaves the other running", async () => {
      const r = await bottle(["stop", "probe-isoa"], be.env);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await labelled("bottle.id=probe-isoa"), { containers: [], networks: [] });
      const other = await bottle(["exec", "probe-isob", "--", "echo", "still-here"], be.env);
      assert.equal(other.code, 0, other.stderr);
      assert.equal(other.stdout, "still-here\n");
      const ls = JSON.parse((await bottle(["ls", "--json"], be.env)).stdout) as {
        name: string;
        state: string;
      }[];
      assert.deepEqual(
        ls.filter((b) => b.name.startsWith("probe-iso")).map((b) => [b.name, b.state]),
        [
          ["probe-isob", "running"],
        ],
      );
    });
  } finally {
    for (const name of names) await bottle(["stop", name], be.env);
  }
  for (const name of names) {
    assert.deepEqual(await labelled(`bottle.id=${name}`), { containers: [], networks: [] });
  }
});
