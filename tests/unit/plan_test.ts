import assert from "node:assert/strict";
import { proxyEnv } from "../../src/plan/proxy_env.ts";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadAgentFile } from "../../src/config/load.ts";
import { builtinAgents } from "../../src/config/builtin.ts";
import type { LoadedAgent } from "../../src/config/discover.ts";
import { type HostFacts, makePlan } from "../../src/plan/make_plan.ts";
import { placeholderFor } from "../../src/plan/anthropic.ts";
import { headlessPlan } from "../../src/plan/headless.ts";

const TESTDATA = fileURLToPath(new URL("../testdata/", import.meta.url));
const UPDATE = Deno.env.get("UPDATE") === "1";

function facts(over: Partial<HostFacts> = {}): HostFacts {
  return {
    suffix: "abc123",
    stateRoot: "/state/bottle",
    ownerHost: "host1",
    ownerPid: 4242,
    hostEnvNames: new Set(["ANTHROPIC_API_KEY"]),
    ...over,
  };
}

function builtin(): LoadedAgent {
  return {
    name: "claude",
    definition: builtinAgents().claude!,
    origin: "built-in",
    baseDir: "/proj",
    buildCaCerts: [],
  };
}

async function reviewer(): Promise<LoadedAgent> {
  const f = await loadAgentFile(join(TESTDATA, "config/valid/full.yaml"));
  return {
    name: "reviewer",
    definition: f.agents.reviewer!,
    origin: "/proj/bottle.yaml",
    baseDir: "/proj",
    buildCaCerts: [],
  };
}

async function golden(name: string, value: unknown): Promise<void> {
  const file = join(TESTDATA, "plan", `${name}.json`);
  const text = JSON.stringify(value, null, 2) + "\n";
  if (UPDATE) await Deno.writeTextFile(file, text);
  assert.equal(
    text,
    await Deno.readTextFile(file),
    `plan differs from ${file} (UPDATE=1 to accept)`,
  );
}

Deno.test("plan: built-in claude agent matches its golden file", async () => {
  await golden("claude_builtin", makePlan(builtin(), facts()));
});

Deno.test("plan: built-in claude agent on smolmachines matches its golden file", async () => {
  await golden("claude_smolmachines", makePlan(builtin(), facts({ backend: "smolmachines" })));
});

Deno.test("plan: smolmachines on a Docker-Desktop-like engine matches its golden file", async () => {
  await golden(
    "claude_smolmachines_sockets",
    makePlan(
      supervised(),
      inRepo({ backend: "smolmachines", vmNetwork: DESKTOP, hostUser: { uid: 501, gid: 20 } }),
    ),
  );
});

const DESKTOP = {
  mode: "sockets",
  reason: "Docker Desktop keeps container addresses inside its own VM",
} as const;

Deno.test("plan: smolmachines with sockets: no network, the ports as mounted sockets, tokens", () => {
  const p = makePlan(
    withGit(supervised(), [{ url: "https://h/lib.git" }]),
    inRepo({ backend: "smolmachines", vmNetwork: DESKTOP }),
  );
  const net = p.vm!.network;
  assert.equal(net.mode, "sockets");
  if (net.mode !== "sockets") return;
  // No egress policy at all: no allowed address, no DNS name (smolvm then makes no network device).
  assert.ok(!("allowCidrs" in net) && !("allowHosts" in net));
  assert.equal(net.reason, DESKTOP.reason);
  // Each agent-facing daemon: a host socket in the relay dir, mounted where the forwarder dials it.
  const relay = "/state/bottle/bottles/claude-abc123/relay";
  assert.equal(net.relayDir, relay);
  assert.deepEqual(net.sockets, [
    {
      daemon: "egress",
      port: 3128,
      hostSocket: `${relay}/egress.sock`,
      guestSocket: "/run/bottle/sockets/egress.sock",
    },
    {
      daemon: "git-gate",
      port: 8080,
      hostSocket: `${relay}/git-gate.sock`,
      guestSocket: "/run/bottle/sockets/git-gate.sock",
    },
    {
      daemon: "supervise",
      port: 8090,
      hostSocket: `${relay}/supervise.sock`,
      guestSocket: "/run/bottle/sockets/supervise.sock",
    },
  ]);
  assert.deepEqual(net.forwarder, [
    "/usr/local/lib/bottle/bottle-forward",
    "--daemon",
    "3128=/run/bottle/sockets/egress.sock",
    "8080=/run/bottle/sockets/git-gate.sock",
    "8090=/run/bottle/sockets/supervise.sock",
  ]);
  // The agent's URLs are its own loopback, as in a docker bottle.
  assert.equal(p.agent.proxy.url, "http://127.0.0.1:3128");
  assert.equal(p.agent.env.NO_PROXY, "localhost,127.0.0.1");
  assert.deepEqual(p.bundle.gitGate!.upstreams.map((u) => u.url), [
    "http://127.0.0.1:8080/workspace.git",
    "http://127.0.0.1:8080/lib.git",
  ]);
  assert.ok(JSON.stringify(p).indexOf("{bundle.address}") < 0, "the bundle's address is not used");
  // Published on the host's loopback only, where other local processes reach them too: each asks for a token.
  assert.deepEqual(p.bundle.container.publish, [
    { hostIp: "127.0.0.1", port: 3128 },
    { hostIp: "127.0.0.1", port: 8080 },
    { hostIp: "127.0.0.1", port: 8090 },
  ]);
  assert.deepEqual(p.bundle.listen, { host: "0.0.0.0", port: 3128 });
  assert.deepEqual(p.bundle.gitGate!.auth, { tokenEnv: "BOTTLE_GIT_GATE_TOKEN" });
  assert.deepEqual(p.bundle.supervise!.auth, { tokenEnv: "BOTTLE_SUPERVISE_TOKEN" });
  assert.equal(p.bundle.proxyAuth.tokenEnv, "BOTTLE_EGRESS_PROXY_TOKEN");
  // The bundle-address mode publishes nothing.
  const a = makePlan(builtin(), inRepo({ backend: "smolmachines" }));
  assert.equal(a.bundle.container.publish, undefined);
  assert.equal(a.vm!.network.mode, "bundle-address");
});

