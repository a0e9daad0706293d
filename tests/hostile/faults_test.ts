/**
 * Faults under a real engine: the bundle killed under a running bottle,
 * the engine restarted in the middle of a launch, and the disk filling up
 * while bottle writes its state. Each ends in a clear error and a state
 * `stop` or `cleanup` can take back to nothing.
 */
import assert from "node:assert/strict";
import {
  bottle,
  bottleEnv,
  bridgeUpstream,
  inContainer,
  labelled,
  MAIN,
  NOTHING,
  projectWith,
} from "../helpers/bottle_env.ts";
import { startRemoteEngine } from "../helpers/remote_engine.ts";
import { run } from "../../src/proc/runner.ts";
import { pathExists } from "../../src/state/path_exists.ts";

/**
 * Runs `bottle args` and calls `at.then` once its progress matches `at.step`;
 * returns the exit code and everything it printed on stderr.
 */
async function launchWith(
  args: string[],
  env: Record<string, string>,
  cwd: string,
  at: { step: RegExp; then: () => Promise<void> },
): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env,
    cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  let fired: Promise<void> | undefined;
  for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
    stderr += chunk;
    if (!fired && at.step.test(stderr)) fired = at.then();
  }
  const status = await child.status;
  if (!fired) throw new Error(`never saw ${at.step} in: ${stderr}`);
  await fired;
  return { code: status.code, stderr };
}

const AGENT_FILE = `version: 1
agents:
  fault:
    anthropic: none
    command: [sleep, infinity]
    allowed_domains: [open.test]
`;

Deno.test("fault: the bundle killed under a running bottle: the agent is cut off, ls says broken, stop removes all", async () => {
  const bridge = await bridgeUpstream(["open.test"]);
  await using upstream = bridge.upstream;
  await using be = await bottleEnv(bridge.env);
  const cwd = await projectWith(be, AGENT_FILE);
  const start = await bottle(["start", "fault", "--detach", "--name", "k1"], be.env, { cwd });
  assert.equal(start.code, 0, start.stderr);
  const agent = "bottle-fault-k1-agent";
  const probe =
    `curl -sS -m 10 -o /dev/null -w '%{http_code}' -k https://open.test:${upstream.port}/status/204`;
  try {
    // Positive control: the way out works before the fault.
    const before = await inContainer(agent, probe);
    assert.equal(before.stdout, "204", before.stderr);
    await run(["docker", "kill", "--signal", "KILL", "bottle-fault-k1-bundle"]);
    const after = await inContainer(agent, probe);
    assert.notEqual(after.code, 0, "the agent still reached the outside");
    assert.equal((await inContainer(agent, "echo alive")).stdout, "alive\n", "the agent died too");
    const ls = JSON.parse((await bottle(["ls", "--json"], be.env)).stdout) as {
      name: string;
      state: string;
    }[];
    assert.match(ls.find((b) => b.name === "fault-k1")?.state ?? "", /bundle exited/);
    const table = await bottle(["ls"], be.env);
    assert.match(table.stdout, /fault-k1.*bundle exited/);
  } finally {
    const stop = await bottle(["stop", "fault-k1"], be.env);
    assert.equal(stop.code, 0, stop.stderr);
  }
  assert.deepEqual(await labelled("bottle.id=fault-k1"), NOTHING);
  assert.equal(await pathExists(`${be.stateRoot}/bottles/fault-k1`), false);
});

