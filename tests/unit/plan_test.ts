import assert from "node:assert/strict";
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

Deno.test("plan: the agent has no network and reaches the bundle only by its sockets", async () => {
  const p = makePlan(await reviewer(), facts());
  const agent = p.agent.container!;
  assert.equal(agent.network, "none");
  assert.deepEqual(agent.capDrop, ["ALL"]);
  assert.deepEqual(agent.securityOpt, ["no-new-privileges"]);
  assert.equal(agent.user, "agent");
  assert.deepEqual(agent.resources, { cpus: 2, memory: "4g", pids: 512 });
  assert.equal(p.agent.env.HTTPS_PROXY, "http://127.0.0.1:3128");
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
  assert.equal(p.bundle.container.user, "65532:65532");
  assert.deepEqual(p.bundle.daemons, ["egress", "pipelock", "git-gate", "supervise"]);
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
  const noMounts = { ...r, definition: { ...r.definition, mounts: [] } };
  const p = makePlan(noMounts, facts({ backend: "smolmachines" }));
  assert.deepEqual(p.vm, {
    machine: "bottle-reviewer-abc123",
    cpus: 2,
    memoryMib: 4096,
    allowCidrs: ["{bundle.address}/32"],
    allowHosts: ["bottle-dns-closed.invalid"],
  });
  assert.equal(p.agent.container, undefined);
  assert.equal(p.agent.env.HTTPS_PROXY, "http://{bundle.address}:3128");
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
