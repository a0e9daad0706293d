/**
 * The README's first command on a machine as a new user has it: the
 * launcher finds the pinned Deno or installs it into bottle's cache dir
 * (from npm here), and runs bottle in the caller's directory, so the
 * project's own bottle.yaml is the one found.
 */
import assert from "node:assert/strict";
import { run } from "../../src/proc/runner.ts";

const LAUNCHER = new URL("../../scripts/bottle", import.meta.url).pathname;
const DENO_SH = new URL("../../scripts/deno.sh", import.meta.url).pathname;

Deno.test("launcher: runs bottle in the caller's project, not the checkout", async () => {
  const home = await Deno.makeTempDir({ prefix: "bottle-launcher-" });
  try {
    const project = `${home}/project`;
    await Deno.mkdir(project);
    await Deno.writeTextFile(
      `${project}/bottle.yaml`,
      "version: 1\nagents:\n  mine:\n    anthropic: none\n    description: the project's\n",
    );
    const r = await run([LAUNCHER, "agents", "--json"], {
      cwd: project,
      env: { HOME: home, XDG_CONFIG_HOME: `${home}/config`, NO_COLOR: "1" },
    });
    const agents = JSON.parse(r.stdout).agents as { name: string; origin: string }[];
    assert.deepEqual(agents.find((a) => a.name === "mine")?.origin, `${project}/bottle.yaml`);
    // A symlink to it on PATH works the same.
    await Deno.mkdir(`${home}/bin`);
    await Deno.symlink(LAUNCHER, `${home}/bin/bottle`);
    const linked = await run(["bottle", "version"], {
      cwd: project,
      env: { HOME: home, PATH: `${home}/bin:${Deno.env.get("PATH")}` },
    });
    assert.match(linked.stdout, /^bottle \d+\.\d+\.\d+ \(deno 2\.9\.6, /);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("launcher: without the pinned Deno, it is installed into the cache dir, once", async () => {
  const home = await Deno.makeTempDir({ prefix: "bottle-deno-" });
  try {
    // A deno of another version first on PATH: not the pinned one, so not used.
    await Deno.mkdir(`${home}/shim`);
    await Deno.writeTextFile(`${home}/shim/deno`, '#!/bin/sh\necho "deno 1.0.0 (other)"\n');
    await Deno.chmod(`${home}/shim/deno`, 0o755);
    const env = {
      HOME: home,
      PATH: `${home}/shim:${Deno.env.get("PATH")}`,
      BOTTLE_DENO_DIR: `${home}/deno-cache`,
    };
    const first = await run(["sh", DENO_SH], { env, timeoutMs: 300_000 });
    assert.equal(first.stdout.trim(), `${home}/deno-cache/2.9.6/deno`);
    assert.match(first.stderr, /installing Deno 2\.9\.6/);
    const version = await run([first.stdout.trim(), "--version"]);
    assert.match(version.stdout, /^deno 2\.9\.6 /);
    const second = await run(["sh", DENO_SH], { env });
    assert.equal(second.stdout.trim(), first.stdout.trim());
    assert.equal(second.stderr, "", "the cached copy was installed again");
    // No half-made install is left beside it.
    const left = [...Deno.readDirSync(`${home}/deno-cache`)].map((e) => e.name);
    assert.deepEqual(left, ["2.9.6"]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
