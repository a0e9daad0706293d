/**
 * A bottle leaves nothing behind: not after `bottle stop`, not when its
 * launch is interrupted by SIGINT/SIGTERM at any step, and what a SIGKILLed
 * launch left is found and removed by `bottle cleanup`.
 */
import assert from "node:assert/strict";
import { pathExists } from "../../src/state/path_exists.ts";
import { run } from "../../src/proc/runner.ts";
import { join } from "node:path";
import { bottle, bottleEnv, interruptAt, labelled, projectWith } from "../helpers/bottle_env.ts";

const AGENT_FILE = "version: 1\nagents:\n  life:\n    anthropic: none\n";

const STEPS = [/creating networks/, /starting the bundle/, /starting the agent/, /provisioning/];

for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  Deno.test(`docker: ${sig} at each launch step leaves no object behind`, async (t) => {
    await using be = await bottleEnv();
    const cwd = await projectWith(be, AGENT_FILE);
    // Warm the image cache so every interruption lands in a launch step.
    const build = await bottle(["build", "life"], be.env, { cwd });
    assert.equal(build.code, 0, build.stderr);
    for (const [i, step] of STEPS.entries()) {
      await t.step(`${sig} during "${step.source}"`, async () => {
        const name = `${sig.toLowerCase().slice(3)}${i}`;
        const r = await interruptAt(
          ["start", "life", "--detach", "--name", name],
          be.env,
          cwd,
          step,
          sig,
        );
        assert.equal(r.code, code, r.stderr);
        assert.match(r.stderr, new RegExp(`Cancelled by ${sig}`));
        assert.deepEqual(await labelled(`bottle.id=life-${name}`), {
          containers: [],
          networks: [],
        });
        assert.equal(await pathExists(join(be.stateRoot, "bottles", `life-${name}`)), false);
      });
    }
  });
}

Deno.test("docker: bottle stop removes every object and the state dir", async () => {
  await using be = await bottleEnv();
  const cwd = await projectWith(be, AGENT_FILE);
  const r = await bottle(["start", "life", "--detach", "--name", "stopme"], be.env, { cwd });
  assert.equal(r.code, 0, r.stderr);
  const before = await labelled("bottle.id=life-stopme");
  assert.equal(before.containers.length, 2);
  assert.equal(before.networks.length, 2);
  assert.equal(await pathExists(join(be.stateRoot, "bottles", "life-stopme", "bottle.json")), true);
  const s = await bottle(["stop", "life-stopme"], be.env);
  assert.equal(s.code, 0, s.stderr);
  assert.deepEqual(await labelled("bottle.id=life-stopme"), { containers: [], networks: [] });
  assert.equal(await pathExists(join(be.stateRoot, "bottles", "life-stopme")), false);
  const again = await bottle(["stop", "life-stopme"], be.env);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /No bottle named "life-stopme"/);
});

Deno.test("docker: bottle cleanup removes what a SIGKILLed launch left", async () => {
  await using be = await bottleEnv();
  const cwd = await projectWith(be, AGENT_FILE);
  const kept = await bottle(["start", "life", "--detach", "--name", "kept"], be.env, { cwd });
  assert.equal(kept.code, 0, kept.stderr);
  try {
    const r = await interruptAt(
      ["start", "life", "--detach", "--name", "killed"],
      be.env,
      cwd,
      /provisioning/,
      "SIGKILL",
    );
    assert.equal(r.code, 137);
    const left = await labelled("bottle.id=life-killed");
    assert.ok(
      left.containers.length + left.networks.length > 0,
      "a SIGKILLed launch should leave objects",
    );
    const c = await bottle(["cleanup"], be.env);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /removed life-killed \(docker\)/);
    assert.deepEqual(await labelled("bottle.id=life-killed"), { containers: [], networks: [] });
    assert.equal(await pathExists(join(be.stateRoot, "bottles", "life-killed")), false);
    // A detached bottle is not an orphan.
    assert.equal((await labelled("bottle.id=life-kept")).containers.length, 2);
  } finally {
    await bottle(["stop", "life-kept"], be.env);
  }
});

Deno.test("docker: the bundle exits non-zero, naming the daemon, when a daemon dies", async () => {
  await using be = await bottleEnv();
  const cwd = await projectWith(be, AGENT_FILE);
  const r = await bottle(["start", "life", "--detach", "--name", "die"], be.env, { cwd });
  assert.equal(r.code, 0, r.stderr);
  const bundle = "bottle-life-die-bundle";
  try {
    // Find pipelock among the bundle's processes and kill it.
    const kill = await run([
      "docker",
      "exec",
      bundle,
      "sh",
      "-c",
      'for d in /proc/[0-9]*; do if grep -q pipelock "$d/cmdline" 2>/dev/null; then kill -9 "${d#/proc/}"; exit 0; fi; done; exit 1',
    ]);
    assert.equal(kill.code, 0);
    const exit = await run(["docker", "wait", bundle], { timeoutMs: 30_000 });
    assert.equal(exit.stdout.trim(), "1");
    const logs = await run(["docker", "logs", bundle]);
    assert.match(
      logs.stderr + logs.stdout,
      /daemon pipelock exited with code \d+: stopping the bundle/,
    );
  } finally {
    await bottle(["stop", "life-die"], be.env);
  }
});