Deno.test("plan: a relay dir whose socket paths would be too long moves to a private dir in /tmp", () => {
  const p = makePlan(
    builtin(),
    facts({
      backend: "smolmachines",
      vmNetwork: DESKTOP,
      stateRoot: `/Users/${"x".repeat(40)}/Library/Application Support/bottle`,
      hostUser: { uid: 501, gid: 20 },
    }),
  );
  const net = p.vm!.network;
  assert.ok(net.mode === "sockets");
  assert.match(net.relayDir, /^\/tmp\/bottle-501\/claude-abc123-[0-9a-f]{8}$/);
  // Another state dir's bottle of the same name gets another dir.
  const other = makePlan(
    builtin(),
    facts({
      backend: "smolmachines",
      vmNetwork: DESKTOP,
      stateRoot: `/Users/${"y".repeat(40)}/Library/Application Support/bottle`,
      hostUser: { uid: 501, gid: 20 },
    }),
  ).vm!.network;
  assert.ok(other.mode === "sockets" && other.relayDir !== net.relayDir);
  assert.ok(net.sockets.every((s) => s.hostSocket.length <= 100));
});

Deno.test("plan: full agent file matches its golden file", async () => {
  await golden("reviewer_full", makePlan(await reviewer(), facts()));
});

Deno.test("plan: same inputs give the same plan", async () => {
  const a = await reviewer();
  assert.deepEqual(makePlan(a, facts()), makePlan(a, facts()));
});

Deno.test("plan: concurrent bottles of one agent get distinct names and objects", () => {
  const p1 = makePlan(builtin(), facts({ suffix: "aaaaaa" }));
  const p2 = makePlan(builtin(), facts({ suffix: "bbbbbb" }));
  const objects = (p: ReturnType<typeof makePlan>) => [
    p.bottle.name,
    p.bottle.stateDir,
    p.bottle.keptAuditLog,
    ...p.networks.map((n) => n.name),
    ...p.volumes.map((v) => v.name),
    p.bundle.container.name,
    p.agent.container!.name,
  ];
  for (const o of objects(p1)) assert.ok(!objects(p2).includes(o), `${o} shared`);
});

Deno.test("plan: the Anthropic key is a route with a placeholder, never a value", () => {
  const p = makePlan(builtin(), facts());
  const route = p.bundle.routes.find((r) => r.host === "api.anthropic.com");
  assert.deepEqual(route?.source, { env: "ANTHROPIC_API_KEY" });
  assert.equal(route?.header, "x-api-key");
  assert.equal(p.agent.env.ANTHROPIC_API_KEY, placeholderFor("ANTHROPIC_API_KEY"));
  assert.equal(p.agent.env.ANTHROPIC_BASE_URL, "https://api.anthropic.com");
  assert.ok(p.bundle.allowlist.includes("api.anthropic.com"));
});

