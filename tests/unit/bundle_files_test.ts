import assert from "node:assert/strict";
import { parse } from "yaml";

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeBundleFiles } from "../../src/bundle/bundle_files.ts";
import { makePlan } from "../../src/plan/make_plan.ts";
import { builtinAgents } from "../../src/config/builtin.ts";
import { EgressConfigSchema } from "../../src/bundle/egress/config.ts";
import { parseBundleManifest } from "../../src/bundle/init/bundle_manifest.ts";
import { daemonSpecs, secretsFor } from "../../src/bundle/init/daemons.ts";
import { run } from "../../src/proc/runner.ts";

interface PipelockYaml {
  api_allowlist: string[];
  fetch_proxy: { listen: string };
  request_body_scanning: { ignore_headers: string[] };
  tls_interception: unknown;
}

const STANDIN = fileURLToPath(new URL("../fakes/pipelock_standin.ts", import.meta.url));

function planIn(stateRoot: string, upstreamCaFiles: string[] = []) {
  return makePlan(
    {
      name: "claude",
      definition: builtinAgents().claude!,
      origin: "built-in",
      baseDir: "/",
      buildCaCerts: [],
    },
    {
      suffix: "f1",
      stateRoot,
      ownerHost: "h",
      ownerPid: 1,
      hostEnvNames: new Set(["ANTHROPIC_API_KEY"]),
      upstreamCaFiles,
    },
  );
}