Deno.test("fault: the disk fills while bottle writes its state: a clear error, nothing half-written or left", async (t) => {
  await using be = await bottleEnv();
  const cwd = await projectWith(be, AGENT_FILE);
  // The state dir on a tmpfs of its own, so it can be filled without touching the host's disk.
  const stateHome = `${be.env.HOME}/small-state`;
  await Deno.mkdir(stateHome);
  await run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", stateHome]);
  const env = { ...be.env, XDG_STATE_HOME: stateHome };
  const fill = async () => {
    await run(["sh", "-c", `dd if=/dev/zero of="${stateHome}/filler-$$" bs=4k 2>/dev/null; true`]);
  };
  const unfill = () => run(["sh", "-c", `rm -f "${stateHome}"/filler-*`]);
  const leftovers = async () => {
    const files = await run(["find", stateHome, "-name", "*.tmp"]);
    return files.stdout.trim();
  };
  try {
    await t.step("full before the launch: refused before anything is made", async () => {
      await fill();
      const r = await bottle(["start", "fault", "--detach", "--name", "d1"], env, { cwd });
      await unfill();
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /No space left on device/);
      assert.deepEqual(await labelled("bottle.id=fault-d1"), NOTHING);
      assert.equal(await pathExists(`${stateHome}/bottle/bottles/fault-d1`), false);
      assert.equal(await leftovers(), "");
    });
    await t.step("full once the containers exist: the launch is taken back whole", async () => {
      const r = await launchWith(["start", "fault", "--detach", "--name", "d2"], env, cwd, {
        step: /provisioning/,
        then: fill,
      });
      await unfill();
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /No space left on device/);
      assert.deepEqual(await labelled("bottle.id=fault-d2"), NOTHING);
      assert.equal(await pathExists(`${stateHome}/bottle/bottles/fault-d2`), false);
      assert.equal(await leftovers(), "");
    });
    await t.step("with room again, the same bottle starts and stops", async () => {
      const r = await bottle(["start", "fault", "--detach", "--name", "d3"], env, { cwd });
      assert.equal(r.code, 0, r.stderr);
      const record = JSON.parse(
        await Deno.readTextFile(`${stateHome}/bottle/bottles/fault-d3/bottle.json`),
      );
      assert.equal(record.status, "running");
      assert.equal((await bottle(["stop", "fault-d3"], env)).code, 0);
    });
  } finally {
    for (const n of ["d1", "d2", "d3"]) await bottle(["stop", `fault-${n}`], env);
    await run(["umount", stateHome], { check: false });
  }
});

Deno.test("fault: the engine restarts during a launch: a clear error, and cleanup recovers", async () => {
  await using be = await bottleEnv();
  const cwd = await projectWith(be, AGENT_FILE);
  const build = await bottle(["build", "fault"], be.env, { cwd });
  assert.equal(build.code, 0, build.stderr);
  await using remote = await startRemoteEngine(build.stdout.trim().split("\n"));
  const env = { ...be.env, DOCKER_HOST: remote.host };
  const there = async () =>
    (await remote.docker(["ps", "-a", "--filter", "label=bottle.id=fault-e1", "-q"])).stdout
      .trim();
  const r = await launchWith(["start", "fault", "--detach", "--name", "e1"], env, cwd, {
    step: /starting the agent/,
    then: () => remote.restart(),
  });
  assert.equal(r.code, 1, r.stderr);
  // The launch's own error first, in words, not only "suppressed during disposal".
  assert.match(r.stderr, /^bottle: /m);
  assert.doesNotMatch(
    r.stderr.split("\n").find((l) => l.startsWith("bottle: ")) ?? "",
    /suppressed/,
  );
  // What teardown could not remove, it says; the record stays for cleanup.
  assert.match(r.stderr, /bottle cleanup removes what is left/);
  // The engine is back; whatever the launch could not take down, cleanup does.
  const c = await bottle(["cleanup"], env);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /removed fault-e1 \(docker\)/);
  assert.equal(await there(), "");
  const nets = await remote.docker(["network", "ls", "--filter", "label=bottle.id=fault-e1", "-q"]);
  assert.equal(nets.stdout.trim(), "");
  assert.equal(await pathExists(`${be.stateRoot}/bottles/fault-e1`), false);
  // And the engine serves bottles again.
  const again = await bottle(["start", "fault", "--detach", "--name", "e2"], env, { cwd });
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await bottle(["stop", "fault-e2"], env)).code, 0);
});