Deno.test("plan: placeholders are shaped like Anthropic keys and tokens", () => {
  const key = placeholderFor("ANTHROPIC_API_KEY");
  const token = placeholderFor("CLAUDE_CODE_OAUTH_TOKEN");
  assert.match(key, /^sk-ant-api03-[A-Za-z0-9_-]{93}AA$/);
  assert.match(token, /^sk-ant-oat01-[A-Za-z0-9_-]{93}AA$/);
  assert.equal(key.length, 108);
  assert.equal(placeholderFor("TEST_KEY"), "bottle-placeholder");
});

function withAnthropic(anthropic: unknown): LoadedAgent {
  const def = builtinAgents().claude!;
  return { ...builtin(), definition: { ...def, anthropic: anthropic as typeof def.anthropic } };
}

Deno.test("plan: base_url alone keeps the auto lookup, routed to the gateway's host and port", () => {
  const p = makePlan(
    withAnthropic({ base_url: "https://llm.example.com:8443/anthropic/" }),
    facts({ hostEnvNames: new Set(["CLAUDE_CODE_OAUTH_TOKEN"]) }),
  );
  assert.deepEqual(p.bundle.routes.map((r) => [r.host, r.header, r.template, r.source]), [
    ["llm.example.com:8443", "Authorization", "Bearer {value}", { env: "CLAUDE_CODE_OAUTH_TOKEN" }],
  ]);
  assert.equal(p.agent.env.ANTHROPIC_BASE_URL, "https://llm.example.com:8443/anthropic");
  assert.equal(p.agent.env.CLAUDE_CODE_OAUTH_TOKEN, placeholderFor("CLAUDE_CODE_OAUTH_TOKEN"));
  assert.ok(p.bundle.allowlist.includes("llm.example.com"));
});

Deno.test("plan: base_url with an explicit key; port 443 is the plain host", () => {
  const p = makePlan(
    withAnthropic({ base_url: "https://LLM.example.com:443", api_key: { file: "/k" } }),
    facts({ hostEnvNames: new Set() }),
  );
  assert.deepEqual(p.bundle.routes.map((r) => [r.host, r.header, r.source]), [
    ["llm.example.com", "x-api-key", { file: "/k" }],
  ]);
  assert.equal(p.agent.env.ANTHROPIC_BASE_URL, "https://llm.example.com");
  assert.deepEqual(p.warnings, []);
});

Deno.test("plan: base_url with no credential on the host is still allowlisted", () => {
  const p = makePlan(
    withAnthropic({ base_url: "https://llm.example.com" }),
    facts({ hostEnvNames: new Set() }),
  );
  assert.equal(p.bundle.routes.length, 0);
  assert.ok(p.bundle.allowlist.includes("llm.example.com"));
  assert.equal(p.agent.env.ANTHROPIC_BASE_URL, "https://llm.example.com");
  assert.match(p.warnings[0]!, /No Anthropic credential/);
});

Deno.test("plan: anthropic none gives no base URL and no route", () => {
  const p = makePlan(withAnthropic("none"), facts());
  assert.equal(p.bundle.routes.length, 0);
  assert.equal(p.agent.env.ANTHROPIC_BASE_URL, undefined);
  assert.equal(p.agent.env.ANTHROPIC_API_KEY, undefined);
});

Deno.test("plan: an OAuth token is used when no API key is set", () => {
  const p = makePlan(builtin(), facts({ hostEnvNames: new Set(["CLAUDE_CODE_OAUTH_TOKEN"]) }));
  const route = p.bundle.routes[0]!;
  assert.equal(route.header, "Authorization");
  assert.equal(route.template, "Bearer {value}");
  assert.equal(p.agent.env.CLAUDE_CODE_OAUTH_TOKEN, placeholderFor("CLAUDE_CODE_OAUTH_TOKEN"));
  assert.equal(p.agent.env.ANTHROPIC_API_KEY, undefined);
});

Deno.test("plan: no credential on the host is a warning, not a route", () => {
  const p = makePlan(builtin(), facts({ hostEnvNames: new Set() }));
  assert.equal(p.bundle.routes.length, 0);
  assert.match(p.warnings[0]!, /No Anthropic credential/);
});

const REPO = {
  root: "/proj",
  gitDir: "/proj/.git",
  branch: "main",
  head: "0123456789abcdef0123456789abcdef01234567",
  identity: { name: "Ada", email: "ada@example.com" },
};
const inRepo = (over: Partial<HostFacts> = {}) =>
  facts({ cwd: "/proj/src", repo: REPO, hostUser: { uid: 1000, gid: 1001 }, ...over });

