/**
 * No DNS query for an outside name ever leaves the host from a bottle, on
 * any engine (older ones forward queries from --internal networks through
 * their embedded resolver, CVE-2024-29018): a capture on every host
 * interface sees the host's own lookup of a unique name (the positive
 * control) and nothing of the names the agent tried.
 */
import assert from "node:assert/strict";
import { bottle, bottleEnv, inContainer, projectWith } from "../helpers/bottle_env.ts";
import { probe } from "../helpers/net_probe.ts";

const AGENT_FILE = "version: 1\nagents:\n  dns:\n    anthropic: none\n";

Deno.test("dns: a query for a unique outside name never leaves the host", async () => {
  const tag = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
  const names = { agent: `agentq${tag}`, proxy: `proxyq${tag}`, host: `hostq${tag}` };
  await using be = await bottleEnv();
  const cwd = await projectWith(be, AGENT_FILE);
  const capture = new Deno.Command("tcpdump", {
    args: ["-i", "any", "-n", "-l", "-s", "0", "-A", "port", "53"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let seen = "";
  const reading = (async () => {
    for await (const c of capture.stdout.pipeThrough(new TextDecoderStream())) seen += c;
  })();
  const stderr = capture.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let said = "";
  while (!/listening on/.test(said)) {
    const { value, done } = await stderr.read();
    if (done) throw new Error(`tcpdump did not start: ${said}`);
    said += value;
  }
  const r = await bottle(["start", "dns", "--detach", "--name", "cap"], be.env, { cwd });
  try {
    assert.equal(r.code, 0, r.stderr);
    const agent = "bottle-dns-cap-agent";
    const lookup = await inContainer(agent, `getent hosts ${names.agent}.example.com`);
    assert.notEqual(lookup.code, 0, lookup.stdout);
    assert.match(await probe(agent, "udp", "8.8.8.8", 53), /Network is unreachable/);
    const viaProxy = await inContainer(agent, `curl -sS -m 10 https://${names.proxy}.example.com/`);
    assert.notEqual(viaProxy.code, 0);
    // Positive control: the host's own lookup is seen by the capture.
    await new Deno.Command("getent", { args: ["hosts", `${names.host}.example.com`] }).output();
    for (let i = 0; i < 50 && !seen.includes(names.host); i++) {
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(seen.includes(names.host), "the capture missed the host's own query");
    await new Promise((res) => setTimeout(res, 1000));
    assert.ok(!seen.includes(names.agent), "the agent's lookup left the host");
    assert.ok(!seen.includes(names.proxy), "a name the agent asked the proxy for left the host");
  } finally {
    capture.kill("SIGTERM");
    await capture.status;
    await reading.catch(() => {});
    await stderr.cancel().catch(() => {});
    await bottle(["stop", "dns-cap"], be.env);
  }
});