Deno.test("bundle files: exactly the planned files, valid, and no secret value in them", async () => {
  const plan = planIn("/state");
  const { files, agentTrustPem } = await makeBundleFiles(plan);
  assert.deepEqual(
    [...files.keys()].sort(),
    plan.bundle.container.startInput!.files.map((f) => f.name).sort(),
  );
  // Every copied file is readable by the bundle user alone.
  assert.ok(plan.bundle.container.startInput!.files.every((f) => f.mode === "0400"));
  assert.deepEqual(plan.bundle.container.startInput!.secrets, [
    "BOTTLE_ROUTE_0",
    "BOTTLE_EGRESS_PROXY_TOKEN",
  ]);
  assert.deepEqual(plan.bundle.container.secretEnv, [], "secrets must not be container env");
  const egress = EgressConfigSchema.parse(JSON.parse(files.get("egress.json")!));
  assert.deepEqual(egress.routes, [
    {
      host: "api.anthropic.com",
      header: "x-api-key",
      template: "{value}",
      valueEnv: "BOTTLE_ROUTE_0",
    },
  ]);
  assert.equal(egress.upstreamProxy, "http://127.0.0.1:8888");
  assert.deepEqual(egress.listen, {
    host: "127.0.0.1",
    port: 3128,
    socket: "/run/bottle/sockets/egress.sock",
  });
  assert.equal(egress.routesProxy, "http://127.0.0.1:8889");
  const manifest = parseBundleManifest(JSON.parse(files.get("bundle.json")!));
  assert.deepEqual(manifest.daemons, ["egress", "pipelock", "pipelock-routes"]);
  // The header exemption is the routes' pipelock's alone, and it reaches the routed hosts alone.
  const main = parse(files.get("pipelock.yaml")!) as PipelockYaml;
  const routes = parse(files.get("pipelock-routes.yaml")!) as PipelockYaml;
  assert.ok(!main.request_body_scanning.ignore_headers.includes("X-Api-Key"));
  assert.ok(!main.request_body_scanning.ignore_headers.includes("Authorization"));
  assert.ok(routes.request_body_scanning.ignore_headers.includes("X-Api-Key"));
  assert.deepEqual(routes.api_allowlist, ["api.anthropic.com"]);
  assert.ok(main.api_allowlist.includes("api.anthropic.com"));
  assert.equal(routes.fetch_proxy.listen, "127.0.0.1:8889");
  // Both pipelocks intercept with the one CA the agent and egress trust.
  assert.deepEqual(routes.tls_interception, main.tls_interception);
  assert.equal((agentTrustPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  assert.match(files.get("pipelock-ca-key.pem")!, /BEGIN EC PRIVATE KEY/);
  // The agent trusts the two certificates whose keys the bundle holds.
  assert.ok(agentTrustPem.includes(files.get("egress-ca.pem")!.trim()));
  assert.ok(agentTrustPem.includes(files.get("pipelock-ca.pem")!.trim()));
});

Deno.test("bundle files: extra upstream CAs are copied in and trusted by egress", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ca = join(dir, "corp.pem");
    const { certPem } = await (await import("../../src/tls/ca.ts")).mintCa();
    await Deno.writeTextFile(ca, certPem);
    const { files } = await makeBundleFiles(planIn("/state", [ca]));
    assert.equal(files.get("upstream-ca-0.pem"), certPem);
    const egress = EgressConfigSchema.parse(JSON.parse(files.get("egress.json")!));
    assert.deepEqual(egress.upstreamCaFiles, [
      "/etc/bottle/pipelock-ca.pem",
      "/etc/bottle/upstream-ca-0.pem",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bundle files: both pipelock configs pass the stand-in's strict key check", async () => {
  const root = await Deno.makeTempDir();
  try {
    const { files } = await makeBundleFiles(planIn(root));
    // The config names in-bundle paths; write the files here and point a copy at them.
    for (const [name, text] of files) await Deno.writeTextFile(join(root, name), text);
    for (const name of ["pipelock.yaml", "pipelock-routes.yaml"]) {
      const yaml = files.get(name)!.replaceAll("/etc/bottle/", `${root}/`);
      const copy = join(root, `check-${name}`);
      await Deno.writeTextFile(copy, yaml);
      const r = await run([Deno.execPath(), "run", "-A", STANDIN, "check", "--config", copy], {
        check: false,
      });
      assert.equal(r.code, 0, `${name}: ${r.stderr}${r.stdout}`);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("bundle files: an agent allowed nowhere still gets a valid strict pipelock config", async () => {
  const def = {
    ...builtinAgents().claude!,
    command: ["sleep", "1000"],
    anthropic: "none" as const,
  };
  const plan = makePlan(
    { name: "quiet", definition: def, origin: "test", baseDir: "/", buildCaCerts: [] },
    { suffix: "q1", stateRoot: "/state", ownerHost: "h", ownerPid: 1, hostEnvNames: new Set() },
  );
  assert.deepEqual(plan.bundle.allowlist, []);
  const { files } = await makeBundleFiles(plan);
  assert.match(files.get("pipelock.yaml")!, /api_allowlist:\n\s+- "nothing-allowed\.invalid"\n/);
});

Deno.test("bundle daemons: egress gets the route secrets and its token; the gate its identities and the routes' values, not egress's token", () => {
  const plan = makePlan(
    {
      name: "claude",
      definition: {
        ...builtinAgents().claude!,
        git: [{ url: "https://h/lib.git", identity: { token: { env: "T" } }, branches: ["b/*"] }],
      },
      origin: "built-in",
      baseDir: "/",
      buildCaCerts: [],
    },
    {
      suffix: "f1",
      stateRoot: "/state",
      ownerHost: "h",
      ownerPid: 1,
      hostEnvNames: new Set(["ANTHROPIC_API_KEY"]),
    },
  );
  const names = plan.bundle.container.startInput!.secrets;
  assert.deepEqual(names, ["BOTTLE_ROUTE_0", "BOTTLE_GIT_IDENTITY_1", "BOTTLE_EGRESS_PROXY_TOKEN"]);
  const values = Object.fromEntries(names.map((n) => [n, `value-of-${n}`]));
  const manifest = parseBundleManifest({
    bottle: plan.bottle.name,
    daemons: plan.bundle.daemons,
    ports: plan.bundle.ports,
  });
  const got = (name: string) => {
    const spec = daemonSpecs(manifest, { deno: "deno", script: "main.js" }).find((s) =>
      s.name === name
    )!;
    return JSON.parse(new TextDecoder().decode(secretsFor(spec, values)));
  };
  assert.deepEqual(got("egress"), {
    BOTTLE_ROUTE_0: "value-of-BOTTLE_ROUTE_0",
    BOTTLE_EGRESS_PROXY_TOKEN: "value-of-BOTTLE_EGRESS_PROXY_TOKEN",
  });
  assert.deepEqual(got("git-gate"), {
    BOTTLE_ROUTE_0: "value-of-BOTTLE_ROUTE_0",
    BOTTLE_GIT_IDENTITY_1: "value-of-BOTTLE_GIT_IDENTITY_1",
  });
});

Deno.test("bundle init: egress started before the manifest arrives is the one the manifest asks for", async () => {
  const { earlyEgress } = await import("../../src/bundle/init/init.ts");
  const self = { deno: "deno", script: "main.js" };
  for (const plan of [planIn("/state")]) {
    const spec = daemonSpecs(
      parseBundleManifest({
        bottle: plan.bottle.name,
        daemons: plan.bundle.daemons,
        ports: plan.bundle.ports,
      }),
      self,
    ).find((s) => s.name === "egress")!;
    assert.deepEqual(spec.argv, earlyEgress(self));
  }
});