Deno.test("plan: the agent has no network and reaches the bundle only by its sockets", async () => {
  const r = await reviewer();
  // Its declared upstream clones into /workspace, which the repository's clone holds.
  const p = makePlan({ ...r, definition: { ...r.definition, git: [] } }, inRepo());
  const agent = p.agent.container!;
  assert.equal(agent.network, "none");
  assert.deepEqual(agent.capDrop, ["ALL"]);
  assert.deepEqual(agent.securityOpt, ["no-new-privileges"]);
  assert.equal(agent.user, "agent");
  assert.deepEqual(agent.resources, { cpus: 2, memory: "4g", pids: 512 });
  // The proxy URLs carry the proxy credential, so they are in no plain env and come in an env file.
  assert.equal(p.agent.env.HTTPS_PROXY, undefined);
  assert.deepEqual(p.agent.proxy, {
    url: "http://127.0.0.1:3128",
    user: "bottle",
    env: ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"],
  });
  assert.deepEqual(agent.secretEnv, p.agent.proxy.env);
  assert.deepEqual(p.bundle.proxyAuth, { tokenEnv: "BOTTLE_EGRESS_PROXY_TOKEN" });
  assert.ok(p.bundle.container.startInput!.secrets.includes("BOTTLE_EGRESS_PROXY_TOKEN"));
  assert.deepEqual(
    proxyEnv(p.agent.proxy, "0123456789abcdef").https_proxy,
    "http://bottle:0123456789abcdef@127.0.0.1:3128",
  );
  // The forwarder relays each agent-facing daemon's port to its socket, read-only mounted.
  assert.deepEqual(agent.volumes, [
    { volume: "bottle-reviewer-abc123-sockets", target: "/run/bottle/sockets", readonly: true },
  ]);
  assert.deepEqual(agent.command, [
    "3128=/run/bottle/sockets/egress.sock",
    "8080=/run/bottle/sockets/git-gate.sock",
    "8090=/run/bottle/sockets/supervise.sock",
  ]);
  assert.equal(agent.entrypoint, "/usr/local/lib/bottle/bottle-forward");
  assert.equal(p.bundle.listen.host, "127.0.0.1");
  assert.deepEqual(p.networks.map((n) => [n.name, n.internal]), [
    ["bottle-reviewer-abc123-outbound", false],
  ]);
  assert.equal(p.bundle.container.network, "bottle-reviewer-abc123-outbound");
  assert.deepEqual(p.bundle.container.capDrop, ["ALL"]);
  // It writes pushes into the host repository: as the repository's user.
  assert.equal(p.bundle.container.user, "1000:1001");
  assert.deepEqual(p.bundle.daemons, [
    "egress",
    "pipelock",
    "pipelock-routes",
    "git-gate",
    "supervise",
  ]);
  for (const o of [agent.labels, p.bundle.container.labels, p.networks[0]!.labels]) {
    assert.equal(o["bottle.id"], p.bottle.name);
  }
});

Deno.test("plan: --backend overrides the definition", () => {
  assert.equal(
    makePlan(builtin(), facts({ backend: "smolmachines" })).bottle.backend,
    "smolmachines",
  );
});

Deno.test("plan: smolmachines bottles get a VM section with whole cpus and MiB", async () => {
  const r = await reviewer();
  const noMounts = { ...r, definition: { ...r.definition, mounts: [], git: [] } };
  const p = makePlan(noMounts, facts({ backend: "smolmachines" }));
  assert.deepEqual(p.vm, {
    machine: "bottle-reviewer-abc123",
    cpus: 2,
    memoryMib: 4096,
    network: {
      mode: "bundle-address",
      reason: "the default where the engine's container addresses are routable from this host",
      allowCidrs: ["{bundle.address}/32"],
      allowHosts: ["bottle-dns-closed.invalid"],
    },
  });
  assert.equal(p.agent.container, undefined);
  assert.equal(p.agent.proxy.url, "http://{bundle.address}:3128");
  assert.equal(p.agent.env.HTTPS_PROXY, undefined);
  // The VM reaches the bundle over the network: egress listens on it, no sockets volume.
  assert.equal(p.bundle.listen.host, "0.0.0.0");
  assert.deepEqual(p.volumes, []);
  assert.equal(makePlan(r, facts()).vm, undefined);
});

Deno.test("plan: mounts are refused on smolmachines rather than silently dropped", async () => {
  const r = await reviewer();
  assert.throws(
    () => makePlan(r, facts({ backend: "smolmachines" })),
    /mounts are not supported on the smolmachines backend/,
  );
});

