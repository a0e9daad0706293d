/**
 * Isolation of a real docker bottle, proven by probes from inside the agent
 * container: what it can reach (the allowlisted host, through the bundle)
 * and everything it cannot, by TCP, UDP, SO_DONTROUTE and broadcast, each
 * after a positive control from the same container, and with a listener on
 * every host address that records whatever gets through. Two bottles of one
 * agent run side by side, so the probes also cover "no other bottle".
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
  NOTHING,
  projectWith,
} from "../helpers/bottle_env.ts";
import { broadcastOf, hostListener, probe } from "../helpers/net_probe.ts";
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
  await using listener = await hostListener();
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
    const bundle = "bottle-probe-isoa-bundle";
    const outbound = "bottle-probe-isoa-outbound";
    const url = (host: string, path = "/headers") => `https://${host}:${upstream.port}${path}`;
    await run(["docker", "cp", upstream.caFile, `${agent}:/tmp/upstream-ca.pem`]);
    await run(["docker", "exec", "-u", "0", agent, "chmod", "0644", "/tmp/upstream-ca.pem"]);
    const outboundGw = await networkGateway(outbound);
    const subnet = (await run([
      "docker",
      "network",
      "inspect",
      "--format",
      "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
      outbound,
    ])).stdout.trim();
    const bundleIp = await containerIp(bundle, outbound);
    const hostAddresses = [gateway, outboundGw, "127.0.0.1"];

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

    await t.step("the agent has no network interface but loopback", async () => {
      const r = await inContainer(agent, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
      assert.equal(r.stdout.trim(), "lo");
      const v6 = await inContainer(agent, "cat /proc/net/if_inet6 2>/dev/null; true");
      assert.doesNotMatch(v6.stdout, /eth|veth/);
    });

    await t.step(
      "positive controls: the bundle by its loopback port, and UDP on loopback",
      async () => {
        assert.equal(await probe(agent, "tcp", "127.0.0.1", 3128), "connected");
        assert.equal(await probe(agent, "tcp", "127.0.0.1", 3128, "dontroute"), "connected");
        assert.equal(await probe(agent, "udp-loop"), "received");
        // The host listener answers on every host address: from a container on a bridge it is reached.
        assert.equal(await probe(bundle, "tcp", outboundGw, listener.port), "connected");
        assert.equal(await probe(bundle, "udp", outboundGw, listener.port), "sent");
        for (let i = 0; i < 50 && listener.udpFrom.length === 0; i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.deepEqual(listener.udpFrom, [bundleIp]);
        assert.deepEqual(listener.tcpFrom, [bundleIp]);
        listener.udpFrom.length = 0;
        listener.tcpFrom.length = 0;
      },
    );

    await t.step("no TCP to any host address, plain or with SO_DONTROUTE", async () => {
      for (const ip of [...hostAddresses, bundleIp]) {
        for (const opt of ["", "dontroute"] as const) {
          const verdict = await probe(agent, "tcp", ip, listener.port, opt);
          // 127.0.0.1 is the agent's own loopback, where the host's port is not.
          const expected = ip === "127.0.0.1"
            ? /^error: Connection refused/
            : /^error: Network is unreachable/;
          assert.match(verdict, expected, `${ip} ${opt}: ${verdict}`);
        }
      }
      const direct = await inContainer(
        agent,
        `curl -sS -m 5 --noproxy '*' -k https://${gateway}:${upstream.port}/headers`,
      );
      assert.notEqual(direct.code, 0);
      assert.equal(listener.tcpFrom.length, 0, `reached the host from ${listener.tcpFrom}`);
    });

    await t.step("no UDP out: direct, SO_DONTROUTE, broadcast, subnet broadcast", async () => {
      const targets: [string, "" | "dontroute" | "broadcast"][] = [
        ...hostAddresses.map((ip) => [ip, ""] as [string, ""]),
        ...hostAddresses.map((ip) => [ip, "dontroute"] as [string, "dontroute"]),
        ["255.255.255.255", "broadcast"],
        [broadcastOf(subnet), "broadcast"],
      ];
      for (const [ip, opt] of targets) {
        const verdict = await probe(agent, "udp", ip, listener.port, opt);
        // 127.0.0.1 is the agent's own loopback: sent there, it never reaches the host.
        if (ip === "127.0.0.1") assert.equal(verdict, "sent");
        else assert.match(verdict, /^error: Network is unreachable/, `${ip} ${opt}: ${verdict}`);
      }
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(listener.udpFrom, [], `UDP reached the host from ${listener.udpFrom}`);
    });

    await t.step("DNS for outside names fails: the agent has no resolver to ask", async () => {
      for (const name of ["example.com", "allowed.test", "host.docker.internal"]) {
        const r = await inContainer(agent, `timeout 8 getent hosts ${name}`);
        assert.notEqual(r.code, 0, `${name} resolved: ${r.stdout}`);
      }
      const dig = await inContainer(agent, "timeout 5 getent hosts bottle-probe-isob-bundle");
      assert.notEqual(dig.code, 0);
    });

    await t.step("no docker socket inside the bottle", async () => {
      const r = await inContainer(
        agent,
        "ls /var/run/docker.sock /run/docker.sock 2>&1; find / -name docker.sock 2>/dev/null | head -1",
      );
      assert.doesNotMatch(r.stdout, /^\/.*docker\.sock$/m);
    });

    await t.step("cloud metadata (169.254.169.254) is unreachable", async () => {
      assert.match(
        await probe(agent, "tcp", "169.254.169.254", 80),
        /^error: Network is unreachable/,
      );
    });

    await t.step("the other bottle's bundle is unreachable; its own answers", async () => {
      const otherBundle = await containerIp(
        "bottle-probe-isob-bundle",
        "bottle-probe-isob-outbound",
      );
      assert.match(otherBundle, /^\d+\.\d+\.\d+\.\d+$/);
      assert.match(await probe(agent, "tcp", otherBundle, 3128), /^error: Network is unreachable/);
      const own = await inContainer(
        agent,
        "curl -sS -m 5 --noproxy '*' http://127.0.0.1:3128/healthz",
      );
      assert.equal(own.code, 0, own.stderr);
      // The other bottle's sockets are not in this one.
      const mounts = await inContainer(agent, "cat /proc/self/mountinfo");
      assert.doesNotMatch(mounts.stdout, /isob/);
    });

    await t.step("the bundle's internal ports (pipelock, health) are unreachable", async () => {
      for (const port of [8888, 9099]) {
        assert.match(await probe(agent, "tcp", "127.0.0.1", port), /^error: Connection refused/);
      }
    });

    await t.step("the agent cannot replace the bundle's socket", async () => {
      const r = await inContainer(
        agent,
        "rm -f /run/bottle/sockets/egress.sock; touch /run/bottle/sockets/x; ls /run/bottle/sockets",
      );
      assert.match(r.stderr, /Read-only file system/);
      assert.equal(r.stdout.trim(), "egress.sock");
    });

    await t.step("from the host, egress is not reachable at the bundle's address", async () => {
      // A refusal is the bundle's own kernel answering (a dead or unroutable
      // bundle would time out or be unreachable): egress just listens only
      // on the bundle's loopback and the agent's socket.
      const conn = await Deno.connect({ hostname: bundleIp, port: 3128 }).then(
        (c) => (c.close(), "connected"),
        (e: Error) => e.name,
      );
      assert.equal(conn, "ConnectionRefused");
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
      assert.deepEqual(await labelled("bottle.id=probe-isoa"), NOTHING);
      const other = await bottle(["exec", "probe-isob", "--", "echo", "still-here"], be.env);
      assert.equal(other.code, 0, other.stderr);
      assert.equal(other.stdout, "still-here\n");
      const ls = JSON.parse((await bottle(["ls", "--json"], be.env)).stdout) as {
        name: string;
        state: string;
      }[];
      assert.deepEqual(
        ls.filter((b) => b.name.startsWith("probe-iso")).map((b) => [b.name, b.state]),
        [["probe-isob", "running"]],
      );
    });
  } finally {
    for (const name of names) await bottle(["stop", name], be.env);
  }
  for (const name of names) assert.deepEqual(await labelled(`bottle.id=${name}`), NOTHING);
});
