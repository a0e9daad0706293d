import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeBundleFiles } from "../../src/bundle/bundle_files.ts";
import { makePlan } from "../../src/plan/make_plan.ts";
import { builtinAgents } from "../../src/config/builtin.ts";
import { EgressConfigSchema } from "../../src/bundle/egress/config.ts";
import { bundleManifest } from "../../src/bundle/init/bundle_manifest.ts";
import { run } from "../../src/proc/runner.ts";

const STANDIN = fileURLToPath(new URL("../fakes/pipelock_standin.ts", import.meta.url));

function planIn(stateRoot: string) {
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
    },
  );
}

Deno.test("bundle files: configs are private, valid, and carry no secret value", async () => {
  const root = await Deno.makeTempDir();
  try {
    const plan = planIn(root);
    const files = await writeBundleFiles(plan, { upstreamCaFiles: [] });
    assert.equal((await Deno.stat(files.configDir)).mode! & 0o777, 0o700);
    for await (const e of Deno.readDir(files.configDir)) {
      assert.equal((await Deno.stat(join(files.configDir, e.name))).mode! & 0o777, 0o600, e.name);
    }
    const egress = EgressConfigSchema.parse(
      JSON.parse(await Deno.readTextFile(join(files.configDir, "egress.json"))),
    );
    assert.deepEqual(egress.routes, [
      {
        host: "api.anthropic.com",
        header: "x-api-key",
        template: "{value}",
        valueEnv: "BOTTLE_ROUTE_0",
      },
    ]);
    assert.equal(egress.upstreamProxy, "http://127.0.0.1:8888");
    const manifest = bundleManifest.parse(
      JSON.parse(await Deno.readTextFile(join(files.configDir, "bundle.json"))),
    );
    assert.deepEqual(manifest.daemons, ["egress", "pipelock"]);
    assert.equal((files.agentTrustPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
    assert.match(
      await Deno.readTextFile(join(files.configDir, "pipelock-ca-key.pem")),
      /BEGIN EC PRIVATE KEY/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("bundle files: the pipelock config passes the stand-in's strict key check", async () => {
  const root = await Deno.makeTempDir();
  try {
    const plan = planIn(root);
    const files = await writeBundleFiles(plan, { upstreamCaFiles: [] });
    // The config names in-bundle paths; point a copy at the host files to check it here.
    const yaml = (await Deno.readTextFile(join(files.configDir, "pipelock.yaml")))
      .replaceAll("/etc/bottle/", `${files.configDir}/`);
    const copy = join(root, "pipelock-check.yaml");
    await Deno.writeTextFile(copy, yaml);
    const r = await run([Deno.execPath(), "run", "-A", STANDIN, "check", "--config", copy], {
      check: false,
    });
    assert.equal(r.code, 0, r.stderr + r.stdout);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("bundle files: an agent allowed nowhere still gets a valid strict pipelock config", async () => {
  const root = await Deno.makeTempDir();
  try {
    const def = {
      ...builtinAgents().claude!,
      command: ["sleep", "1000"],
      anthropic: "none" as const,
    };
    const plan = makePlan(
      { name: "quiet", definition: def, origin: "test", baseDir: "/", buildCaCerts: [] },
      { suffix: "q1", stateRoot: root, ownerHost: "h", ownerPid: 1, hostEnvNames: new Set() },
    );
    assert.deepEqual(plan.bundle.allowlist, []);
    const files = await writeBundleFiles(plan, { upstreamCaFiles: [] });
    const yaml = await Deno.readTextFile(join(files.configDir, "pipelock.yaml"));
    assert.match(yaml, /api_allowlist:\n\s+- "nothing-allowed\.invalid"\n/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
