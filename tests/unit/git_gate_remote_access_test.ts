import assert from "node:assert/strict";
import { remoteAccess } from "../../src/bundle/git_gate/remote_upstream.ts";
import type { RemoteUpstream } from "../../src/bundle/git_gate/gate_config.ts";
import { parseGateConfig } from "../../src/bundle/git_gate/gate_config.ts";

const policy = { branches: ["bottle/*"], maxPushBytes: 1024, allowTags: false, hooks: [] };
const TOKEN = "ghp_unit0123456789abcdefghijklmnopqrstuv";

function upstream(url: string, over: Partial<RemoteUpstream> = {}): RemoteUpstream {
  return { name: "tool", kind: "remote", url, policy, ...over };
}

Deno.test("remote access: an https token is in git's env only, never its argv", async () => {
  const a = await remoteAccess(
    upstream("https://git.example/team/tool.git", { identity: { kind: "token", env: "T" } }),
    TOKEN,
    { extraCaPems: ["-----BEGIN CERTIFICATE-----\nextra\n"], systemCaFile: "/nonexistent" },
  );
  assert.ok(!a.config.join(" ").includes(TOKEN), "the token is on git's command line");
  assert.equal(a.env.BOTTLE_GATE_TOKEN, TOKEN);
  assert.equal(a.env.BOTTLE_GATE_USERNAME, "x-access-token");
  // Helpers configured anywhere else are dropped; the gate's answers for the upstream only.
  const helpers = a.config.filter((c) => /^credential\..*helper=/.test(c));
  assert.equal(helpers[0], "credential.helper=");
  assert.equal(helpers.length, 2);
  assert.ok(helpers[1]!.startsWith("credential.https://git.example.helper=!"), helpers[1]);
  // No redirect takes the token (or the pushes) to another host.
  assert.ok(a.config.includes("http.followRedirects=false"));
  const ca = a.config.find((c) => c.startsWith("http.sslCAInfo="))!.split("=")[1]!;
  assert.match(await Deno.readTextFile(ca), /extra/);
  assert.equal((await Deno.stat(ca)).mode! & 0o077, 0);
});

Deno.test("remote access: a URL's own user name is the token's", async () => {
  const a = await remoteAccess(
    upstream("https://oauth2@git.example/tool.git", { identity: { kind: "token", env: "T" } }),
    TOKEN,
    { extraCaPems: [], systemCaFile: "/nonexistent" },
  );
  assert.equal(a.env.BOTTLE_GATE_USERNAME, "oauth2");
  assert.equal(a.config.some((c) => c.startsWith("http.sslCAInfo=")), false);
});

Deno.test("remote access: ssh checks the host key strictly, with the key in a private file", async () => {
  const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----";
  const a = await remoteAccess(
    upstream("git@git.example:team/tool.git", {
      identity: { kind: "ssh-key", env: "K" },
      knownHosts: "git.example ssh-ed25519 AAAAC3\n",
    }),
    key,
    { extraCaPems: [], systemCaFile: "/nonexistent" },
  );
  const cmd = a.env.GIT_SSH_COMMAND!;
  assert.ok(!cmd.includes("AAAA") && !JSON.stringify(a.config).includes("PRIVATE"));
  for (
    const opt of [
      "StrictHostKeyChecking=yes",
      "BatchMode=yes",
      "IdentitiesOnly=yes",
      "-F /dev/null",
      "GlobalKnownHostsFile=/dev/null",
      "IdentityAgent=none",
    ]
  ) {
    assert.ok(cmd.includes(opt), `${opt} missing from ${cmd}`);
  }
  const keyFile = / -i (\S+)/.exec(cmd)![1]!;
  assert.equal(await Deno.readTextFile(keyFile), `${key}\n`);
  assert.equal((await Deno.stat(keyFile)).mode! & 0o077, 0);
  const known = /UserKnownHostsFile=(\S+)/.exec(cmd)![1]!;
  assert.equal(await Deno.readTextFile(known), "git.example ssh-ed25519 AAAAC3\n");
  assert.equal(a.env.LD_PRELOAD, "libnss_wrapper.so");
});

Deno.test("remote access: a token is never sent over plain http", async () => {
  await assert.rejects(
    remoteAccess(
      upstream("http://git.example/tool.git", { identity: { kind: "token", env: "T" } }),
      TOKEN,
      { extraCaPems: [], systemCaFile: "/nonexistent" },
    ),
    /over https only/,
  );
});

Deno.test("remote access: a token upstream without its token fails at once", async () => {
  await assert.rejects(
    remoteAccess(
      upstream("https://git.example/tool.git", { identity: { kind: "token", env: "T" } }),
      undefined,
      { extraCaPems: [], systemCaFile: "/nonexistent" },
    ),
    /token is missing/,
  );
});

Deno.test("gate config: a remote upstream whose URL could be an option is refused", () => {
  const cfg = (url: string) => ({
    bottle: "b",
    listen: { host: "127.0.0.1", port: 8080 },
    auditLog: "/a",
    mirrorsDir: "/m",
    secretEnv: [],
    upstreams: [{ name: "tool", kind: "remote", url, policy }],
  });
  assert.equal(parseGateConfig(cfg("https://h/tool.git")).upstreams[0]!.kind, "remote");
  assert.throws(() => parseGateConfig(cfg("--upload-pack=evil")), /bad url/);
});
