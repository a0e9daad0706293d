/**
 * A bottle leaves nothing behind: not after `bottle stop`, not when its
 * launch is interrupted by SIGINT/SIGTERM at any step (including while the
 * bundle and the agent are being started side by side), and what a
 * SIGKILLed launch left is found and removed by `bottle cleanup`.
 */
import assert from "node:assert/strict";
import { pathExists } from "../../src/state/path_exists.ts";
import { run } from "../../src/proc/runner.ts";
import { join } from "node:path";
import {
  bottle,
  bottleEnv,
  interruptAt,
  labelled,
  NOTHING,
  projectWith,
} from "../helpers/bottle_env.ts";

const AGENT_FILE = "version: 1\nagents:\n  life:\n    anthropic: none\n";

const STEPS = [
  /creating the network/,
  /starting the bundle/,
  // The bundle's and the agent's starts are both in flight here.
  /starting the agent/,
  /provisioning/,
];

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
        assert.doesNotMatch(r.stderr, /suppressed during disposal/);
        assert.deepEqual(await labelled(`bottle.id=life-${name}`), NOTHING);
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
  // The --name alone is not the bottle's name: said, with the name it is.
  const short = await bottle(["stop", "stopme"], be.env);
  assert.equal(short.code, 2);
  assert.match(short.stderr, /No bottle named "stopme": did you mean life-stopme\?/);
  const before = await labelled("bottle.id=life-stopme");
  assert.deepEqual(before.containers.sort(), [
    "bottle-life-stopme-agent",
    "bottle-life-stopme-bundle",
  ]);
  assert.deepEqual(before.networks, ["bottle-life-stopme-outbound"]);
  assert.deepEqual(before.volumes, ["bottle-life-stopme-sockets"]);
  assert.equal(await pathExists(join(be.stateRoot, "bottles", "life-stopme", "bottle.json")), true);
  // A wrong name among several: the others are stopped all the same.
  const s = await bottle(["stop", "life-nope", "life-stopme"], be.env);
  assert.equal(s.code, 2, s.stderr);
  assert.match(s.stderr, /No bottle named "life-nope"/);
  assert.match(s.stderr, /stopped life-stopme/);
  assert.deepEqual(await labelled("bottle.id=life-stopme"), NOTHING);
  assert.equal(await pathExists(join(be.stateRoot, "bottles", "life-stopme")), false);
  const again = await bottle(["stop", "life-stopme"], be.env);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /No bottle named "life-stopme"/);
});

Deno.test("docker: a name in use is refused before anything is touched", async () => {
  await using be = await bottleEnv();
  const cwd = await projectWith(be, AGENT_FILE);
  const first = await bottle(["start", "life", "--detach", "--name", "twice"], be.env, { cwd });
  assert.equal(first.code, 0, first.stderr);
  try {
    const before = await labelled("bottle.id=life-twice");
    const record = await Deno.readTextFile(
      join(be.stateRoot, "bottles", "life-twice", "bottle.json"),
    );
    const second = await bottle(["start", "life", "--detach", "--name", "twice"], be.env, { cwd });
    assert.equal(second.code, 2, second.stderr);
    assert.match(second.stderr, /A bottle named "life-twice" already exists/);
    assert.doesNotMatch(second.stderr, /suppressed during disposal/);
    // The running bottle is as it was: its objects, its record, and it still works.
    assert.deepEqual(await labelled("bottle.id=life-twice"), before);
    assert.equal(
      await Deno.readTextFile(join(be.stateRoot, "bottles", "life-twice", "bottle.json")),
      record,
    );
    const exec = await bottle(["exec", "life-twice", "--", "true"], be.env);
    assert.equal(exec.code, 0, exec.stderr);
    // exec's options, between the name and the command, as with docker exec.
    const as = await bottle([
      "exec",
      "life-twice",
      "-u",
      "root",
      "-w",
      "/tmp",
      "-e",
      "X=one two",
      "--",
      "sh",
      "-c",
      'id -un; pwd; echo "$X"',
    ], be.env);
    assert.equal(as.code, 0, as.stderr);
    assert.equal(as.stdout, "root\n/tmp\none two\n");
    // A mistyped name stops nothing and says which was meant.
    for (const typo of ["life-twise", "twice"]) {
      const wrong = await bottle(["stop", typo], be.env);
      assert.equal(wrong.code, 2, wrong.stderr);
      assert.match(wrong.stderr, /did you mean life-twice\?/);
    }
    assert.deepEqual(await labelled("bottle.id=life-twice"), before);
  } finally {
    await bottle(["stop", "life-twice"], be.env);
  }
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
      left.containers.length + left.networks.length + left.volumes.length > 0,
      "a SIGKILLed launch should leave objects",
    );
    const c = await bottle(["cleanup"], be.env);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /removed life-killed \(docker\)/);
    assert.deepEqual(await labelled("bottle.id=life-killed"), NOTHING);
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
    // The agent lost its way out, and `ls` says so.
    const ls = JSON.parse((await bottle(["ls", "--json"], be.env)).stdout) as {
      name: string;
      state: string;
    }[];
    assert.match(ls.find((b) => b.name === "life-die")?.state ?? "", /bundle exited/);
  } finally {
    const stop = await bottle(["stop", "life-die"], be.env);
    assert.equal(stop.code, 0, stop.stderr);
  }
  assert.deepEqual(await labelled("bottle.id=life-die"), NOTHING);
});

Deno.test("docker: cleanup leaves alone a bottle this user's records do not prove dead", async () => {
  await using owner = await bottleEnv();
  await using other = await bottleEnv();
  // A session that lasts: its program sleeps.
  const cwd = await projectWith(
    owner,
    'version: 1\nagents:\n  life:\n    anthropic: none\n    command: [sleep, "600"]\n',
  );
  // A foreground session whose launcher is alive, and it is another user's (another state dir).
  const session = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("../../main.ts", import.meta.url).pathname,
      "start",
      "life",
      "--name",
      "fg",
    ],
    env: owner.env,
    cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    for (let i = 0; i < 200; i++) {
      if ((await labelled("bottle.id=life-fg")).containers.length === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const dry = await bottle(["cleanup", "--dry-run"], other.env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.doesNotMatch(dry.stdout, /life-fg/);
    assert.match(dry.stderr, /no orphaned bottles to remove/);
    const c = await bottle(["cleanup"], other.env);
    assert.equal(c.code, 0, c.stderr);
    assert.doesNotMatch(c.stdout, /life-fg/);
    // The owner's own cleanup sees its launcher alive and keeps it too.
    const mine = await bottle(["cleanup", "--dry-run"], owner.env);
    assert.doesNotMatch(mine.stdout, /life-fg/);
    assert.equal((await labelled("bottle.id=life-fg")).containers.length, 2);
  } finally {
    session.kill("SIGTERM");
    await session.status;
    await session.stderr.cancel();
  }
  assert.deepEqual(await labelled("bottle.id=life-fg"), NOTHING);
});