Deno.test("plan: run's headless session is claude --print on the prompt, no stdin", () => {
  const p = headlessPlan(makePlan(builtin(), facts()), {
    prompt: "-fix the bug",
    outputFormat: "stream-json",
    allowedTools: ["Bash", "Edit"],
  });
  assert.equal(p.agent.session, "headless");
  assert.deepEqual(p.agent.program, [
    "claude",
    "--print",
    "--output-format",
    "stream-json",
    "--verbose",
    "--allowedTools",
    "Bash,Edit",
    "--",
    "-fix the bug",
  ]);
  assert.equal(makePlan(builtin(), facts()).agent.session, "terminal");
  assert.throws(
    () => headlessPlan(makePlan(builtin(), facts()), { prompt: "x", outputFormat: "yaml" }),
    /--output-format must be one of/,
  );
});

Deno.test("plan: inside a repository the workspace is a clone through the gate", async () => {
  const p = makePlan(builtin(), inRepo());
  await golden("claude_workspace_git", p);
  assert.deepEqual(p.workspace, {
    mode: "git",
    guestPath: "/workspace",
    hostPath: "/proj",
    branch: "main",
  });
  const [gate] = p.bundle.gitGate!.upstreams;
  assert.equal(gate!.kind, "host");
  assert.equal(gate!.kind === "host" && gate!.landingPrefix, `refs/heads/bottle/${p.bottle.name}/`);
  assert.equal(gate!.url, "http://127.0.0.1:8080/workspace.git");
  assert.deepEqual(gate!.policy, {
    branches: ["*"],
    maxPushBytes: 64 * 1024 * 1024,
    allowTags: false,
    hooks: [],
  });
  // Only the bundle sees the host repository, read-only but for this bottle's
  // own refs; landed objects go to the bottle's own store; the agent gets a clone.
  const store = "/state/bottle/bottles/claude-abc123/landing-objects";
  assert.deepEqual(p.bundle.container.mounts, [
    { source: "/proj/.git", target: "/run/bottle/host-repo", readonly: true },
    // Every bottle's store read-only (the repository borrows them all), its own writable.
    { source: "/state/bottle/bottles", target: "/state/bottle/bottles", readonly: true },
    { source: store, target: store, readonly: false },
    {
      source: "/proj/.git/refs/heads/bottle/claude-abc123",
      target: "/run/bottle/host-repo/refs/heads/bottle/claude-abc123",
      readonly: false,
    },
    {
      source: "/proj/.git/logs/refs/heads/bottle/claude-abc123",
      target: "/run/bottle/host-repo/logs/refs/heads/bottle/claude-abc123",
      readonly: false,
    },
  ]);
  assert.deepEqual(p.agent.container!.mounts, []);
  assert.ok(p.bundle.container.startInput!.files.some((f) => f.name === "git-gate.json"));
  const clone = p.provision.find((s) => s.step === "clone");
  assert.deepEqual(clone, {
    step: "clone",
    user: "agent",
    url: "http://127.0.0.1:8080/workspace.git",
    path: "/workspace",
    identity: { name: "Ada", email: "ada@example.com" },
  });
  assert.ok(p.agent.container!.command.includes("8080=/run/bottle/sockets/git-gate.sock"));
  // The sockets volume belongs to the bundle's user.
  assert.match(p.volumes[0]!.options.o!, /^uid=1000,gid=1001,/);
});

Deno.test("plan: outside a repository, or with --workspace none, nothing is in the workspace", () => {
  for (const f of [facts(), inRepo({ workspace: "none" })]) {
    const p = makePlan(builtin(), f);
    assert.deepEqual(p.workspace, { mode: "none", guestPath: "/workspace" });
    assert.ok(!p.bundle.daemons.includes("git-gate"));
    assert.deepEqual(p.bundle.container.mounts, []);
    assert.equal(p.bundle.container.user, "65532:65532");
    assert.ok(!p.provision.some((s) => s.step === "clone"));
  }
  assert.throws(
    () => makePlan(builtin(), facts({ cwd: "/tmp/x", workspace: "git" })),
    /workspace: git: \/tmp\/x is not inside a git repository/,
  );
});

Deno.test("plan: workspace mount binds the current directory, with a warning", () => {
  const p = makePlan(builtin(), inRepo({ workspace: "mount" }));
  assert.deepEqual(p.agent.container!.mounts, [
    { source: "/proj/src", target: "/workspace", readonly: false },
  ]);
  assert.ok(!p.bundle.daemons.includes("git-gate"));
  assert.ok(p.warnings.some((w) => /read-write, \.git included/.test(w)));
});

Deno.test("plan: workspace: mount is refused where it cannot work", () => {
  // The smolmachines backend mounts nothing from this host.
  assert.throws(
    () => makePlan(builtin(), inRepo({ backend: "smolmachines", workspace: "mount" })),
    /workspace: mount: the smolmachines backend mounts nothing/,
  );
  // An engine that may not see this host's files cannot mount the directory.
  assert.throws(
    () => makePlan(builtin(), inRepo({ engineSharesFilesystem: false, workspace: "mount" })),
    /workspace: mount: the docker engine \(DOCKER_HOST\) may not see this host's files/,
  );
});

Deno.test("plan: on an engine that does not see this host's files the workspace is copied", () => {
  const p = makePlan(builtin(), inRepo({ engineSharesFilesystem: false }));
  assert.equal(p.workspace.mode, "git");
  const gate = p.bundle.gitGate!.upstreams[0]!;
  assert.ok(gate.kind === "host");
  assert.equal(gate.transport, "copy");
  assert.equal(gate.copyVolume, "bottle-claude-abc123-workspace");
  assert.equal(gate.bundlePath, "/var/lib/bottle/workspace/repo.git");
  // No bind mount; the volume instead, on disk, labelled as the bottle's.
  const bundle = p.bundle.container;
  assert.deepEqual(bundle.mounts, []);
  assert.ok(
    bundle.volumes.some((v) =>
      v.volume === gate.copyVolume && v.target === "/var/lib/bottle/workspace" && !v.readonly
    ),
  );
  const vol = p.volumes.find((v) => v.name === gate.copyVolume)!;
  assert.deepEqual(vol.options, {});
  assert.equal(vol.labels["bottle.id"], "claude-abc123");
  // It writes only its own volume: its own uid, not the host user's.
  assert.equal(bundle.user, "65532:65532");
  assert.equal(makePlan(builtin(), inRepo()).bundle.container.user, "1000:1001");
});

function withGit(a: LoadedAgent, git: unknown[]): LoadedAgent {
  const branches = ["bottle/*"];
  return {
    ...a,
    definition: {
      ...a.definition,
      git: git.map((g) => ({ branches, ...(g as object) })) as LoadedAgent["definition"]["git"],
    },
  };
}

Deno.test("plan: declared upstreams get a gate mirror each, cloned by their real URL", () => {
  const a = withGit(builtin(), [
    { url: "git@github.com:team/Tool.git", identity: { ssh_key: { file: "~/.ssh/k" } } },
    { url: "https://example.com/other/tool.git/", identity: { token: { env: "T" } } },
    { url: "https://example.com/lib", path: "/opt/lib" },
    { url: "ssh://h/a.git", known_hosts: "~/kh" },
    { url: "ssh://h/b.git", known_hosts: "kh" },
  ]);
  const p = makePlan(a, facts({ homeDir: "/home/u" }));
  assert.ok(p.bundle.daemons.includes("git-gate"));
  const ups = p.bundle.gitGate!.upstreams;
  assert.deepEqual(ups.map((u) => [u.name, u.kind, u.url]), [
    ["tool", "remote", "http://127.0.0.1:8080/tool.git"],
    ["tool-2", "remote", "http://127.0.0.1:8080/tool-2.git"],
    ["lib", "remote", "http://127.0.0.1:8080/lib.git"],
    ["a", "remote", "http://127.0.0.1:8080/a.git"],
    ["b", "remote", "http://127.0.0.1:8080/b.git"],
  ]);
  assert.deepEqual(ups.slice(3).map((u) => u.kind === "remote" && u.knownHostsFile), [
    "/home/u/kh",
    "/proj/kh",
  ]);
  const [ssh, https, anon] = ups.map((u) => (u.kind === "remote" ? u : assert.fail("remote")));
  assert.equal(ssh!.path, "/workspace/tool");
  assert.equal(ssh!.knownHostsFile, "/home/u/.ssh/known_hosts");
  assert.equal(ssh!.identity?.kind, "ssh-key");
  assert.equal(https!.knownHostsFile, undefined);
  assert.equal(https!.identity?.kind, "token");
  assert.equal(anon!.identity, undefined);
  assert.deepEqual(ssh!.policy.branches, ["bottle/*"]);
  // Identities are bundle secrets (set at launch), never agent env.
  const envs = [ssh!.identity!.valueEnv, https!.identity!.valueEnv];
  for (const e of envs) assert.ok(p.bundle.container.startInput!.secrets.includes(e), e);
  assert.equal(new Set([...envs, ...p.bundle.routes.map((r) => r.valueEnv)]).size, 3);
  for (const e of envs) assert.equal(p.agent.env[e], undefined);
  const clones = p.provision.filter((s) => s.step === "clone");
  assert.deepEqual(clones.map((c) => [c.path, c.step === "clone" && c.insteadOf]), [
    ["/workspace/tool", "git@github.com:team/Tool.git"],
    ["/workspace/tool-2", "https://example.com/other/tool.git/"],
    ["/opt/lib", "https://example.com/lib"],
    ["/workspace/a", "ssh://h/a.git"],
    ["/workspace/b", "ssh://h/b.git"],
  ]);
  assert.ok(p.bundle.container.startInput!.files.some((f) => f.name === "git-gate.json"));
});

Deno.test("plan: beside the repository's workspace, declared upstreams clone into the home", () => {
  const p = makePlan(
    withGit(builtin(), [{ url: "ssh://git@h:2222/srv/x.git" }]),
    inRepo({ homeDir: "/home/u" }),
  );
  const ups = p.bundle.gitGate!.upstreams;
  assert.deepEqual(ups.map((u) => u.name), ["workspace", "x"]);
  const x = ups[1]!;
  assert.equal(x.kind === "remote" && x.path, "/home/agent/x");
  assert.deepEqual(p.provision.filter((s) => s.step === "clone").map((s) => s.path), [
    "/workspace",
    "/home/agent/x",
  ]);
  // With the directory mounted at /workspace, the same.
  const m = makePlan(
    withGit(builtin(), [{ url: "ssh://git@h:2222/srv/x.git" }]),
    inRepo({ homeDir: "/home/u", workspace: "mount" }),
  );
  const mx = m.bundle.gitGate!.upstreams[0]!;
  assert.equal(mx.kind === "remote" && mx.path, "/home/agent/x");
});

Deno.test("plan: declared upstreams that cannot work are refused with the way out", () => {
  const refused = (git: unknown[], f: HostFacts, re: RegExp) =>
    assert.throws(() => makePlan(withGit(builtin(), git), f), re);
  refused([{ url: "https://h/r.git", path: "/workspace/r" }], inRepo(), /inside \/workspace/);
  refused(
    [{ url: "https://h/a/r.git" }, { url: "https://h/b/r.git", path: "/workspace/r" }],
    facts(),
    /two git upstreams clone into \/workspace\/r/,
  );
  refused(
    [{ url: "git@h:r.git", identity: { token: { env: "T" } } }],
    facts(),
    /needs identity\.ssh_key/,
  );
  refused(
    [{ url: "https://h/r.git", identity: { ssh_key: { env: "K" } } }],
    facts(),
    /needs identity\.token/,
  );
  refused([{ url: "file:///srv/r.git" }], facts(), /cannot see this host's files/);
  refused(
    [{ url: "https://ghp_x@h/r.git" }],
    facts(),
    /a user name in an https URL is the token's/,
  );
  refused(
    [{ url: "http://h/r.git", identity: { token: { env: "T" } } }],
    facts(),
    /a token goes over https:\/\/ only/,
  );
  // A mounted directory is /workspace too: a clone there would write into the user's files.
  refused(
    [{ url: "https://h/r.git", path: "/workspace/r" }],
    inRepo({ workspace: "mount" }),
    /inside \/workspace/,
  );
  refused([{ url: "git@h:r.git" }], facts(), /no known_hosts file/);
});

Deno.test("plan: on smolmachines the VM reaches the gate at the bundle's address, with a token", () => {
  const p = makePlan(
    withGit(builtin(), [{ url: "https://h/lib.git" }]),
    inRepo({ backend: "smolmachines" }),
  );
  assert.equal(p.workspace.mode, "git");
  const gate = p.bundle.gitGate!;
  assert.deepEqual(gate.upstreams.map((u) => u.url), [
    "http://{bundle.address}:8080/workspace.git",
    "http://{bundle.address}:8080/lib.git",
  ]);
  // The gate listens where the host reaches it too: every request needs the bottle's token.
  assert.deepEqual(gate.auth, { tokenEnv: "BOTTLE_GIT_GATE_TOKEN" });
  assert.ok(p.bundle.container.startInput!.secrets.includes("BOTTLE_GIT_GATE_TOKEN"));
  const clones = p.provision.filter((s) => s.step === "clone");
  assert.deepEqual(clones.map((c) => c.step === "clone" && c.gateToken), [true, true]);
  // The VM's egress policy admits the bundle's address alone: that is where the gate is.
  assert.deepEqual(p.vm!.network.mode === "bundle-address" && p.vm!.network.allowCidrs, [
    "{bundle.address}/32",
  ]);
  assert.match(p.agent.env.NO_PROXY!, /\{bundle\.address\}/);
  // On docker the gate is behind the agent's relay and wants no token.
  const d = makePlan(builtin(), inRepo());
  assert.equal(d.bundle.gitGate!.auth, undefined);
  assert.ok(d.provision.every((s) => s.step !== "clone" || !s.gateToken));
});

function supervised(over: Partial<LoadedAgent["definition"]> = {}): LoadedAgent {
  const b = builtin();
  return { ...b, definition: { ...b.definition, supervise: { timeout: "90s" }, ...over } };
}

Deno.test("plan: supervise runs the daemon, registers it with claude and queues in the state dir", () => {
  const p = makePlan(supervised(), facts({ hostUser: { uid: 1000, gid: 1000 } }));
  assert.ok(p.bundle.daemons.includes("supervise"));
  assert.deepEqual(p.bundle.supervise, {
    timeoutSeconds: 90,
    queue: { transport: "mount", hostDir: "/state/bottle/bottles/claude-abc123/supervise" },
  });
  // The bundle writes the queue in the user's state dir: as the user.
  assert.equal(p.bundle.container.user, "1000:1000");
  assert.deepEqual(p.bundle.container.mounts, [{
    source: "/state/bottle/bottles/claude-abc123/supervise",
    target: "/var/lib/bottle/supervise",
    readonly: false,
  }]);
  assert.deepEqual(p.provision.find((s) => s.step === "mcp"), {
    step: "mcp",
    user: "agent",
    name: "supervise",
    url: "http://127.0.0.1:8090/mcp",
    timeoutMs: 150_000,
  });
  assert.ok(p.agent.forwards.some((f) => f.daemon === "supervise" && f.port === 8090));
  // Asking needs no permission; headless sessions hand permission prompts to the human.
  assert.deepEqual(p.agent.program, [
    "claude",
    "--allowedTools",
    "mcp__supervise__request_approval,mcp__supervise__ask_human",
  ]);
  const h = headlessPlan(p, { prompt: "go" });
  // attach runs the agent, not the task again.
  assert.deepEqual(h.agent.attachProgram, p.agent.program);
  assert.deepEqual(h.agent.program.slice(3), [
    "--print",
    "--permission-prompt-tool",
    "mcp__supervise__permission_prompt",
    "--",
    "go",
  ]);
  // Without supervise, none of it.
  const plain = makePlan(builtin(), facts({ hostUser: { uid: 1000, gid: 1000 } }));
  assert.equal(plain.bundle.supervise, undefined);
  assert.equal(plain.bundle.container.user, "65532:65532");
  assert.ok(
    !headlessPlan(plain, { prompt: "go" }).agent.program.includes("--permission-prompt-tool"),
  );
  assert.equal(
    makePlan(supervised({ supervise: true }), facts()).bundle.supervise?.timeoutSeconds,
    1800,
  );
});

Deno.test("plan: supervise on smolmachines wants a token; on a remote engine the queue is in the bundle", () => {
  const vm = makePlan(supervised(), facts({ backend: "smolmachines" }));
  assert.deepEqual(vm.bundle.supervise?.auth, { tokenEnv: "BOTTLE_SUPERVISE_TOKEN" });
  assert.ok(vm.bundle.container.startInput!.secrets.includes("BOTTLE_SUPERVISE_TOKEN"));
  const step = vm.provision.find((s) => s.step === "mcp");
  assert.ok(step?.step === "mcp" && step.token === true);
  assert.equal(step.url, "http://{bundle.address}:8090/mcp");

  const remote = makePlan(supervised(), facts({ engineSharesFilesystem: false }));
  assert.deepEqual(remote.bundle.supervise?.queue, { transport: "bundle" });
  assert.deepEqual(remote.bundle.container.mounts, []);
  assert.equal(remote.bundle.container.user, "65532:65532");
});

Deno.test("plan: supervise for an agent that is not claude is a warning: nothing registers it", () => {
  const p = makePlan(supervised({ command: ["aider"] }), facts());
  assert.ok(p.bundle.daemons.includes("supervise"));
  assert.equal(p.provision.find((s) => s.step === "mcp"), undefined);
  assert.match(p.warnings.join("\n"), /supervise: "aider" is not claude/);
});
